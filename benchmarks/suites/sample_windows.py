"""sample_windows cases: one training batch cut from an on-device EpisodeStore, vs a host loader.

Issue #17's spec: state history 2 @ 50 Hz (D=14, steps -1, 0), action chunk 50 @ 50 Hz
(D=14, steps 0..49), image embedding 1 @ 15 Hz (D=512 bfloat16, previous sample), wrench
20 ms window mean @ 1 kHz (D=6); B = 256 and 4096 anchors drawn from the action samples of
E = 50 episodes of ~20 s. Goals (GPU): >= 1000x the per-sample host loader's samples/s and
>= 70% of the copy bandwidth on the bytes that must move at B = 4096. Baselines: (a) numpy,
per sample in Python, LeRobot's indexing (what users run in their DataLoader workers);
(b) our jnp twin (the harness's ``jnp`` row); (c) torch, the same batch vectorised
(searchsorted + gather) on the timing device.

Operands: ``episode [B]``, ``anchor [B]`` (the loop's feed), then per stream (in ORDER)
``values [N, D]``, ``times [N]``, ``offsets [E + 1]``; the store is assembled from them
inside the timed function (no copy).
"""

from __future__ import annotations

import functools

import numpy as np

from harness import Case
from jax_robocache import sample_windows
from jax_robocache.episodes.sample_windows_cases import (TRAINING_SPEC, TRAINING_STREAMS,
                                                         TRAINING_WINDOW_S, flat_arrays,
                                                         numpy_training_batch, store_from_arrays,
                                                         training_anchors, training_data)

#: name -> (rate Hz, D, dtype), in operand order; the windows (the catalogue's training batch).
STREAMS, SPEC, WINDOW_S = TRAINING_STREAMS, TRAINING_SPEC, TRAINING_WINDOW_S
ORDER = tuple(STREAMS)


def make_inputs(rng, B, E, seconds):
    """The catalogue's training_batch data: E jittered-clock episodes, B anchors on action
    samples; operands episode, anchor, then (values, times, offsets) per stream."""
    data = training_data(rng, E, seconds)
    episode, anchor = training_anchors(rng, data, B)
    flat = flat_arrays(data)
    return [episode, anchor] + [flat[f"{n}.{k}"] for n in ORDER
                                for k in ("values", "times", "offsets")]


def _flat(arrays) -> dict:
    """The operands' (values, times, offsets) per stream as the catalogue's flat arrays."""
    return {f"{n}.{k}": arrays[3 * i + j] for i, n in enumerate(ORDER)
            for j, k in enumerate(("values", "times", "offsets"))}


def ours(episode, anchor, *arrays, max_lengths, names=ORDER):
    spec = {name: SPEC[name] for name in names}
    store = store_from_arrays(_flat(arrays), dict(zip(ORDER, max_lengths)))
    out = sample_windows(store, episode, anchor, spec)
    return tuple(x for name in names for x in out[name])  # the action chunk first


def bytes_moved(operands, names=ORDER):
    """Output windows (values + valid + age) and the rows they read (the wrench mean reads
    its window's samples), plus episode / anchor."""
    episode, anchor, *arrays = operands
    B = len(episode)
    total = episode.nbytes + anchor.nbytes
    for k, name in enumerate(ORDER):
        if name not in names:
            continue
        values = arrays[3 * k]
        D, item = values.shape[1], values.dtype.itemsize
        K = len(SPEC[name].steps or SPEC[name].seconds)
        rows = K
        if name == "wrench":
            rows = int(round(WINDOW_S * STREAMS[name][0]))
        total += B * (K * D * item + K * 5 + rows * D * item)
    return total


def numpy_loader(episode, anchor, *arrays, names=ORDER):
    """The host loader users run today (the catalogue's numpy_training_batch)."""
    return numpy_training_batch(episode, anchor, _flat(arrays), names)


def torch_batch(episode, anchor, *arrays, names=ORDER):
    """The same batch vectorised in torch: per-row searchsorted within the episode (global
    searchsorted of episode-shifted keys), clamped gathers, prefix-sum window means."""
    import torch
    out = []
    episode = episode.long()
    for k, name in enumerate(ORDER):
        if name not in names:
            continue
        values, times, offsets = arrays[3 * k:3 * k + 3]
        offsets = offsets.long()
        start, end = offsets[episode], offsets[episode + 1]
        # rank of the anchor within the episode: count of t <= anchor in [start, end)
        ep_of = torch.searchsorted(offsets[1:].contiguous(), torch.arange(
            times.numel(), device=times.device), right=True)
        key = ep_of.double() * 1e6 + times.double()
        hi = torch.searchsorted(key.contiguous(), episode.double() * 1e6 + anchor.double(),
                                right=True)
        if name in ("action", "state"):
            steps = torch.tensor(SPEC[name].steps, device=times.device)
            idx = torch.minimum(torch.maximum(hi[:, None] - 1 + steps, start[:, None]),
                                end[:, None] - 1)
            out.append(values[idx])
        elif name == "image_embedding":
            out.append(values[torch.maximum(hi - 1, start)][:, None])
        else:
            lo = torch.searchsorted(key.contiguous(), episode.double() * 1e6
                                    + (anchor - WINDOW_S).double(), right=True)
            sums = torch.cat([values.new_zeros(1, values.shape[1]), values.cumsum(0)])
            n = (hi - lo).clamp(min=1)[:, None]
            out.append(((sums[hi] - sums[lo]) / n)[:, None])
    return tuple(out)


def max_lengths(seconds):
    """Per stream (in ORDER), the search bound for episodes of about ``seconds`` s (the
    jittered clocks run up to 1.5x the mean length)."""
    return tuple(int(np.ceil(seconds * 1.5 * rate)) + 1 for rate, _, _ in STREAMS.values())


def case(name, B, E, seconds, with_goal=True, names=ORDER):
    spec = dict(action="action 50@50Hz x14", state="state 2@50Hz x14",
                image_embedding="emb 1@15Hz x512 bf16", wrench="wrench mean 20ms@1kHz x6")
    params = dict(B=B, E=E, episode_s=seconds, spec=", ".join(spec[n] for n in names))
    return Case(
        op="sample_windows", name=name, params=params,
        make_inputs=functools.partial(make_inputs, B=B, E=E, seconds=seconds),
        fn=functools.partial(ours, max_lengths=max_lengths(seconds), names=names),
        bytes_moved=functools.partial(bytes_moved, names=names),
        feed=1, ffi_target="robocache_sample_windows",
        torch_fn=functools.partial(torch_batch, names=names),
        numpy_fn=functools.partial(numpy_loader, names=names),
        tolerance=1e-2,  # bf16 embeddings
        goal=None if not with_goal else ("copy_fraction_min", 0.7) if B >= 4096
        else ("vs_numpy_min", 1000.0))


def cases(suite: str) -> list[Case]:
    if suite == "smoke":  # no window_mean: its segment tree is slow to compile on CPU
        return [case("smoke_tiny", 8, 3, 2.0, with_goal=False,
                     names=("action", "state", "image_embedding"))]
    quick = [case("batch_B256", 256, 50, 20.0), case("batch_B4096", 4096, 50, 20.0)]
    return quick
