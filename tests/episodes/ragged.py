"""Random ragged episode datasets for the episodes tests (numpy, seeded by the caller)."""

from __future__ import annotations

import numpy as np


def episode_times(rng, n, rate, *, jitter=0.3, duplicates=False, start=None):
    """Sorted float64 seconds of n samples at about ``rate`` Hz (optional repeated stamps)."""
    gaps = rng.uniform(1 - jitter, 1 + jitter, n) / rate
    if duplicates and n > 2:
        gaps[1:] *= rng.random(n - 1) > 0.15
    start = rng.uniform(0.0, 0.05) if start is None else start
    return start + np.cumsum(gaps) - (gaps[0] if n else 0.0)


def ragged_lengths(rng, E, mean, *, empty=True, single=True):
    """Episode lengths around ``mean`` with (by default) an empty and a one-sample episode."""
    lengths = rng.integers(max(mean // 2, 1), mean * 3 // 2 + 2, E)
    if empty and E > 1:
        lengths[1] = 0
    if single and E > 2:
        lengths[2] = 1
    return lengths


def make_dataset(rng, E=5, *, streams=None, time_dtype=np.float32, masked=("state",),
                 duplicates=True):
    """name -> dict(values=[E arrays], times=[E arrays], valid=[E masks] or None).

    Default streams: state (50 Hz, D=3), action (50 Hz, D=2), quat (30 Hz unit
    quaternions, D=4), wrench (1 kHz, D=2, bfloat16 would need ml_dtypes: float32 here),
    emb (15 Hz, D=5, bfloat16). Times are float32 (or ``time_dtype``) relative seconds.
    """
    import ml_dtypes
    streams = streams or {"state": (50, 3, np.float32), "action": (50, 2, np.float32),
                          "quat": (30, 4, np.float32), "wrench": (1000, 2, np.float32),
                          "emb": (15, 5, ml_dtypes.bfloat16)}
    data = {}
    for name, (rate, D, dtype) in streams.items():
        mean = max(int(rate * 0.4), 2)
        lengths = ragged_lengths(rng, E, mean)
        times, values, valid = [], [], []
        for n in lengths:
            t = episode_times(rng, int(n), rate, duplicates=duplicates and name != "quat")
            times.append(t.astype(time_dtype))
            if name == "quat":
                v = rng.normal(size=(n, 4))
                v /= np.linalg.norm(v, axis=1, keepdims=True)
            else:
                v = rng.normal(size=(n, D)) * 2.0
            values.append(v.astype(dtype))
            valid.append(rng.random(n) > (0.2 if rate < 500 else 0.003))  # 1 kHz: rare gaps
        data[name] = dict(values=values, times=times,
                          valid=valid if name in masked else None)
    return data


def store_args(data):
    """(values, times, valid) mappings for ``EpisodeStore.from_episodes``."""
    values = {n: d["values"] for n, d in data.items()}
    times = {n: d["times"] for n, d in data.items()}
    valid = {n: d["valid"] for n, d in data.items() if d["valid"] is not None}
    return values, times, valid


def random_anchors(rng, data, B, *, E=None, reference="state"):
    """episode [B] int32 (some outside [0, E)), anchor [B] float32 (some NaN, some outside
    the episode, most inside)."""
    E = E or len(data[reference]["values"])
    episode = rng.integers(-1, E + 1, B).astype(np.int32)
    anchor = rng.uniform(-0.2, 1.0, B).astype(np.float32)
    anchor[rng.random(B) < 0.05] = np.nan
    # Some anchors exactly on a sample of the reference stream.
    for b in range(B):
        e = episode[b]
        if 0 <= e < E and len(data[reference]["times"][e]) and rng.random() < 0.4:
            anchor[b] = rng.choice(data[reference]["times"][e])
    return episode, anchor
