"""Normalisation statistics of a stream on the device: count, mean, std, min, max, quantiles.

docs/stats.md is the contract; in short:

* Over every sample whose per-sample mask is true, per feature, ignoring
  non-finite values (they are counted in ``nonfinite``), in float32 data
  (bfloat16 / float16 are converted exactly; float64 under x64 is rounded to
  float32 for the histogram only).
* **Quantiles** equal ``numpy.quantile(x, q)`` (its default "linear" rule) on
  the same data in float64, up to float32 rounding of the final
  interpolation: the two order statistics around rank ``q (n - 1)`` are found
  *exactly*, by a histogram of the float32 bit patterns. Pass 1 counts every
  value in one of 65536 coarse bins (the top 16 bits of the order-preserving
  key: sign, exponent and 7 mantissa bits, so a coarse bin spans 2**-7 of its
  values' magnitude); pass 2 counts, within the few coarse bins that hold the
  wanted ranks, the low 16 bits: the exact value.
  ``coarse_quantiles`` gives the pass-1 answer alone (within one coarse bin).
* **Deterministic**: the histograms add integers; the float sums are XLA
  reductions of fixed shape, the same program each run.
* **Mergeable** across hosts or devices: ``partial_moments`` /
  ``merge_moments`` (count, mean and centred second moment, combined with
  Chan's formula) and the integer histograms, which add.
"""

from __future__ import annotations

import functools
import json
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["StreamStats", "Moments", "stream_stats", "finish_stats", "partial_moments",
           "merge_moments", "coarse_histogram", "fine_histogram", "quantile_targets",
           "finish_quantiles", "coarse_quantiles", "device_stats", "save_stats", "load_stats",
           "QUANTILES"]

#: Quantiles computed by default (openpi and LeRobot normalise with q01 / q99).
QUANTILES = (0.01, 0.99)
_COARSE_BITS = 16
_BINS = 1 << _COARSE_BITS


class StreamStats(NamedTuple):
    """Statistics of one stream, each ``[D]`` (``quantiles`` is ``{q: [D]}``)."""
    count: np.ndarray
    nonfinite: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray
    quantiles: dict

    def as_dict(self) -> dict:
        """LeRobot ``stats.json`` keys: mean, std, min, max, count, q01, q99 (q as 2 digits)."""
        out = {"mean": self.mean, "std": self.std, "min": self.min, "max": self.max,
               "count": np.asarray([int(np.max(self.count, initial=0))])}
        for q, v in self.quantiles.items():
            out[_quantile_key(q)] = v
        return out


class Moments(NamedTuple):
    """Mergeable moments, each ``[D]``: count, the shift (a value near the mean) the mean is
    taken relative to, that relative mean, the centred sum of squares, min, max, non-finite
    count.

    Summing ``x - shift`` rather than ``x`` keeps float32 sums accurate where the data
    sit far from zero (epoch seconds, encoder counts): their mean is the shift plus
    a small, accurately summed correction.
    """
    count: jax.Array
    shift: jax.Array
    mean: jax.Array
    m2: jax.Array
    min: jax.Array
    max: jax.Array
    nonfinite: jax.Array


def _quantile_key(q: float) -> str:
    pct = q * 100
    return f"q{int(round(pct)):02d}" if abs(pct - round(pct)) < 1e-9 else f"q{pct:g}"


def _as_matrix(values, xp=jnp):
    """``values`` as ``[N, D]`` (``[N]`` is one feature); other ranks raise."""
    values = xp.asarray(values)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f"values must have shape [N, D], got {tuple(values.shape)}")
    return values


def _checked_valid(valid, n: int, xp=jnp):
    """``valid`` as a bool ``[n]`` array; another shape or dtype raises."""
    valid = xp.asarray(valid)
    if valid.shape != (n,) or valid.dtype != np.bool_:
        raise ValueError(f"valid must be a bool array of shape {(n,)}, got "
                         f"{valid.dtype.name} {tuple(valid.shape)}")
    return valid


