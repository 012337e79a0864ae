"""The case catalogue of ``sample_windows``: its random inputs, for every consumer (see
_core/cases.py).

Generators: ``make_dataset`` (per stream, one ragged list of episodes: jittered clocks
with repeated stamps, an empty and a one-sample episode, masked samples),
``random_anchors`` (episode ids, some outside [0, E); anchors, some NaN, some outside the
episode, many exactly on a sample) and ``training_data`` (issue 17's training batch:
action chunk, state history, image embedding, wrench window mean over E episodes).

Cases (arrays ``episode``, ``anchor`` [B], the batch; then per stream ``<name>.values``
[N, D], ``<name>.times`` [N], ``<name>.offsets`` [E + 1] and, for masked streams,
``<name>.valid`` [N], shared by the batch): ``every_method_clamp`` / ``_nan`` / ``_zero``
(``every_method_spec``: time windows of every method with offsets, tolerances and windows
wider than any episode, index windows past both ends; ``clamp`` adds an extrapolating
window) and ``training_batch`` (``TRAINING_SPEC``).
"""

from __future__ import annotations

import functools

import ml_dtypes
import numpy as np

from .._core.cases import Call, Case, sized
from .store import EpisodeStore, RaggedStream
from .windows import Window, sample_windows

#: E episodes (every_method), or E episodes of about ``seconds`` s (training_batch).
SIZES = {"small": dict(B=8, E=5, seconds=2.0), "large": dict(B=256, E=50, seconds=20.0)}

#: name -> (rate Hz, D, dtype) of make_dataset's default streams.
DEFAULT_STREAMS = {"state": (50, 3, np.float32), "action": (50, 2, np.float32),
                   "quat": (30, 4, np.float32), "wrench": (1000, 2, np.float32),
                   "emb": (15, 5, ml_dtypes.bfloat16)}

#: Issue 17's training batch: name -> (rate Hz, D, dtype), and its windows.
TRAINING_STREAMS = {"action": (50, 14, np.float32), "state": (50, 14, np.float32),
                    "image_embedding": (15, 512, ml_dtypes.bfloat16),
                    "wrench": (1000, 6, np.float32)}
TRAINING_WINDOW_S = 0.02
TRAINING_SPEC = {"action": Window(steps=range(50)), "state": Window(steps=(-1, 0)),
                 "image_embedding": Window(seconds=(0.0,), method="previous"),
                 "wrench": Window(seconds=(0.0,), method="window_mean",
                                  window=TRAINING_WINDOW_S)}


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

    ``streams``: name -> (rate Hz, D, dtype), default ``DEFAULT_STREAMS`` (about 0.4 s
    per episode; ``quat`` holds unit quaternions). Times are float32 (or ``time_dtype``)
    relative seconds; the streams in ``masked`` get a per-sample mask.
    """
    streams = streams or DEFAULT_STREAMS
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


def every_method_spec(oor):
    """Every method on ``DEFAULT_STREAMS``, incl. windows wider than any episode."""
    spec = {
        "state": Window(seconds=(-0.04, -0.02, 0.0), offset=0.005, tolerance=0.05,
                        out_of_range=oor),
        "state_prev": Window(seconds=tuple(np.linspace(-2.0, 2.0, 9)), method="previous",
                             stream="state", out_of_range=oor),
        "state_idx": Window(steps=range(-3, 4), offset=0.01, stream="state", out_of_range=oor),
        "action": Window(steps=range(-2, 60), out_of_range=oor),
        "quat": Window(seconds=np.arange(-2, 3) / 30, method="slerp", out_of_range=oor),
        "wrench": Window(seconds=(0.0, -0.01, 0.3), method="window_mean", window=0.02,
                         tolerance=0.002, out_of_range=oor),
        "emb": Window(seconds=(0.0, 0.05, 0.5), method="nearest", tolerance=0.04,
                      out_of_range=oor),
    }
    if oor == "clamp":
        spec["action_ex"] = Window(seconds=(-0.5, 0.0, 0.7), stream="action",
                                   out_of_range="extrapolate")
    return spec


def training_data(rng, E, seconds):
    """Issue 17's dataset as ``make_dataset`` returns it: E episodes of 0.5x to 1.5x
    ``seconds`` (whole seconds, at least 1) with jittered clocks at ``TRAINING_STREAMS``' rates, no mask."""
    lengths = rng.integers(max(int(seconds * 0.5), 1), int(seconds * 1.5) + 1, E)
    data = {}
    for name, (rate, D, dtype) in TRAINING_STREAMS.items():
        n = np.maximum((lengths * rate).astype(np.int64), 1)
        times = [(np.cumsum(rng.uniform(0.8, 1.2, k)) / rate).astype(np.float32) for k in n]
        values = [rng.standard_normal((int(k), D), np.float32).astype(dtype) for k in n]
        data[name] = dict(values=values, times=times, valid=None)
    return data


