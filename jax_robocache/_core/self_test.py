"""``self_test()``: a fast check of every op on the available backends.

Each op is run on a small case of its catalogue (``<family>/<op>_cases.py``)
on every available platform (CPU always, GPU when present) and compared with
an independent numpy computation; with a GPU, CPU and GPU results are also compared with each
other. ``python -m jax_robocache.self_test`` prints the report and exits
non-zero on any failure.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Callable

import jax
import numpy as np

from .info import info


@dataclasses.dataclass
class CheckResult:
    op: str
    platform: str
    backend: str
    ok: bool
    detail: str
    seconds: float


@dataclasses.dataclass
class Report:
    results: list[CheckResult]
    info: dict

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def __str__(self) -> str:
        reason = self.info["kernels_unavailable_reason"]
        kernels = f"jax.numpy twins only: {reason}" if reason else "CUDA kernels in use"
        lines = [f"jax_robocache {self.info['version']} on jax {self.info['jax']} "
                 f"(default backend {self.info['default_backend']}, {kernels})"]
        for r in self.results:
            lines.append(f"  {'PASS' if r.ok else 'FAIL'}  {r.op:18s} {r.platform:4s} "
                         f"{r.backend:9s} {r.seconds * 1e3:7.1f} ms  {r.detail}")
        lines.append("all checks passed" if self.ok else "SOME CHECKS FAILED")
        return "\n".join(lines)


#: op name -> check(rng, platform) returning (numpy output, numpy expected, tolerance)
CHECKS: dict[str, Callable] = {}


def register_check(name: str):
    def wrap(fn):
        CHECKS[name] = fn
        return fn
    return wrap


@register_check("resample")
def _check_resample(rng):
    from ..streams.resample_cases import CASES
    call = CASES["inside"].make(rng)  # every query inside its episode's samples
    values, times, queries = (call.arrays[k] for k in ("values", "times", "query_times"))
    out = np.asarray(call())
    B, _, D = values.shape
    expected = np.stack([np.stack([np.interp(queries[b], times[b], values[b, :, d])
                                   for d in range(D)], -1) for b in range(B)])
    return out, expected, 1e-5


@register_check("align")
def _check_align(rng):
    from ..streams.align_cases import CASES
    call = CASES["mixed_inside"].make(rng)  # queries inside every stream, past a full window
    a, metas = call.arrays, call.options["streams"]
    result = call()
    queries = a["query_times"]
    B, T = queries.shape
    names = sorted(metas)
    expected = {n: np.zeros((B, T, a[f"{n}.values"].shape[-1])) for n in names}
    ages = {n: np.zeros((B, T)) for n in names}
    for n in names:
        method, window = metas[n]["method"], np.float32(metas[n].get("window") or 0.0)
        for b in range(B):
            times, v = a[f"{n}.times"][b], a[f"{n}.values"][b].astype(np.float64)
            t = times.astype(np.float64)
            latest = np.searchsorted(t, queries[b], side="right") - 1  # t[latest] <= q
            ages[n][b] = queries[b] - t[latest]
            if method == "linear":
                expected[n][b] = np.stack([np.interp(queries[b], t, v[:, d])
                                           for d in range(v.shape[1])], -1)
            elif method == "previous":
                expected[n][b] = v[latest]
            else:  # window_mean: the samples in (q - window, q], q - window in float32
                for j, q in enumerate(queries[b]):
                    inside = (times > q - window) & (times <= q)
                    expected[n][b, j] = v[inside].mean(axis=0)
    out = np.concatenate([np.asarray(result.values[n], np.float64).ravel() for n in names]
                         + [np.asarray(result.valid[n], np.float64).ravel() for n in names]
                         + [np.asarray(result.age[n], np.float64).ravel() for n in names])
    want = np.concatenate([expected[n].ravel() for n in names] + [np.ones(B * T * len(names))]
                          + [ages[n].ravel() for n in names])
    return out, want, 1e-5


@register_check("sample_windows")
def _check_sample_windows(rng):
    from ..episodes import EpisodeStore, Window, sample_windows
    lengths, D, B = (30, 20), 3, 16
    times = [np.cumsum(rng.uniform(0.01, 0.02, n)).astype(np.float32) for n in lengths]
    values = [rng.normal(size=(n, D)).astype(np.float32) for n in lengths]
    store = EpisodeStore.from_episodes({"action": values}, {"action": times})
    episode = rng.integers(0, 2, B).astype(np.int32)
    index = np.array([rng.integers(0, lengths[e]) for e in episode])
    anchor = np.array([times[e][i] for e, i in zip(episode, index)], np.float32)
    steps, seconds = (-1, 0, 1, 2, 3), (0.0, 0.015)
    out = sample_windows(store, episode, anchor,
                         {"chunk": Window(steps=steps, stream="action"),
                          "interp": Window(seconds=seconds, stream="action")})
    want_chunk, want_interp = np.zeros((B, 5, D)), np.zeros((B, 2, D))
    valid_chunk, valid_interp = np.zeros((B, 5)), np.zeros((B, 2))
    for b, (e, i) in enumerate(zip(episode, index)):
        n, t, v = lengths[e], times[e].astype(np.float64), values[e].astype(np.float64)
        for k, s in enumerate(steps):  # the anchor's sample is i (strictly increasing times)
            want_chunk[b, k] = v[min(max(i + s, 0), n - 1)]
            valid_chunk[b, k] = 0 <= i + s < n
        q = (anchor[b] + np.float32(seconds)).astype(np.float32).astype(np.float64)
        want_interp[b] = np.stack([np.interp(q, t, v[:, d]) for d in range(D)], -1)
        valid_interp[b] = (q >= t[0]) & (q <= t[-1])
    got = [out["chunk"].values, out["chunk"].valid, out["interp"].values, out["interp"].valid]
    out = np.concatenate([np.asarray(x, np.float64).ravel() for x in got])
    want = np.concatenate([x.ravel() for x in (want_chunk, valid_chunk, want_interp,
                                               valid_interp)])
    return out, want, 1e-5


def _voxel_cells(points, voxel_size, point_range):
    """The contract's voxel rule in numpy: float32 (p - lo) / size floored per axis, kept
    inside [lo, hi) and the grid; (x-major cell per point, kept mask, grid shape)."""
    lo, hi = np.float32(point_range[:3]), np.float32(point_range[3:])
    size = np.broadcast_to(np.float32(voxel_size), (3,))
    spans = (np.float64(point_range[3:]) - np.float64(point_range[:3])) / np.float64(voxel_size)
    shape = tuple(max(1, int(round(float(d)))) for d in spans)
    with np.errstate(invalid="ignore"):
        ijk = np.floor((points - lo) / size)  # float32 arithmetic, as the contract says
        keep = np.all((points >= lo) & (points < hi) & (ijk >= 0) & (ijk < np.asarray(shape)),
                      axis=-1)
    ijk = np.where(keep[..., None], ijk, 0).astype(np.int64)
    return (ijk[..., 0] * shape[1] + ijk[..., 1]) * shape[2] + ijk[..., 2], keep, shape


@register_check("voxelize")
def _check_voxelize(rng):
    from ..voxels.voxelize import voxelize
    from ..voxels.voxelize_cases import CASES
    call = CASES["uniform"].make(rng, mode="mean")  # points in and around a cubic grid
    points, features = call.arrays["points"], call.arrays["features"]
    grid = dict(voxel_size=call.options["voxel_size"], point_range=call.options["point_range"])
    count = voxelize(points, **grid)
    mean = call()
    cells, keep, shape = _voxel_cells(points, **grid)
    B, V, C = points.shape[0], int(np.prod(shape)), features.shape[-1]
    want_count, want_sum = np.zeros((B, V)), np.zeros((B, V, C))
    for b in range(B):
        np.add.at(want_count[b], cells[b][keep[b]], 1)
        np.add.at(want_sum[b], cells[b][keep[b]], features[b][keep[b]])
    want_mean = want_sum / np.maximum(want_count, 1)[..., None]
    out = np.concatenate([np.asarray(count, np.float64).ravel(),
                          np.asarray(mean, np.float64).ravel()])
    return out, np.concatenate([want_count.ravel(), want_mean.ravel()]), 1e-5


@register_check("points_to_voxels")
def _check_points_to_voxels(rng):
    from ..voxels.points_to_voxels_cases import CASES
    call = CASES["uniform"].make(rng)  # faces, NaN/inf, outside points; ragged lengths
    points, features, lengths = (call.arrays[k] for k in ("points", "features", "lengths"))
    o = call.options
    M, P = o["max_voxels"], o["max_points_per_voxel"]
    out = call()
    cells, keep, shape = _voxel_cells(points, o["voxel_size"], o["point_range"])
    B, N, C = features.shape
    want = {"voxels": np.zeros((B, M, P, 3 + C)), "coords": -np.ones((B, M, 3)),
            "num_points": np.zeros((B, M)), "num_voxels": np.zeros(B),
            "point_to_voxel": -np.ones((B, N))}
    for b in range(B):  # rows in order of each voxel's first point; points in input order
        rows = {}
        for i in np.flatnonzero(keep[b][:lengths[b]]):
            cell = cells[b, i]
            if cell not in rows and len(rows) < M:
                rows[cell] = len(rows)
                want["coords"][b, rows[cell]] = np.unravel_index(cell, shape)
            r = rows.get(cell)
            if r is not None and want["num_points"][b, r] < P:
                slot = int(want["num_points"][b, r])
                want["voxels"][b, r, slot] = np.concatenate([points[b, i], features[b, i]])
                want["num_points"][b, r] += 1
                want["point_to_voxel"][b, i] = r
        want["num_voxels"][b] = len(rows)
    fields = ("voxels", "coords", "num_points", "num_voxels", "point_to_voxel")
    got = np.concatenate([np.asarray(getattr(out, f), np.float64).ravel() for f in fields])
    return got, np.concatenate([want[f].ravel() for f in fields]), 0.0


def _platforms() -> list[str]:
    platforms = ["cpu"]
    try:
        if jax.devices("gpu"):
            platforms.append("gpu")
    except RuntimeError:
        pass
    return platforms


def self_test(seed: int | None = None) -> Report:
    """Runs every registered check on every available platform; returns a ``Report``."""
    from .primitive import REGISTRY
    rng_seed = np.random.SeedSequence(seed).entropy
    results, outputs = [], {}
    for name, check in sorted(CHECKS.items()):
        for platform in _platforms():
            rng = np.random.default_rng(rng_seed)  # same inputs on every platform
            backend = REGISTRY[name].backend(platform) if name in REGISTRY else "jnp"
            start = time.perf_counter()
            try:
                with jax.default_device(jax.devices(platform)[0]):
                    out, expected, tol = check(rng)
                err = float(np.max(np.abs(out.astype(np.float64) - expected), initial=0.0))
                ok = bool(np.isfinite(err) and err <= tol)
                detail = f"max |error| {err:.2e} (tolerance {tol:.0e})"
                outputs[(name, platform)] = out
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            results.append(CheckResult(name, platform, backend, ok, detail,
                                       time.perf_counter() - start))
        if (name, "cpu") in outputs and (name, "gpu") in outputs:
            diff = float(np.max(np.abs(outputs[(name, "cpu")].astype(np.float64)
                                       - outputs[(name, "gpu")]), initial=0.0))
            results.append(CheckResult(name, "both", "cpu-vs-gpu", diff <= 1e-5,
                                       f"max |cpu - gpu| {diff:.2e}", 0.0))
    return Report(results, info())


def main() -> int:
    report = self_test()
    print(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