def _as_float32(values):
    values = _as_matrix(values)
    if not jnp.issubdtype(values.dtype, jnp.floating):
        raise TypeError(f"values must be floating point, got {values.dtype.name} "
                        f"{tuple(values.shape)}")
    return values


def _mask(values, valid):
    """[N, D] bool: sample selected by ``valid`` and value finite."""
    finite = jnp.isfinite(values)
    if valid is None:
        return finite, jnp.zeros(values.shape[1], jnp.int32) + jnp.sum(~finite, 0, jnp.int32)
    use = _checked_valid(valid, values.shape[0])[:, None]
    return use & finite, jnp.sum(use & ~finite, 0, dtype=jnp.int32)


@jax.jit
def partial_moments(values, valid=None) -> Moments:
    """Moments of ``values [N, D]`` over the samples where ``valid [N]`` (default all).

    Three reads of the data: a rough mean (about the first used sample), the sum
    about that mean rounded to the data's dtype (the shift), and the squares
    about the exact mean. The shift sits within the data's spread of the mean,
    so ``x - shift`` is small and its float32 sums are accurate whatever the
    offset of the data or its first sample.
    """
    values = _as_float32(values)
    acc = jnp.float64 if values.dtype == jnp.float64 else jnp.float32
    use, nonfinite = _mask(values, valid)
    x = values.astype(acc)
    count = jnp.sum(use, 0, dtype=jnp.int32)
    n = jnp.maximum(count, 1).astype(acc)
    if x.shape[0] == 0:
        first = jnp.zeros(x.shape[1], acc)
    else:
        first = jnp.take_along_axis(x, jnp.argmax(use, axis=0)[None], 0)[0]
    first = jnp.where(count > 0, first, 0)
    shift = first + jnp.sum(jnp.where(use, x - first, 0), 0) / n   # 0 for an empty feature
    y = jnp.where(use, x - shift, 0)
    mean = jnp.sum(y, 0) / n
    m2 = jnp.sum(jnp.where(use, jnp.square(y - mean), 0), 0)
    big = jnp.asarray(jnp.inf, acc)
    lo = jnp.min(jnp.where(use, x, big), 0, initial=big)
    hi = jnp.max(jnp.where(use, x, -big), 0, initial=-big)
    return Moments(count, shift, mean, m2, lo, hi, nonfinite)


def merge_moments(a: Moments, b: Moments) -> Moments:
    """Combines the moments of two disjoint sets of samples (Chan et al.), in ``a``'s shift."""
    n = a.count + b.count
    nf = jnp.maximum(n, 1).astype(a.mean.dtype)
    shift = jnp.where(a.count > 0, a.shift, b.shift)
    mean_a = jnp.where(a.count > 0, a.mean, 0)
    mean_b = b.mean + (b.shift - shift)                            # b's mean in the new shift
    delta = mean_b - mean_a
    mean = mean_a + delta * (b.count / nf)
    m2 = a.m2 + b.m2 + jnp.square(delta) * (a.count * (b.count / nf))
    return Moments(n, shift, jnp.where(n > 0, mean, 0), m2, jnp.minimum(a.min, b.min),
                   jnp.maximum(a.max, b.max), a.nonfinite + b.nonfinite)


def _order_keys(values):
    """uint32 keys whose unsigned order is the order of the float32 values (-0 < +0)."""
    bits = jax.lax.bitcast_convert_type(values.astype(jnp.float32), jnp.uint32)
    flip = jnp.where(bits >> 31 == 1, jnp.uint32(0xFFFFFFFF), jnp.uint32(0x80000000))
    return bits ^ flip


@jax.jit
def coarse_histogram(values, valid=None):
    """``int32 [D, 65536]``: per feature, counts of the top 16 bits of the order keys."""
    values = _as_float32(values)
    use, _ = _mask(values, valid)
    D = values.shape[1]
    bins = (_order_keys(values) >> (32 - _COARSE_BITS)).astype(jnp.int32)
    flat = jnp.where(use, bins + jnp.arange(D, dtype=jnp.int32) * _BINS, D * _BINS)
    counts = jnp.zeros(D * _BINS + 1, jnp.int32).at[flat.reshape(-1)].add(1)
    return counts[:-1].reshape(D, _BINS)


