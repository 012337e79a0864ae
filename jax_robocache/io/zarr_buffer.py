def read_zarr(*a, **k): raise NotImplementedError
