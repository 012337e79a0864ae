"""Lazily sliceable host arrays ``[N, D]`` over files, read only when rows are asked for.

``EpisodeStore.from_flat`` copies a stream's values to the device in row slices
(``values[a:b]``); every reader hands it one of these views so that a dataset
larger than host memory streams through: only the rows of one slice (plus, for
Parquet, the row groups that hold them) are in host memory at a time.

Every view has ``shape``, ``dtype``, ``ndim``, ``len()``, ``v[a:b]`` (a numpy
array ``[b - a, D]``; steps other than 1 are refused) and ``np.asarray(v)`` (all
rows at once, for small data and tests).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .errors import DatasetError


class LazyRows:
    """Base: a 2-D array whose rows are produced by ``_read(start, stop)``."""

    shape: tuple[int, int]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return 2

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.shape[1] * self.dtype.itemsize

    def __getitem__(self, key) -> np.ndarray:
        rows, cols = key, slice(None)
        if isinstance(key, tuple):
            if len(key) != 2:
                raise IndexError(f"{type(self).__name__} is 2-D; got index {key!r}")
            rows, cols = key
        if isinstance(rows, (int, np.integer)):
            n = self.shape[0]
            r = int(rows) + n if rows < 0 else int(rows)
            if not 0 <= r < n:
                raise IndexError(f"row {rows} out of range for {n} rows")
            return self._read(r, r + 1)[0][cols]
        if not isinstance(rows, slice):
            raise TypeError(f"{type(self).__name__} takes an int or a slice of rows, got "
                            f"{type(rows).__name__}")
        start, stop, step = rows.indices(self.shape[0])
        if step != 1:
            raise ValueError(f"{type(self).__name__} reads contiguous rows only (step 1), "
                             f"got step {step}")
        if stop <= start:
            return np.empty((0, self.shape[1]), self.dtype)[:, cols]
        out = self._read(start, stop)
        return out if cols == slice(None) else out[:, cols]

    def __array__(self, dtype=None, copy=None):
        out = self._read(0, self.shape[0]) if self.shape[0] else np.empty(self.shape, self.dtype)
        return out if dtype is None else out.astype(dtype, copy=False)

    def _read(self, start: int, stop: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape}, dtype={self.dtype})"


def _row_dim(shape: Sequence[int]) -> int:
    return int(math.prod(shape[1:])) if len(shape) > 1 else 1


class Rows2D(LazyRows):
    """A sliceable ``[N, ...]`` array (numpy, memmap, zarr, h5py) seen as ``[N, D]``.

    ``D`` is the product of the trailing dimensions (1 for a 1-D array).
    """

    def __init__(self, base, name: str = ""):
        self.base = base
        self.name = name
        shape = tuple(int(s) for s in base.shape)
        if not shape:
            raise ValueError(f"{name or 'array'}: a stream needs at least one dimension "
                             "(samples), got a scalar")
        self.shape = (shape[0], _row_dim(shape))
        self.dtype = np.dtype(base.dtype)

    def _read(self, start, stop):
        try:
            block = np.asarray(self.base[start:stop])
        except Exception as err:  # noqa: BLE001 - h5py / zarr raise many types for bad chunks
            raise DatasetError(f"{self.name or 'array'}: cannot read rows {start}:{stop} "
                               f"(corrupt chunk or missing codec?): {type(err).__name__}: "
                               f"{err}") from err
        return block.reshape(stop - start, self.shape[1])


def _read_pieces(starts, start: int, stop: int, width: int, dtype, piece) -> np.ndarray:
    """Rows ``[start, stop)`` of pieces laid end to end (piece k holds rows
    ``starts[k]:starts[k + 1]``); ``piece(k, lo, n)`` reads n rows of piece k from its row lo."""
    out = np.empty((stop - start, width), dtype)
    k, at = int(np.searchsorted(starts, start, side="right")) - 1, start
    while at < stop:
        lo = at - int(starts[k])
        n = min(stop, int(starts[k + 1])) - at
        if n > 0:
            out[at - start: at - start + n] = piece(k, lo, n)
            at += n
        k += 1
    return out


class Concatenated(LazyRows):
    """Rows of several ``[n_k, D]`` parts one after another (one part per episode, say)."""

    def __init__(self, parts: Sequence[LazyRows], name: str = ""):
        parts = list(parts)
        if not parts:
            raise ValueError(f"{name or 'stream'}: nothing to concatenate")
        dims = {p.shape[1] for p in parts}
        dtypes = {np.dtype(p.dtype) for p in parts}
        if len(dims) > 1 or len(dtypes) > 1:
            raise ValueError(f"{name or 'stream'}: parts disagree in width or dtype "
                             f"(widths {sorted(dims)}, dtypes {sorted(map(str, dtypes))})")
        self.parts = parts
        self.name = name
        self.starts = np.concatenate([[0], np.cumsum([p.shape[0] for p in parts])]).astype(
            np.int64)
        self.shape = (int(self.starts[-1]), dims.pop())
        self.dtype = dtypes.pop()

    def _read(self, start, stop):
        return _read_pieces(self.starts, start, stop, self.shape[1], self.dtype,
                            lambda k, lo, n: self.parts[k][lo:lo + n])


class RowRuns(LazyRows):
    """Selected rows ``base[starts[k]:stops[k]]`` for each run k, concatenated in run order."""

    def __init__(self, base: LazyRows, starts, stops, name: str = ""):
        starts = np.asarray(starts, np.int64)
        stops = np.asarray(stops, np.int64)
        if starts.shape != stops.shape or np.any(stops < starts) or (
                starts.size and (starts.min() < 0 or stops.max() > base.shape[0])):
            raise ValueError(f"{name or 'stream'}: row runs out of range of {base.shape[0]} rows")
        self.base, self.name = base, name
        if starts.size > 1:  # merge runs that continue each other (fewer, larger reads)
            cont = starts[1:] == stops[:-1]
            keep = np.concatenate([[True], ~cont])
            last = np.concatenate([~cont, [True]])
            starts, stops = starts[keep], stops[last]
        self.run_starts, self.run_stops = starts, stops
        self.starts = np.concatenate([[0], np.cumsum(stops - starts)]).astype(np.int64)
        self.shape = (int(self.starts[-1]), base.shape[1])
        self.dtype = base.dtype

    def _read(self, start, stop):
        def piece(k, lo, n):
            b = int(self.run_starts[k]) + lo
            return self.base[b:b + n]
        return _read_pieces(self.starts, start, stop, self.shape[1], self.dtype, piece)


class AsFloat32(LazyRows):
    """Integer or bool rows as float32, for stores that hold floating-point streams only.

    Exact: bool and 8/16-bit integers always are; wider integers are checked chunk by
    chunk and a value float32 cannot hold (``|x| > 2**24`` and not representable)
    raises naming the stream, never rounds.
    """

    def __init__(self, base: LazyRows, name: str = ""):
        if np.dtype(base.dtype).kind not in "biu":
            raise TypeError(f"{name or 'stream'}: AsFloat32 converts integers and bools, got "
                            f"{base.dtype}")
        self.base, self.name = base, name
        self.shape = base.shape
        self.dtype = np.dtype(np.float32)
        self._check = np.dtype(base.dtype).itemsize > 2

    def _read(self, start, stop):
        block = np.asarray(self.base[start:stop])
        out = block.astype(np.float32)
        if self._check:
            lost = out.astype(np.float64) != block
            if lost.any():
                r, c = (int(i[0]) for i in np.nonzero(lost))
                raise DatasetError(f"{self.name or 'stream'}: value {block[r, c]} at row "
                                   f"{start + r} is not exactly representable in float32; "
                                   "leave this stream out of the store or rescale it first")
        return out