@jax.jit
def fine_histogram(values, valid, targets):
    """``int32 [D, R, 65536]``: per feature and target coarse bin ``targets [D, R]``, counts
    of the low 16 bits of the keys of the values in that coarse bin."""
    values = _as_float32(values)
    use, _ = _mask(values, valid)
    D, R = targets.shape
    if D * R * _BINS >= 2**31:
        raise ValueError(f"fine_histogram: {D} features x {R} order statistics x {_BINS} bins "
                         "overflow int32 indices; pass fewer features per call (stream_stats "
                         "splits them itself)")
    keys = _order_keys(values)
    coarse = (keys >> (32 - _COARSE_BITS)).astype(jnp.int32)      # [N, D]
    low = (keys & jnp.uint32(_BINS - 1)).astype(jnp.int32)
    counts = jnp.zeros(D * R * _BINS + 1, jnp.int32)
    feature = jnp.arange(D, dtype=jnp.int32)
    for r in range(R):  # R is small (two per quantile at most)
        hit = use & (coarse == targets[:, r][None, :])
        flat = jnp.where(hit, (feature * R + r) * _BINS + low, D * R * _BINS)
        counts = counts.at[flat.reshape(-1)].add(1)
    return counts[:-1].reshape(D, R, _BINS)


def _fraction(q: float) -> tuple[int, int]:
    """``q`` as num / den with den <= 10000 (exact rank arithmetic in int32)."""
    f = Fraction(q).limit_denominator(10000)
    if abs(float(f) - q) > 1e-12:
        raise ValueError(f"quantiles must be multiples of 1e-4 (fractions with a denominator "
                         f"up to 10000), got {q}")
    return f.numerator, f.denominator


