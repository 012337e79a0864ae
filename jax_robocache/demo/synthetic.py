"""Larger multi-rate episode sets for benchmarks: joints 500 Hz, force 1 kHz, camera 30 Hz.

``multirate_episodes(B, duration_s)`` returns ``{"joints", "force", "camera"}``
-> ``Stream`` with host (numpy) arrays, each stream on its own clock:

* sample k of a stream at rate f is taken at ``start + k / f + jitter``, with
  ``start`` uniform in [0, 1/f) per episode and the jitter uniform in
  +-``jitter / 2`` periods (``jitter < 1`` keeps the samples ordered);
* dropouts: each sample is lost with probability ``dropout``, and with
  probability ``gap_prob`` per episode and stream a gap of ``gap_s`` seconds
  (uniform in the range) loses every sample in it;
* ragged episodes are packed to the front: ``values [B, S, D]``,
  ``times [B, S]`` float32 seconds, ``lengths [B]`` int32 (S = the longest);
  padding repeats the last valid time (times stay sorted) with zero values;
* values are smooth functions of the actual sample times: joint angles are
  sums of sinusoids (0.2-1.5 Hz), forces a sinusoid plus noise plus decaying
  contact impulses, camera features a tanh of a random projection of a slow
  random walk (dtype ``camera_dtype``, e.g. ``jnp.bfloat16``).

All three streams use ``method="linear"``; change it with ``Stream.replace``.
``policy_clock(duration_s, rate_hz)`` gives a shared query clock.
"""

from __future__ import annotations

import numpy as np

from ..streams.stream import Stream


def _sample_times(rng, B: int, duration_s: float, rate_hz: float, jitter: float,
                  dropout: float, gap_prob: float, gap_s: tuple[float, float]):
    """Packed ``times [B, S]`` float64, ``lengths [B]`` int32."""
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"jitter must lie in [0, 1) periods, got {jitter}")
    n = int(np.ceil(duration_s * rate_hz))
    period = 1.0 / rate_hz
    start = rng.uniform(0.0, period, (B, 1))
    t = start + np.arange(n) * period + rng.uniform(-jitter / 2, jitter / 2, (B, n)) * period
    t = np.maximum(t, 0.0)
    keep = (rng.random((B, n)) >= dropout) & (t < duration_s)
    gap_len = rng.uniform(*gap_s, (B, 1))
    gap_at = rng.uniform(0.0, max(duration_s - gap_s[1], 0.0), (B, 1))
    in_gap = (rng.random((B, 1)) < gap_prob) & (t >= gap_at) & (t < gap_at + gap_len)
    keep &= ~in_gap
    order = np.argsort(~keep, axis=1, kind="stable")  # kept samples first, in time order
    t = np.take_along_axis(t, order, axis=1)
    lengths = keep.sum(axis=1).astype(np.int32)
    S = max(int(lengths.max(initial=0)), 1)
    t = t[:, :S]
    last = np.take_along_axis(t, np.maximum(lengths - 1, 0)[:, None], axis=1)
    valid = np.arange(S) < lengths[:, None]
    t = np.where(valid, t, np.where(lengths[:, None] > 0, last, 0.0))
    return t, lengths, valid


def multirate_episodes(num_episodes: int, duration_s: float = 5.0, *, joints_hz: float = 500.0,
                       force_hz: float = 1000.0, camera_hz: float = 30.0, num_joints: int = 14,
                       force_dim: int = 6, camera_dim: int = 512, jitter: float = 0.2,
                       dropout: float = 0.01, gap_prob: float = 0.3,
                       gap_s: tuple[float, float] = (0.05, 0.25), camera_dtype=np.float32,
                       seed: int = 0) -> dict[str, Stream]:
    """``num_episodes`` episodes of ``duration_s`` seconds; see the module docstring."""
    if num_episodes < 1 or duration_s <= 0:
        raise ValueError("num_episodes must be >= 1 and duration_s > 0")
    rng = np.random.default_rng(seed)
    B = num_episodes
    args = (jitter, dropout, gap_prob, tuple(gap_s))

    t, n, valid = _sample_times(rng, B, duration_s, joints_hz, *args)
    freq = rng.uniform(0.2, 1.5, (B, 1, num_joints, 2))
    phase = rng.uniform(0, 2 * np.pi, (B, 1, num_joints, 2))
    amp = rng.uniform(0.1, 1.0, (B, 1, num_joints, 2))
    joints = (amp * np.sin(2 * np.pi * freq * t[..., None, None] + phase)).sum(-1)
    joints = np.where(valid[..., None], joints, 0.0).astype(np.float32)
    streams = {"joints": Stream(joints, t.astype(np.float32), lengths=n)}

    t, n, valid = _sample_times(rng, B, duration_s, force_hz, *args)
    freq = rng.uniform(0.5, 3.0, (B, 1, force_dim))
    force = 2.0 * np.sin(2 * np.pi * freq * t[..., None]) + rng.normal(0, 0.05, t.shape + (
        force_dim,))
    contacts = rng.uniform(0, duration_s, (B, 3))  # three contact impulses per episode
    since = t[..., None] - contacts[:, None, :]
    impulse = np.where(since >= 0, np.exp(-np.maximum(since, 0) / 0.02), 0.0).sum(-1)
    force += 20.0 * impulse[..., None] * rng.uniform(-1, 1, (B, 1, force_dim))
    force = np.where(valid[..., None], force, 0.0).astype(np.float32)
    streams["force"] = Stream(force, t.astype(np.float32), lengths=n)

    t, n, valid = _sample_times(rng, B, duration_s, camera_hz, *args)
    latent_dim, knots = 8, max(int(np.ceil(duration_s * 4)) + 1, 2)  # walk: 4 knots per second
    walk = np.cumsum(rng.normal(0, 0.5, (B, knots, latent_dim)), axis=1)
    knot_t = np.linspace(0.0, duration_s, knots)
    latent = np.stack([np.stack([np.interp(t[b], knot_t, walk[b, :, k])
                                 for k in range(latent_dim)], -1) for b in range(B)])
    projection = rng.normal(0, 1 / np.sqrt(latent_dim), (latent_dim, camera_dim))
    camera = np.where(valid[..., None], np.tanh(latent @ projection), 0.0)
    streams["camera"] = Stream(camera.astype(camera_dtype), t.astype(np.float32), lengths=n)
    return streams


def policy_clock(duration_s: float = 5.0, rate_hz: float = 50.0) -> np.ndarray:
    """``[T]`` float32 query times ``(k + 1) / rate_hz`` inside ``(0, duration_s)``."""
    T = max(int(np.floor(duration_s * rate_hz)) - 1, 1)
    return ((np.arange(T) + 1) / rate_hz).astype(np.float32)
