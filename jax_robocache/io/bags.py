def read_bags(*a, **k): raise NotImplementedError
