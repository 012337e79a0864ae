"""Point clouds as sensors deliver them, for benchmarks and tests.

Uniform random points are the worst case for a scatter and not what a sensor
produces: a spinning LiDAR emits its returns firing by firing in azimuth order
and a depth camera pixel by pixel, so consecutive points fall into the same or
neighbouring voxels. This module ray-casts simple scenes (numpy, vectorised):

* ``lidar_scan``: a 64-beam spinning LiDAR (HDL-64-like: elevations -24.8 to
  +2 degrees, 2000 firings per revolution, 120 m range, a few % of returns
  lost) in a street (ground plane, building walls, parked cars); about 120k
  points per scan, in ``"column"`` order (all beams of one firing, then the
  next azimuth, as an HDL-64 streams them) or ``"ring"`` order (beam by beam).
  Pose ``k`` moves the sensor ``1.5 k`` metres along the street.
* ``rgbd_frame``: a 640 x 480 depth camera (fx = fy = 525) in a room (floor,
  walls, table, boxes), back-projected in pixel order (row-major), RGB colours
  as features; pixels without a depth (beyond 8 m or nearer than 0.3 m) are
  dropped, as drivers drop zero depths. Pose ``k`` pans the camera.
* ``batch``: padded ``[B, N, 3]`` points, ``[B, N, C]`` features, ``[B]``
  lengths from clouds of different sizes; ``shuffled``: the same clouds with
  every cloud's valid points randomly permuted (what order is worth).
* ``mean_run_length``: mean length of the runs of consecutive points that fall
  into one voxel (what an order-aware scatter can exploit).

Scans and frames are cached per argument set (read-only arrays): benchmark
inputs are built once per shape.
"""

from __future__ import annotations

import functools

import numpy as np

#: Street scene for the LiDAR, sensor frame: the sensor at z = 0, 1.73 m above the ground.
#: Boxes (xmin, ymin, zmin, xmax, ymax, zmax, reflectivity).
GROUND_Z = -1.73
STREET = np.array([
    (-200, 10, GROUND_Z, 200, 30, 12, 0.3),         # buildings, left
    (-200, -30, GROUND_Z, 200, -11, 9, 0.35),       # buildings, right
    (70, -11, GROUND_Z, 80, 10, 15, 0.25),          # the street's far end
    (-90, -11, GROUND_Z, -80, 10, 15, 0.25),        # behind
    (6, 5, GROUND_Z, 10.5, 6.8, -0.23, 0.8),        # parked cars (4.5 x 1.8 x 1.5 m)
    (14, 5.2, GROUND_Z, 18.5, 7.0, -0.23, 0.7),
    (-9, -8.8, GROUND_Z, -4.5, -7.0, -0.23, 0.9),
    (22, -8.6, GROUND_Z, 26.5, -6.8, -0.23, 0.6),
    (35, 5.1, GROUND_Z, 39.5, 6.9, 0.0, 0.75),      # a van
    (-25, 5.3, GROUND_Z, -20.5, 7.1, -0.23, 0.85),
    (3, -9.5, GROUND_Z, 3.4, -9.1, 2.5, 0.5),       # posts
    (28, 8.5, GROUND_Z, 28.4, 8.9, 2.5, 0.5),
], np.float64)
#: Room scene for the depth camera, world frame, z up, the floor at z = 0.
ROOM_FLOOR_Z = 0.0
ROOM = np.array([
    (-3.0, -2.5, 0.0, -2.9, 2.5, 2.8, 0.0),         # walls (last column: colour index)
    (2.9, -2.5, 0.0, 3.0, 2.5, 2.8, 1.0),
    (-3.0, 2.4, 0.0, 3.0, 2.5, 2.8, 2.0),
    (-3.0, -2.5, 0.0, 3.0, -2.4, 2.8, 1.0),
    (-0.6, 0.8, 0.0, 0.8, 1.6, 0.75, 3.0),          # a table
    (-0.2, 1.0, 0.75, 0.1, 1.3, 1.0, 4.0),          # boxes on it
    (0.3, 1.1, 0.75, 0.6, 1.4, 0.9, 5.0),
    (1.6, 1.5, 0.0, 2.6, 2.3, 1.9, 6.0),            # a shelf
    (-2.4, -0.5, 0.0, -1.6, 0.4, 0.45, 7.0),        # a low box
])
COLOURS = np.array([(0.85, 0.82, 0.75), (0.7, 0.75, 0.8), (0.8, 0.7, 0.6), (0.55, 0.35, 0.2),
                    (0.9, 0.2, 0.15), (0.15, 0.5, 0.85), (0.6, 0.6, 0.55), (0.3, 0.7, 0.3),
                    (0.45, 0.45, 0.45)])  # the last one: the floor
