"""sensor_msgs/PointCloud2 -> ``[N, C]`` numpy points (no ROS tooling needed).

A cloud is ``height`` rows of ``width`` points; a row occupies ``row_step``
bytes (``width * point_step`` of points, then padding), a point ``point_step``
bytes holding its fields at their byte offsets. Every selected field must
exist, hold one value (``count == 1``) and lie inside the point; the result's
dtype is float32 promoted with the fields' types (float32 fields stay float32;
float64 and 32-bit integer fields give float64), so no value is rounded.
"""

from __future__ import annotations

import numpy as np

#: sensor_msgs/PointField datatype codes -> numpy type characters.
POINT_FIELD_TYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}


def decode_points(msg, names: tuple[str, ...]) -> np.ndarray:
    """The fields ``names`` of every point of ``msg``: ``[height * width, len(names)]``."""
    fields = {f.name: f for f in msg.fields}
    missing = [n for n in names if n not in fields]
    if missing:
        raise ValueError(f"fields {missing} missing; the cloud has {sorted(fields)}")
    endian = ">" if msg.is_bigendian else "<"
    step, width, height, row_step = (int(msg.point_step), int(msg.width), int(msg.height),
                                     int(msg.row_step))
    formats = []
    for name in names:
        f = fields[name]
        if f.datatype not in POINT_FIELD_TYPES:
            raise ValueError(f"field {name!r} has unknown datatype {f.datatype}")
        if f.count != 1:
            raise ValueError(f"field {name!r} holds {f.count} values per point; only count == 1 "
                             "fields can be read")
        fmt = np.dtype(endian + POINT_FIELD_TYPES[f.datatype])
        if f.offset + fmt.itemsize > step:
            raise ValueError(f"field {name!r} (offset {f.offset}, {fmt.itemsize} bytes) lies "
                             f"outside the {step}-byte point")
        formats.append(fmt)
    if width * step > row_step:
        raise ValueError(f"row_step {row_step} is smaller than width {width} x point_step {step}")
    data = np.asarray(msg.data, np.uint8).reshape(-1)
    if data.size < height * row_step:
        raise ValueError(f"data holds {data.size} bytes, {height} rows of {row_step} need "
                         f"{height * row_step}")
    rows = data[:height * row_step].reshape(height, row_step)[:, :width * step]
    record = np.dtype({"names": list(names), "formats": formats,
                       "offsets": [int(fields[n].offset) for n in names], "itemsize": step})
    points = np.frombuffer(np.ascontiguousarray(rows).tobytes(), dtype=record, count=height * width)
    out_dtype = np.result_type(np.float32, *formats)
    out = np.empty((height * width, len(names)), out_dtype)
    for k, name in enumerate(names):
        out[:, k] = points[name]
    return out
