"""Parquet columns as lazily sliceable ``[N, D]`` arrays, read row group by row group (pyarrow)."""

from __future__ import annotations

import collections
import math
import threading
from pathlib import Path

import numpy as np

from .errors import DatasetError, install_hint
from .lazy import LazyRows


def pyarrow_modules():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as err:
        raise ImportError(f"{install_hint('lerobot', 'pyarrow')} ({err})") from err
    return pa, pq


def open_parquet(path: Path):
    """``pq.ParquetFile`` of ``path``; a missing or corrupt file raises naming it."""
    _, pq = pyarrow_modules()
    if not path.is_file():
        raise DatasetError(f"{path} is missing")
    try:
        return pq.ParquetFile(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a bad footer
        raise DatasetError(f"{path} is not a readable Parquet file (corrupt or truncated?): "
                           f"{type(err).__name__}: {err}") from err


def read_columns(path: Path, columns, *, parquet_file=None):
    """A ``pa.Table`` of ``columns`` of the whole file; read errors name the file."""
    pf = parquet_file or open_parquet(path)
    missing = [c for c in columns if c not in pf.schema_arrow.names]
    if missing:
        raise DatasetError(f"{path} has no column(s) {missing}; columns: {pf.schema_arrow.names}")
    try:
        return pf.read(columns=list(columns))
    except Exception as err:  # noqa: BLE001
        raise DatasetError(f"{path}: cannot read columns {list(columns)} (corrupt file?): "
                           f"{type(err).__name__}: {err}") from err


def to_numpy(column, width: int, where: str) -> np.ndarray:
    """An Arrow column of n rows, each a scalar or a (nested) list of ``width`` values,
    as ``[n, width]`` numpy (values exactly as stored). Nulls and rows of another
    length raise naming ``where``."""
    pa, _ = pyarrow_modules()
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(arr)
    while True:
        if arr.null_count:
            raise DatasetError(f"{where}: {arr.null_count} null value(s); a stream needs "
                               "every sample")
        t = arr.type
        if pa.types.is_fixed_size_list(t):
            arr = arr.flatten()
        elif pa.types.is_list(t) or pa.types.is_large_list(t):
            lengths = arr.value_lengths().to_numpy(zero_copy_only=False)
            if lengths.size and lengths.min() != lengths.max():
                raise DatasetError(f"{where}: rows hold lists of different lengths "
                                   f"({int(lengths.min())}..{int(lengths.max())})")
            arr = arr.flatten()
        elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
            break
        else:
            raise DatasetError(f"{where}: values of Arrow type {t} are not numeric")
    values = arr.to_numpy(zero_copy_only=False)
    if values.size != n * width:
        raise DatasetError(f"{where}: {n} rows hold {values.size} values, expected {width} "
                           "per row (the shape in the dataset's metadata)")
    return values.reshape(n, width)


def file_signature(path: Path) -> tuple[int, int]:
    """(size, mtime in ns): what tells a file apart from one rewritten at its path (no
    inode: FUSE mounts of object stores may renumber them between lookups)."""
    st = Path(path).stat()
    return (st.st_size, st.st_mtime_ns)


class _OpenFiles:
    """The few Parquet files read last, kept open (bounded: no handle pile-up over
    thousands of episode files; reopened after eviction). A handle is kept per
    (path, signature), and the file is checked against it at every read: a file rewritten
    at its path (in place or replaced) since the dataset was described is never read
    through the old handle, and reading it raises (its row groups and dtypes may differ
    from what the reader planned)."""

    def __init__(self, size: int = 8):
        self.size = size
        self.files: collections.OrderedDict = collections.OrderedDict()
        self.lock = threading.Lock()

    def get(self, path: Path, signature: tuple[int, int]):
        key = (Path(path), signature)
        with self.lock:
            pf = self.files.pop(key, None)
            try:  # every read: a file rewritten in place keeps its handle but not its layout
                now = file_signature(path)
            except OSError:
                now = None
            if now != signature:
                if pf is not None:
                    pf.close()
                raise DatasetError(f"{path} changed (or was removed) after the dataset was "
                                   "opened: open the dataset again to read the new file")
            if pf is None:
                pf = open_parquet(Path(path))
            self.files[key] = pf
            while len(self.files) > self.size:
                _, old = self.files.popitem(last=False)
                old.close()
            return pf

    def release(self, paths) -> None:
        """Closes the kept handles of ``paths`` (a dataset's ``close()``)."""
        paths = {Path(p) for p in paths}
        with self.lock:
            for key in [k for k in self.files if k[0] in paths]:
                self.files.pop(key).close()


_OPEN = _OpenFiles()


class ParquetColumn(LazyRows):
    """One numeric column of one Parquet file as ``[num_rows, D]``, read by row groups.

    Files are opened on demand and the last few kept open (``_OpenFiles``), so thousands
    of files hold few handles; the row group read last is cached (``from_flat`` reads
    consecutive slices).
    """

    def __init__(self, path: Path, column: str, shape: tuple[int, ...], dtype,
                 row_group_rows, signature: tuple[int, int]):
        self.path, self.column, self.signature = Path(path), column, signature
        self.sample_shape = tuple(int(s) for s in shape)
        rows = np.asarray(row_group_rows, np.int64)
        self.group_starts = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
        self.shape = (int(self.group_starts[-1]), int(math.prod(self.sample_shape)))
        self.dtype = np.dtype(dtype)
        self._cache: tuple[int, np.ndarray] | None = None

    def _group(self, pf, g: int) -> np.ndarray:
        if self._cache is not None and self._cache[0] == g:
            return self._cache[1]
        where = f"{self.path} column {self.column!r} row group {g}"
        try:
            table = pf.read_row_group(g, columns=[self.column])
        except Exception as err:  # noqa: BLE001
            raise DatasetError(f"{where}: cannot read (corrupt file?): {type(err).__name__}: "
                               f"{err}") from err
        block = to_numpy(table.column(0), self.shape[1], where)
        if block.dtype != self.dtype:
            raise DatasetError(f"{where}: stored as {block.dtype}, but the file's schema "
                               f"said {self.dtype} (file changed while reading?)")
        self._cache = (g, block)
        return block

    def _read(self, start, stop):
        out = np.empty((stop - start, self.shape[1]), self.dtype)
        g = int(np.searchsorted(self.group_starts, start, side="right")) - 1
        pf = None
        at = start
        while at < stop:
            g0, g1 = int(self.group_starts[g]), int(self.group_starts[g + 1])
            hi = min(stop, g1)
            if hi > at:
                if pf is None and not (self._cache is not None and self._cache[0] == g):
                    pf = _OPEN.get(self.path, self.signature)
                out[at - start: hi - start] = self._group(pf, g)[at - g0: hi - g0]
                at = hi
            g += 1
        return out


def leaf_dtype(field_type) -> np.dtype:
    """The numpy dtype of the innermost values of a (nested list) Arrow type."""
    pa, _ = pyarrow_modules()
    t = field_type
    while pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
        t = t.value_type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        raise TypeError(f"Arrow type {field_type} holds no numbers")
    return np.dtype(t.to_pandas_dtype())