HDL64_ELEVATION_DEG = (-24.8, 2.0)


def ray_cast(origin, dirs, boxes, ground_z, max_range):
    """Nearest hit of each ray (unit ``dirs`` [R, 3] from ``origin`` [3]) against the ground
    plane z = ``ground_z`` and axis-aligned ``boxes`` [K, >= 6]: (t [R], surface [R]); t is inf
    for no hit within ``max_range``, surface is the box index, K for the ground."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / dirs
        t_best = np.where(dirs[:, 2] < 0, (ground_z - origin[2]) * inv[:, 2], np.inf)
        surface = np.full(len(dirs), len(boxes))
        for k, box in enumerate(boxes):
            t0 = (box[:3] - origin) * inv
            t1 = (box[3:6] - origin) * inv
            near = np.nanmax(np.minimum(t0, t1), axis=1)
            far = np.nanmin(np.maximum(t0, t1), axis=1)
            hit = (far >= np.maximum(near, 0)) & (near > 0) & (near < t_best)
            t_best = np.where(hit, near, t_best)
            surface = np.where(hit, k, surface)
    t_best = np.where(t_best <= max_range, t_best, np.inf)
    return t_best, surface


def _read_only(*arrays):
    for a in arrays:
        a.setflags(write=False)
    return arrays


@functools.lru_cache(maxsize=64)
def lidar_scan(pose: int = 0, *, beams: int = 64, columns: int = 2000, order: str = "column",
               max_range: float = 120.0, dropout: float = 0.03):
    """One revolution of a spinning LiDAR in the street scene: points [N, 3] float32 (sensor
    frame), intensity [N, 1] float32, ring [N] int32, in the sensor's emission order."""
    if order not in ("column", "ring"):
        raise ValueError(f"order must be 'column' or 'ring', got {order!r}")
    rng = np.random.default_rng([19, pose, beams, columns])
    elev = np.deg2rad(np.linspace(*HDL64_ELEVATION_DEG, beams))
    azim = np.linspace(-np.pi, np.pi, columns, endpoint=False)
    if order == "column":  # [columns, beams]: every beam of one firing, then the next azimuth
        el, az = np.meshgrid(elev, azim)
        ring = np.broadcast_to(np.arange(beams), (columns, beams)).ravel()
    else:  # [beams, columns]
        az, el = np.meshgrid(azim, elev)
        ring = np.repeat(np.arange(beams), columns)
    el, az = el.ravel(), az.ravel()
    dirs = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)
    origin = np.array([1.5 * pose, 0.0, 0.0])
    t, surface = ray_cast(origin, dirs, STREET, GROUND_Z, max_range)
    kept = np.isfinite(t) & (rng.random(len(t)) >= dropout)
    r = t[kept] + rng.normal(0, 0.02, kept.sum())
    points = dirs[kept] * r[:, None]  # sensor frame
    reflectivity = np.append(STREET[:, 6], 0.2)[surface[kept]]
    intensity = np.clip(reflectivity * (1 - r / (2 * max_range)) + rng.normal(0, 0.03, len(r)),
                        0, 1)
    return _read_only(points.astype(np.float32), intensity[:, None].astype(np.float32),
                      ring[kept].astype(np.int32))