def _ranks(count, qs: Sequence[float]):
    """numpy's linear rule, exactly: per quantile and feature the 0-based ranks lo, hi of the
    order statistics around ``q (n - 1)`` and the fraction between them ([Q, D] each)."""
    los, his, fracs = [], [], []
    last = jnp.maximum(count.astype(jnp.int32) - 1, 0)
    for q in qs:
        num, den = _fraction(q)
        lo = (last // den) * num + ((last % den) * num) // den
        rem = ((last % den) * num) % den
        los.append(lo)
        his.append(jnp.minimum(lo + 1, last))
        fracs.append(rem.astype(jnp.float32) / den)
    return jnp.stack(los), jnp.stack(his), jnp.stack(fracs)


def _bin_of_rank(counts, rank):
    """Per row of ``counts [D, K]`` the bin holding the ``rank [D, R]``-th (0-based) value."""
    cum = jnp.cumsum(counts, axis=-1)
    return jnp.sum(cum[:, None, :] <= rank[:, :, None], axis=-1, dtype=jnp.int32)


def quantile_targets(coarse, qs: Sequence[float] = QUANTILES):
    """``int32 [D, 2 Q]``: the coarse bins that hold the two order statistics of each quantile,
    from a pass-1 histogram (summed over hosts / devices, if several)."""
    coarse = jnp.asarray(coarse, jnp.int32)
    if not qs:
        return jnp.zeros((coarse.shape[0], 0), jnp.int32)
    lo, hi, _ = _ranks(jnp.sum(coarse, 1), qs)
    wanted = jnp.concatenate([lo, hi]).T                     # [D, 2Q]: all lo, then all hi
    return jnp.minimum(_bin_of_rank(coarse, wanted), _BINS - 1)


def _key_to_float32(keys):
    keys = keys.astype(jnp.uint32)
    bits = jnp.where(keys >> 31 == 1, keys ^ jnp.uint32(0x80000000), keys ^ jnp.uint32(0xFFFFFFFF))
    return jax.lax.bitcast_convert_type(bits, jnp.float32)


def finish_quantiles(coarse, fine, targets, qs: Sequence[float] = QUANTILES) -> dict:
    """``{q: float32 [D]}`` from the pass-1 histogram, the pass-2 histogram of ``targets``
    (each summed over hosts / devices, if several) and the targets."""
    coarse, fine = jnp.asarray(coarse, jnp.int32), jnp.asarray(fine, jnp.int32)
    targets = jnp.asarray(targets, jnp.int32)
    if not qs:
        return {}
    count = jnp.sum(coarse, 1)
    lo, hi, frac = _ranks(count, qs)
    wanted = jnp.concatenate([lo, hi]).T                     # [D, 2Q]
    below = jnp.take_along_axis(jnp.cumsum(coarse, 1) - coarse, targets, 1)
    within = wanted - below                                  # rank inside the target bin
    low = jnp.sum(jnp.cumsum(fine, -1) <= within[:, :, None], -1, dtype=jnp.int32)
    keys = (targets.astype(jnp.uint32) << (32 - _COARSE_BITS)) | jnp.minimum(
        low, _BINS - 1).astype(jnp.uint32)
    found = _key_to_float32(keys)                            # [D, 2Q]
    Q = len(qs)
    out = {}
    for i, q in enumerate(qs):
        a, b = found[:, i], found[:, Q + i]
        # an integer rank is the order statistic itself, bit for bit (no arithmetic, which
        # XLA's CPU backend would flush to zero for denormals)
        value = jnp.where(frac[i] == 0, a, a + frac[i] * (b - a))
        out[q] = jnp.where(count > 0, value, jnp.nan)
    return out


def coarse_quantiles(coarse, qs: Sequence[float] = QUANTILES) -> dict:
    """Quantiles from the pass-1 histogram alone: the lower edge of the coarse bin of each
    lower rank (at most 2**-7 relative below it, or 2**-133 absolute among subnormals and
    zero); no second pass over the data."""
    coarse = jnp.asarray(coarse, jnp.int32)
    count = jnp.sum(coarse, 1)
    lo, _, _ = _ranks(count, qs)
    bins = jnp.minimum(_bin_of_rank(coarse, lo.T), _BINS - 1)
    edges = _key_to_float32(bins.astype(jnp.uint32) << (32 - _COARSE_BITS))
    return {q: jnp.where(count > 0, edges[:, i], jnp.nan) for i, q in enumerate(qs)}


@functools.partial(jax.jit, static_argnames="qs")
def device_stats(values, valid=None, qs: tuple = QUANTILES):
    """Every statistic in one jitted program (no host round trip between the passes):
    ``(Moments, {q: float32 [D]})``."""
    moments = partial_moments(values, valid)
    coarse = coarse_histogram(values, valid)
    targets = quantile_targets(coarse, qs)
    fine = fine_histogram(values, valid, targets) if qs else None
    return moments, finish_quantiles(coarse, fine, targets, qs) if qs else {}


#: Features per ``device_stats`` call of ``stream_stats``: the fine histogram is
#: ``int32 [D, 2 Q, 65536]`` (256 KiB per feature and order statistic), so wide streams
#: (image embeddings) are taken in blocks of about 256 MiB of histogram.
_HISTOGRAM_BUDGET = 1 << 26


def _host_deviations(values, valid):
    """float64 host data without x64: per feature, the median of the used finite values
    (float64; an outlier cannot pull it away from the bulk, as a first sample could) and
    the deviations from it rounded to float32 (so 1.7e9 + 0.06 k keeps its steps)."""
    x = _as_matrix(np.asarray(values, np.float64), np)
    use = np.isfinite(x)
    if valid is not None:
        use &= _checked_valid(valid, x.shape[0], np)[:, None]
    base = np.zeros(x.shape[1])
    if x.size:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN features: base 0
            med = np.nanmedian(np.where(use, x, np.nan), axis=0)
        base = np.where(np.isfinite(med), med, 0.0)
    with np.errstate(over="ignore"):
        dev = (x - base).astype(np.float32)
    if np.any(use & ~np.isfinite(dev)):
        raise ValueError("values: float64 data whose deviations from their median exceed "
                         "float32's range; enable jax_enable_x64 for its statistics")
    return dev, base


def stream_stats(values, valid=None, *, quantiles: Sequence[float] = QUANTILES) -> StreamStats:
    """Statistics of ``values [N, D]`` (``[N]`` is one feature) over ``valid [N]`` samples.

    float32 results for float32 / 16-bit data, float64 for float64 data. float64 host
    data without x64 is taken as each feature's median (float64) plus float32 deviations
    from it (docs/stats.md)."""
    qs = tuple(float(q) for q in quantiles)
    for q in qs:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantiles must lie in [0, 1], got {q}")
        _fraction(q)
    wide = np.dtype(getattr(values, "dtype", np.float32)) == np.float64
    base = None
    if wide and not jax.config.jax_enable_x64:
        values, base = _host_deviations(values, valid)
    values = _as_float32(values)
    D = values.shape[1]
    step = max(1, _HISTOGRAM_BUDGET // (_BINS * max(2 * len(qs), 1)))
    blocks = [jax.device_get(_block_stats(values, valid, qs, a, min(a + step, D)))
              for a in range(0, max(D, 1), step)]
    cat = lambda parts: np.concatenate([np.asarray(p) for p in parts])  # noqa: E731
    m = Moments(*(cat([b[0][i] for b in blocks]) for i in range(len(Moments._fields))))
    qv = {q: cat([b[1][q] for b in blocks]) for q in qs}
    return finish_stats(m, qv, base=base, dtype=np.float64 if wide else np.float32)


@functools.partial(jax.jit, static_argnames=("qs", "start", "stop"))
def _block_stats(values, valid, qs, start, stop):
    """``device_stats`` of features [start, stop), sliced inside the program (no copy)."""
    return device_stats(values[:, start:stop], valid, qs)


def finish_stats(moments: Moments, quantiles: Mapping, *, base=None,
                 dtype=np.float32) -> StreamStats:
    """``StreamStats`` (``dtype`` results; NaN where ``count == 0``) from merged moments and
    ``finish_quantiles``' output: the last step of the several-host recipe (docs/stats.md).
    ``base [D]`` (float64) is added to every location statistic when the data were
    deviations from it."""
    m = Moments(*(np.asarray(v) for v in moments))
    base = np.zeros(m.count.shape, np.float64) if base is None else np.asarray(base, np.float64)
    empty = m.count == 0

    def finish(v):
        return np.where(empty, np.nan, v).astype(dtype)

    std = np.sqrt(m.m2.astype(np.float64) / np.maximum(m.count, 1))
    mean = base + m.shift.astype(np.float64) + m.mean.astype(np.float64)
    return StreamStats(count=m.count, nonfinite=m.nonfinite, mean=finish(mean), std=finish(std),
                       min=finish(base + m.min.astype(np.float64)),
                       max=finish(base + m.max.astype(np.float64)),
                       quantiles={q: finish(base + np.asarray(v, np.float64))
                                  for q, v in quantiles.items()})


def save_stats(stats: Mapping[str, StreamStats], path) -> None:
    """Writes ``{stream: {mean, std, min, max, count, q01, q99}}`` (LeRobot's stats.json)."""
    doc = {name: {k: np.asarray(v).tolist() for k, v in s.as_dict().items()}
           for name, s in stats.items()}
    Path(path).write_text(json.dumps(doc, indent=2, allow_nan=True))


def load_stats(path) -> dict[str, dict[str, np.ndarray]]:
    """Reads a stats.json (ours or LeRobot's): ``{stream: {key: float32 array}}``."""
    doc = json.loads(Path(path).read_text())
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a JSON object of streams, got {type(doc).__name__}")
    return {name: {k: np.asarray(v, np.int64 if k == "count" else np.float32)
                   for k, v in entry.items()} for name, entry in doc.items()}
