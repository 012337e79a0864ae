"""Timestamp irregularities of a stream, per episode: a report and a validity mask, never an error.

A recorded clock is rarely clean: frames dropped (gaps), frames stamped late or
early (jitter), the same frame written twice (duplicates), a clock stepping back.
LeRobot refuses such a dataset when training starts ("timestamps unexpectedly
violate the tolerance"); here the readers describe it instead, and mark the
samples that cannot be placed on a clock as invalid.

Rules, per episode, sample k (``t`` the stamps in file order, ``m`` the largest
stamp before k, ``P`` the nominal period ``1 / fps`` when known, ``tol`` the
tolerance in seconds):

* ``nan``: ``t[k]`` is NaN (or, for int64 stamps, never: they have no NaN);
* ``duplicate``: ``|t[k] - m| <= d`` (the same instant again), ``d = min(tol, P / 4)``
  (``tol`` without ``P``), so that at rates near ``1 / tol`` real steps are not duplicates;
* ``backward``: ``t[k] < m - d`` (the clock went back);
* ``gap`` (needs ``P``): ``t[k] - m > P + tol`` and ``t[k] - m >= 1.5 P``: at least one
  sample is missing before k; ``gap_seconds`` is ``t[k] - m``;
* ``jitter`` (needs ``P``): any other step with ``|t[k] - m - P| > tol``.

The mask (``valid``) is False for the categories in ``invalid`` (default
``nan``, ``duplicate``, ``backward``: the samples a sorted clock cannot hold; the
first of equal stamps stays valid). A gap removes no sample: windows that reach
into it see the missing time through their tolerance; add ``"gap"`` to ``invalid``
to mark the first sample after each gap, ``"jitter"`` to mark jittered samples.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

import numpy as np

CATEGORIES = ("nan", "duplicate", "backward", "gap", "jitter")
DEFAULT_INVALID = ("nan", "duplicate", "backward")


@dataclasses.dataclass(frozen=True, eq=False)
class TimestampReport:
    """The irregularities of one episode's clock; indices are sample positions in the episode."""

    episode: int
    clock: str
    samples: int
    start: float
    end: float
    period: float | None
    tolerance: float
    nan: np.ndarray
    duplicate: np.ndarray
    backward: np.ndarray
    gap: np.ndarray
    gap_seconds: np.ndarray
    jitter: np.ndarray
    max_deviation: float

    @property
    def ok(self) -> bool:
        """True when the episode has none of the irregularities."""
        return not any(getattr(self, c).size for c in CATEGORIES)

    def counts(self) -> dict[str, int]:
        return {c: int(getattr(self, c).size) for c in CATEGORIES}

    def __str__(self) -> str:
        head = (f"episode {self.episode} [{self.clock}]: {self.samples} samples, "
                f"{self.start:.6g}..{self.end:.6g} s")
        if self.ok:
            return head + ", regular"
        parts = [f"{n} {c}" for c, n in self.counts().items() if n]
        if self.gap.size:
            parts.append(f"longest gap {float(self.gap_seconds.max()):.6g} s")
        if self.period is not None:
            parts.append(f"max |step - 1/fps| {self.max_deviation:.3g} s")
        return head + ", " + ", ".join(parts)


@dataclasses.dataclass(frozen=True, eq=False)
class Diagnostics:
    """Per-episode timestamp reports of one dataset (all its clocks)."""

    reports: tuple[TimestampReport, ...]

    @property
    def irregular(self) -> tuple[TimestampReport, ...]:
        return tuple(r for r in self.reports if not r.ok)

    @property
    def ok(self) -> bool:
        return not self.irregular

    def counts(self) -> dict[str, int]:
        total = dict.fromkeys(CATEGORIES, 0)
        for r in self.reports:
            for c, n in r.counts().items():
                total[c] += n
        return total

    def __str__(self) -> str:
        bad = self.irregular
        head = (f"{len(self.reports)} episode clocks, {len(bad)} irregular"
                + ("" if not bad else ": " + ", ".join(f"{n} {c}" for c, n in
                                                       self.counts().items() if n)))
        return "\n".join([head] + [f"  {r}" for r in bad])