@functools.lru_cache(maxsize=64)
def rgbd_frame(pose: int = 0, *, width: int = 640, height: int = 480, focal: float = 525.0,
               min_depth: float = 0.3, max_depth: float = 8.0):
    """One depth-camera frame of the room, back-projected in pixel order (row-major): points
    [N, 3] float32 (world frame, metres), colours [N, 3] float32 in [0, 1]; pixels without a
    depth are dropped."""
    rng = np.random.default_rng([20, pose, width, height])
    yaw = np.deg2rad(60.0 + 12.0 * pose)  # panning left from looking along +x+y
    pitch = np.deg2rad(-15.0)
    forward = np.array([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    down = np.cross(forward, right)
    v, u = np.mgrid[0:height, 0:width]
    x = (u.ravel() - (width - 1) / 2) / focal
    y = (v.ravel() - (height - 1) / 2) / focal
    rays = forward + x[:, None] * right + y[:, None] * down  # z-depth 1 along forward
    dirs = rays / np.linalg.norm(rays, axis=1, keepdims=True)
    origin = np.array([-2.2, -1.8, 1.4])
    t, surface = ray_cast(origin, dirs, ROOM, ROOM_FLOOR_Z, max_range=4 * max_depth)
    depth = t / np.linalg.norm(rays, axis=1)
    depth = depth + rng.normal(0, 1.5e-3, len(depth)) * depth ** 2  # structured-light noise
    kept = np.isfinite(depth) & (depth >= min_depth) & (depth <= max_depth)
    points = origin + rays[kept] * depth[kept, None]
    colour_index = np.append(ROOM[:, 6], len(COLOURS) - 1).astype(np.int64)[surface[kept]]
    checker = (np.floor(points[:, 0] / 0.25) + np.floor(points[:, 1] / 0.25)
               + np.floor(points[:, 2] / 0.25)) % 2
    shade = 0.75 + 0.2 * checker - 0.03 * depth[kept]
    colours = np.clip(COLOURS[colour_index] * shade[:, None]
                      + rng.normal(0, 0.01, (kept.sum(), 3)), 0, 1)
    return _read_only(points.astype(np.float32), colours.astype(np.float32))


def load_vlp16(path):
    """The real VLP-16 revolution of ``tests/data/vlp16.npz`` in its recorded order: points
    [N, 3] float32, intensity [N, 1] float32 (0..255), ring [N] int32."""
    xyzil = np.load(path)["xyzil"]
    return (np.ascontiguousarray(xyzil[:, :3]), np.ascontiguousarray(xyzil[:, 3:4]),
            xyzil[:, 4].astype(np.int32))


def batch(clouds, N: int | None = None):
    """Pads ``clouds`` [(points [n, 3], features [n, C]), ...] into points [B, N, 3], features
    [B, N, C] and lengths [B] int32 (padding: zeros, beyond lengths); N defaults to the largest
    n. Each cloud keeps its order."""
    N = max(len(p) for p, _ in clouds) if N is None else N
    C = clouds[0][1].shape[1]
    points = np.zeros((len(clouds), N, 3), np.float32)
    features = np.zeros((len(clouds), N, C), np.float32)
    lengths = np.zeros(len(clouds), np.int32)
    for b, (p, f) in enumerate(clouds):
        n = min(len(p), N)
        points[b, :n], features[b, :n], lengths[b] = p[:n], f[:n], n
    return points, features, lengths


def shuffled(points, features, lengths, rng):
    """The same batch with every cloud's valid points randomly permuted (padding kept last)."""
    points, features = points.copy(), features.copy()
    for b, n in enumerate(np.asarray(lengths).reshape(-1)):
        perm = rng.permutation(int(n))
        points[b, :n], features[b, :n] = points[b, perm], features[b, perm]
    return points, features, lengths


def mean_run_length(points, voxel_size, point_range):
    """Mean length of the maximal runs of consecutive points [N, 3] in one voxel (points outside
    the range, or non-finite, count as one voxel of their own each)."""
    lo = np.asarray(point_range[:3], np.float64)
    hi = np.asarray(point_range[3:], np.float64)
    ijk = np.floor((np.asarray(points, np.float64) - lo) / np.asarray(voxel_size, np.float64))
    inside = np.all((points >= lo) & (points < hi), axis=1)
    ids = np.where(inside, ((ijk[:, 0] * 1e5 + ijk[:, 1]) * 1e5 + ijk[:, 2]), -1 - np.arange(
        len(points)))
    if len(ids) == 0:
        return 0.0
    runs = 1 + np.count_nonzero(ids[1:] != ids[:-1])
    return len(ids) / runs


#: Dense grids for ``voxelize`` on each source (metres): the LiDAR's street at 0.4 m (200 x 200
#: x 12 cells), the room at 5 cm (120 x 100 x 60), the VLP-16's campus at 0.5 m (200 x 200 x 16).
GRIDS = {
    "lidar": dict(voxel_size=0.4, point_range=(-40.0, -40.0, -2.8, 40.0, 40.0, 2.0)),
    "rgbd": dict(voxel_size=0.05, point_range=(-3.025, -2.525, -0.125, 2.975, 2.475, 2.875)),
    "vlp16": dict(voxel_size=0.5, point_range=(-50.0, -50.0, -4.0, 50.0, 50.0, 4.0)),
}


@functools.lru_cache(maxsize=16)
def _ordered_batch(source, B, features, scale, vlp16_path):
    clouds = []
    for b in range(B):
        if source == "lidar":
            # scale < 1: a sparser scan of the same scene (fewer beams and firings), for smoke runs
            points, intensity, _ = lidar_scan(b, order="ring", beams=max(4, int(64 * scale)),
                                              columns=max(16, int(2000 * scale)))
        elif source == "rgbd":
            points, intensity = rgbd_frame(b, width=max(8, int(640 * scale)),
                                           height=max(6, int(480 * scale)),
                                           focal=525.0 * scale)
        elif source == "vlp16":  # B copies of the one real revolution
            points, intensity, _ = load_vlp16(vlp16_path)
            intensity = intensity / np.float32(255)
        else:
            raise ValueError(f"source must be 'lidar', 'rgbd' or 'vlp16', got {source!r}")
        xyzi = source != "rgbd" and features == "xyzi"
        f = np.concatenate([points, intensity], axis=1) if xyzi else intensity
        clouds.append((points, f))
    return _read_only(*batch(clouds))


def sensor_batch(source: str, B: int, rng=None, *, shuffle: bool = False, features: str = "xyzi",
                 scale: float = 1.0, vlp16_path=None):
    """points [B, N, 3], features [B, N, C], lengths [B] from ``source``:

    * ``"lidar"``: B consecutive ``lidar_scan`` poses, KITTI's ring order (features: x, y, z,
      intensity with ``features="xyzi"``, intensity alone with ``"i"``);
    * ``"rgbd"``: B ``rgbd_frame`` poses in pixel order, RGB features (``features`` ignored);
    * ``"vlp16"``: B copies of the real VLP-16 revolution at ``vlp16_path``, recorded order
      (intensity scaled to [0, 1]).

    ``shuffle``: every cloud's valid points permuted by ``rng``. The ordered batch is built
    once per argument set (cached, read-only)."""
    arrays = _ordered_batch(source, B, features, scale, None if vlp16_path is None
                            else str(vlp16_path))
    if not shuffle:
        return arrays
    return shuffled(*arrays, rng if rng is not None else np.random.default_rng(0))
