"""Episodes the reader tests write to disk: the real recording (sena.npz) and synthetic ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jax_robocache.demo.synthetic import multirate_episodes

SENA = Path(__file__).resolve().parents[2] / "jax_robocache" / "demo" / "data" / "sena.npz"


def sena_raw() -> dict[str, np.ndarray]:
    with np.load(SENA) as d:
        return {k: d[k] for k in d.files}


def sena_episodes(split: int = 100) -> list[dict[str, np.ndarray]]:
    """The 224 real laser scans cut into two episodes: ``observation.scan`` [n, 361] float32,
    ``action`` (odometry increments) [n, 3] float32, ``timestamp`` float32 seconds since the
    episode's first scan (made relative in float64, then rounded once, as a recorder would)."""
    raw = sena_raw()
    out = []
    for a, b in ((0, split), (split, len(raw["scan_t"]))):
        t = raw["scan_t"][a:b]
        out.append({"observation.scan": raw["ranges"][a:b], "action": raw["odo_inc"][a:b],
                    "timestamp": (t - t[0]).astype(np.float32)})
    return out


def synthetic_episodes(num: int = 5, seed: int = 0, duration_s: float = 1.0,
                       rate_hz: float = 50.0) -> list[dict[str, np.ndarray]]:
    """Ragged episodes from ``multirate_episodes``' joint stream (jittered clock, dropouts):
    ``observation.state`` [n, 14] float32, ``action`` [n, 2, 3] float64 (a 2-D feature),
    ``timestamp`` [n] float32."""
    s = multirate_episodes(num, duration_s, joints_hz=rate_hz, seed=seed, camera_dim=4)["joints"]
    rng = np.random.default_rng(seed + 1)
    out = []
    for e in range(num):
        n = int(s.lengths[e])
        state = np.asarray(s.values[e, :n])
        out.append({"observation.state": state,
                    "action": rng.normal(size=(n, 2, 3)),
                    "timestamp": np.asarray(s.times[e, :n], np.float32)})
    return out


def regular_episodes(lengths=(40, 1, 25, 60), fps: float = 30.0, seed: int = 0):
    """Episodes on an exact frame clock ``k / fps`` (float32), random values."""
    rng = np.random.default_rng(seed)
    return [{"observation.state": rng.normal(size=(n, 6)).astype(np.float32),
             "action": rng.normal(size=(n, 4)).astype(np.float32),
             "timestamp": (np.arange(n) / fps).astype(np.float32)} for n in lengths]