def check_timestamps(times, offsets, *, period: float | None = None, tolerance: float = 1e-4,
                     invalid: Iterable[str] = DEFAULT_INVALID, clock: str = "timestamp",
                     episodes: Sequence[int] | None = None, scale: float = 1.0
                     ) -> tuple[np.ndarray, list[TimestampReport]]:
    """Reports and validity mask of a flat clock ``times [N]`` cut by ``offsets [E + 1]``.

    ``scale`` converts the stamps to seconds (``1e-9`` for int64 nanoseconds); the
    comparisons are made on exact differences first (int64 stays int64), then scaled.
    ``episodes`` names the episodes in the reports (default ``0..E-1``).
    Returns ``(valid [N] bool, [report per episode])``.
    """
    invalid = tuple(invalid)
    unknown = sorted(set(invalid) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"invalid categories {unknown} unknown; choose from {CATEGORIES}")
    times = np.asarray(times)
    offsets = np.asarray(offsets, np.int64)
    E = len(offsets) - 1
    episodes = range(E) if episodes is None else episodes
    valid = np.ones(times.shape[0], bool)
    reports = []
    for e, ep in zip(range(E), episodes):
        a, b = int(offsets[e]), int(offsets[e + 1])
        mask, report = _one_episode(times[a:b], period, tolerance, invalid, clock, int(ep),
                                    scale)
        valid[a:b] = mask
        reports.append(report)
    return valid, reports


def _one_episode(t, period, tol, invalid, clock, episode, scale):
    n = t.shape[0]
    empty = np.zeros(0, np.int64)
    if t.dtype.kind == "f":
        nan = np.isnan(t)
        filled = np.where(nan, -np.inf, t.astype(np.float64))
    else:
        nan = np.zeros(n, bool)
        filled = t.astype(np.int64)
    running = np.maximum.accumulate(filled) if n else filled
    step = np.full(n, np.nan)  # t[k] - (largest earlier stamp), in seconds; NaN for k = 0
    if n > 1:
        prev = running[:-1]
        have_prev = np.isfinite(prev) if t.dtype.kind == "f" else np.ones(n - 1, bool)
        diff = (filled[1:] - prev).astype(np.float64) * scale
        step[1:] = np.where(have_prev & ~nan[1:], diff, np.nan)
    known = ~np.isnan(step)
    same = tol if period is None else min(tol, period / 4)
    dup = known & (np.abs(step) <= same)
    back = known & (step < -same)
    if period is not None:
        dev = np.where(known & ~dup & ~back, np.abs(step - period), 0.0)
        gap = known & (step > period + tol) & (step >= 1.5 * period)
        jit = known & ~dup & ~back & ~gap & (dev > tol)
        max_dev = float(dev.max(initial=0.0))
    else:
        gap = jit = np.zeros(n, bool)
        max_dev = 0.0
    flags = {"nan": nan, "duplicate": dup, "backward": back, "gap": gap, "jitter": jit}
    bad = np.zeros(n, bool)
    for c in invalid:
        bad |= flags[c]
    finite = filled[np.isfinite(filled)] if t.dtype.kind == "f" else filled
    start = float(finite.min()) * scale if finite.size else float("nan")
    end = float(finite.max()) * scale if finite.size else float("nan")
    idx = {c: np.flatnonzero(f).astype(np.int64) if f.any() else empty for c, f in flags.items()}
    report = TimestampReport(episode=episode, clock=clock, samples=n, start=start, end=end,
                             period=period, tolerance=tol, gap_seconds=step[idx["gap"]],
                             max_deviation=max_dev, **idx)
    return ~bad, report