def training_anchors(rng, data, B):
    """B anchors on action samples of random episodes (every training sample is valid)."""
    times = data["action"]["times"]
    sizes = np.array([len(t) for t in times])
    rows = rng.integers(0, sizes.sum(), B)
    episode = (np.searchsorted(np.cumsum(sizes), rows, side="right")).astype(np.int32)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    anchor = np.array([times[e][r - starts[e]] for e, r in zip(episode, rows)], np.float32)
    return episode, anchor


def numpy_training_batch(episode, anchor, arrays, names=tuple(TRAINING_STREAMS)):
    """``training_batch``'s window values as users build them today, per sample in numpy
    (LeRobot's indexing in a DataLoader worker): the episode's slice, the anchor's frame,
    clamped step indices, the previous image embedding, the wrench window mean (an empty
    window: the previous sample, as sample_windows clamps); then
    collate. ``arrays``: ``flat_arrays``' output. Returns one [B, K, D] array per name."""
    def stream(name, e):
        offsets = arrays[f"{name}.offsets"]
        start, end = int(offsets[e]), int(offsets[e + 1])
        return arrays[f"{name}.values"][start:end], arrays[f"{name}.times"][start:end]

    batch = {name: [] for name in names}
    for e, a in zip(np.asarray(episode).tolist(), np.asarray(anchor).tolist()):
        for name in names:
            values, times = stream(name, e)
            hi = int(np.searchsorted(times, a, side="right"))  # samples with t <= anchor
            w = TRAINING_SPEC[name]
            if not w.is_time:
                rows = [max(0, min(len(times) - 1, hi - 1 + d)) for d in w.steps]
                batch[name].append(values[rows])
            elif w.method == "previous":
                batch[name].append(values[max(hi - 1, 0)][None])
            else:  # window_mean over (anchor - window, anchor]; empty: the previous sample
                lo = int(np.searchsorted(times, np.float32(a) - np.float32(w.window),
                                         side="right"))
                rows = values[lo:hi] if hi > lo else values[max(hi - 1, 0)][None]
                batch[name].append(rows.astype(np.float64).mean(axis=0, keepdims=True))
    return tuple(np.stack(batch[name]) for name in names)


def flat_arrays(data) -> dict[str, np.ndarray]:
    """``<name>.values`` [N, D], ``.times`` [N], ``.offsets`` [E + 1] int32 and (masked
    streams) ``.valid`` [N] of ``make_dataset``'s per-episode lists."""
    arrays = {}
    for name, d in data.items():
        sizes = [len(t) for t in d["times"]]
        D = d["values"][0].shape[1] if d["values"][0].ndim == 2 else 1
        arrays[f"{name}.values"] = np.concatenate(
            [np.reshape(v, (-1, D)) for v in d["values"]]).astype(d["values"][0].dtype)
        arrays[f"{name}.times"] = np.concatenate(d["times"]).astype(d["times"][0].dtype)
        arrays[f"{name}.offsets"] = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
        if d["valid"] is not None:
            arrays[f"{name}.valid"] = np.concatenate(d["valid"]).astype(bool)
    return arrays


def max_lengths(data) -> dict[str, int]:
    """name -> its longest episode (the store's static bound)."""
    return {name: max([len(t) for t in d["times"]] + [1]) for name, d in data.items()}


def store_from_arrays(arrays, bounds=None) -> EpisodeStore:
    """The ``EpisodeStore`` of ``flat_arrays``' output (no copy); ``bounds``: name ->
    max_length."""
    names = [k[:-len(".values")] for k in arrays if k.endswith(".values")]
    return EpisodeStore({n: RaggedStream(arrays[f"{n}.values"], arrays[f"{n}.times"],
                                         arrays[f"{n}.offsets"], arrays.get(f"{n}.valid"),
                                         None if bounds is None else bounds[n])
                         for n in names})


def _call(episode, anchor, *, spec, bounds, **arrays):
    return sample_windows(store_from_arrays(arrays, bounds), episode, anchor, spec)


def _make_every_method(rng, size="small", *, oor, **overrides):
    p = sized(SIZES, size, overrides)
    data = make_dataset(rng, p["E"])
    episode, anchor = random_anchors(rng, data, p["B"])
    spec = every_method_spec(oor)
    return Call(functools.partial(_call, spec=spec, bounds=max_lengths(data)),
                dict(episode=episode, anchor=anchor, **flat_arrays(data)),
                ("episode", "anchor"), dict(spec=spec, out_of_range=oor))


def _make_training_batch(rng, size="small", **overrides):
    p = sized(SIZES, size, overrides)
    data = training_data(rng, p["E"], p["seconds"])
    episode, anchor = training_anchors(rng, data, p["B"])
    return Call(functools.partial(_call, spec=TRAINING_SPEC, bounds=max_lengths(data)),
                dict(episode=episode, anchor=anchor, **flat_arrays(data)),
                ("episode", "anchor"), dict(spec=TRAINING_SPEC))


CASES = {c.name: c for c in [
    *(Case(f"every_method_{oor}", functools.partial(_make_every_method, oor=oor))
      for oor in ("clamp", "nan", "zero")),
    Case("training_batch", _make_training_batch),
]}
