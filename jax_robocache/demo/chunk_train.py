"""The two action-chunking training loops, on batches drawn from the same distribution.

* ``in-graph``: one jitted step draws the anchors (``AnchorTable.sample`` with a key
  folded from the optimiser's step counter), cuts the windows (``sample_windows``)
  from the device-resident ``EpisodeStore``, and does loss, gradient and Adam.
  Nothing crosses from the host per step besides the dispatch.
* ``host loader``: per step the host draws frames uniformly from the same eligible
  set and builds every sample in Python (``HostLoader``), then a jitted step does
  loss, gradient and Adam on the collated batch (copied to the device by the call):
  a single-process LeRobot-style ``DataLoader`` without workers or prefetching.

Throughput is measured after compilation over all steps, ended by a device
synchronisation; "loader ms/step" is the host loader's time per batch, and for
the in-graph variant the sampling + windowing compiled alone (pipelined calls).
"""

from __future__ import annotations

import functools
import time

import jax
import numpy as np

from ..episodes import sample_windows
from .chunk_model import Scales, loss_fn
from .chunking import HostLoader, spec
from .model import AdamState, adam_step
from .train import RunResult, UtilisationSampler, timed_compile


def windows_batch(store, table, key, batch_size: int, chunk: int, wrench: bool) -> dict:
    """The training batch inside ``jit``: anchors, then every window in one call.

    Same keys and shapes as ``HostLoader.batch``: index windows keep their step
    axis, the single-entry time windows drop it.
    """
    anchors = table.sample(key, batch_size)
    out = sample_windows(store, anchors.episode, anchors.anchor, spec(chunk, wrench))
    batch = {}
    for name, w in out.items():
        single = name in ("camera", "wrench")
        batch[name] = w.values[:, 0] if single else w.values
        batch[f"{name}_is_pad"] = ~(w.valid[:, 0] if single else w.valid)
    return batch


def _step_in_graph(params, opt: AdamState, store, table, key, scales, *, batch_size, chunk,
                   wrench, lr):
    batch = windows_batch(store, table, jax.random.fold_in(key, opt.step), batch_size, chunk,
                          wrench)
    return adam_step(loss_fn, params, opt, batch, scales, lr=lr)


def make_eval(batch: dict, scales: Scales):
    """``eval(params) -> loss`` on a fixed held-out batch."""
    batch = jax.device_put(batch)
    fn = jax.jit(loss_fn)
    return lambda params: float(fn(params, batch, scales))


def _loader_ms(store, table, key, batch_size: int, chunk: int, wrench: bool,
               calls: int = 20) -> float:
    fn = jax.jit(functools.partial(windows_batch, batch_size=batch_size, chunk=chunk,
                                   wrench=wrench))
    keys = list(jax.random.split(key, calls))
    fn = fn.lower(store, table, keys[0]).compile()
    jax.block_until_ready([fn(store, table, k) for k in keys[:2]])  # warm-up
    start = time.perf_counter()
    jax.block_until_ready([fn(store, table, k) for k in keys])
    return (time.perf_counter() - start) / calls * 1e3


def train_in_graph(store, table, params, opt, scales, *, steps: int, batch_size: int,
                   chunk: int, wrench: bool, lr: float, seed: int, evaluate) -> RunResult:
    key = jax.random.PRNGKey(seed)
    step = jax.jit(functools.partial(_step_in_graph, batch_size=batch_size, chunk=chunk,
                                     wrench=wrench, lr=lr))
    step, compile_s = timed_compile(step, params, opt, store, table, key, scales)
    losses = []
    with UtilisationSampler() as util:
        start = time.perf_counter()
        for _ in range(steps):
            params, opt, loss = step(params, opt, store, table, key, scales)
            losses.append(loss)
        jax.block_until_ready(params)
        seconds = time.perf_counter() - start
    ms = _loader_ms(store, table, key, batch_size, chunk, wrench)
    return RunResult("in-graph (EpisodeStore)", steps, seconds, compile_s, ms, util.result(),
                     util.note, np.asarray(jax.device_get(losses)), evaluate(params), params,
                     batch_size)


def train_host_loader(loader: HostLoader, params, opt, scales, *, steps: int, batch_size: int,
                      lr: float, seed: int, evaluate) -> RunResult:
    rng = np.random.default_rng(seed)
    step = jax.jit(functools.partial(adam_step, loss_fn, lr=lr))
    step, compile_s = timed_compile(step, params, opt, loader.sample(rng, batch_size), scales)
    losses, load_s = [], 0.0
    with UtilisationSampler() as util:
        start = time.perf_counter()
        for _ in range(steps):
            t0 = time.perf_counter()
            batch = loader.sample(rng, batch_size)
            load_s += time.perf_counter() - t0
            params, opt, loss = step(params, opt, batch, scales)
            losses.append(loss)
        jax.block_until_ready(params)
        seconds = time.perf_counter() - start
    return RunResult("host per-sample loader", steps, seconds, compile_s, load_s / steps * 1e3,
                     util.result(), util.note, np.asarray(jax.device_get(losses)),
                     evaluate(params), params, batch_size)
