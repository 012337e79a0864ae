"""The two training loops the demo compares, on identical batches.

* ``in-graph``: one jitted step takes the raw streams (device-resident) and
  the batch's query indices (a schedule also on the device, indexed by the
  optimiser's step counter) and does preprocessing, loss, gradient and Adam.
  No host work per step besides the dispatch.
* ``numpy``: per step the host preprocesses the batch in numpy
  (``preprocess_numpy``), then a jitted step does loss, gradient and Adam on it
  (the batch is copied to the device by the call): a typical single-process
  data loader, without prefetching.

Throughput is measured after compilation, over all steps, ended by a device
synchronisation.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import subprocess
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np

from .episode import Episode
from .model import AdamState, Normaliser, adam_step, loss_fn
from .task import TaskConfig, preprocess_jax, preprocess_numpy


@dataclasses.dataclass
class RunResult:
    name: str
    steps: int
    seconds: float  # wall time of the timed steps
    compile_s: float
    preprocess_ms: float  # per step
    utilisation: float | None  # mean device utilisation in percent (None: not measurable)
    utilisation_note: str
    losses: np.ndarray  # [steps] training loss per step
    eval_loss: float
    params: dict = dataclasses.field(repr=False, default=None)
    batch_size: int = 0

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else float("nan")

    @property
    def samples_per_s(self) -> float:
        return self.steps_per_s * self.batch_size

    @property
    def final_loss(self) -> float:
        """Mean training loss of the last 10 % of the steps (at least one)."""
        tail = max(1, len(self.losses) // 10)
        return float(np.mean(self.losses[-tail:]))

    def summary(self) -> dict:
        return {"name": self.name, "steps": self.steps, "seconds": self.seconds,
                "steps_per_s": self.steps_per_s, "samples_per_s": self.samples_per_s,
                "batch_size": self.batch_size, "compile_s": self.compile_s,
                "preprocess_ms_per_step": self.preprocess_ms,
                "device_utilisation_percent": self.utilisation,
                "device_utilisation_note": self.utilisation_note,
                "final_train_loss": self.final_loss, "eval_loss": self.eval_loss,
                "losses": [float(x) for x in self.losses]}


class UtilisationSampler:
    """Mean GPU utilisation (nvidia-smi's 'utilization.gpu') while the context is open.

    Measurable only on a CUDA backend with ``pynvml`` or ``nvidia-smi``; otherwise
    ``result()`` is None and ``note`` says why.
    """

    def __init__(self, period_s: float = 0.05):
        self.period_s, self.samples, self.note = period_s, [], ""
        self._stop = threading.Event()
        self._thread = None
        self._query = self._make_query()

    def _make_query(self):
        if jax.default_backend() != "gpu":
            self.note = f"n/a ({jax.default_backend().upper()})"
            return None
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
        index = int(visible) if visible.isdigit() else 0
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self.note = "pynvml"
            return lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except Exception:  # noqa: BLE001 - any failure: try the command line tool
            pass
        if shutil.which("nvidia-smi"):
            self.note = "nvidia-smi"
            cmd = ["nvidia-smi", "-i", str(index), "--query-gpu=utilization.gpu",
                   "--format=csv,noheader,nounits"]
            return lambda: float(subprocess.run(cmd, capture_output=True, text=True,
                                                timeout=5).stdout.strip())
        self.note = "n/a (no pynvml or nvidia-smi)"
        return None

    def _run(self):
        while not self._stop.is_set():
            try:
                self.samples.append(self._query())
            except Exception:  # noqa: BLE001 - a failed sample is skipped
                pass
            self._stop.wait(self.period_s)

    def __enter__(self):
        if self._query is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def result(self) -> float | None:
        return float(np.mean(self.samples)) if self.samples else None


def timed_compile(fn, *args):
    start = time.perf_counter()
    compiled = fn.lower(*args).compile()
    return compiled, time.perf_counter() - start


def _step_in_graph(params, opt: AdamState, raw, clock, schedule, norm, *, cfg, lr):
    q = clock[schedule[opt.step % schedule.shape[0]]]
    return adam_step(loss_fn, params, opt, preprocess_jax(raw, q, cfg), norm, lr=lr)


def make_eval(raw, cfg: TaskConfig, norm: Normaliser, eval_q):
    """``eval(params) -> loss`` on the held-out queries (in-graph preprocessing)."""
    batch = jax.jit(preprocess_jax, static_argnames="cfg")(raw, jnp.asarray(eval_q), cfg)
    fn = jax.jit(loss_fn)
    return lambda params: float(fn(params, batch, norm))


def _in_graph_preprocess_ms(raw, cfg: TaskConfig, train_q, schedule, calls: int = 50) -> float:
    """The in-graph preprocessing compiled alone, ms per batch (pipelined calls, as in training)."""
    queries = [jax.device_put(jnp.asarray(train_q[idx])) for idx in schedule[:calls]]
    pre = jax.jit(functools.partial(preprocess_jax, cfg=cfg)).lower(raw, queries[0]).compile()
    jax.block_until_ready([pre(raw, q) for q in queries])  # warm-up
    start = time.perf_counter()
    out = [pre(raw, q) for q in queries]
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / len(queries) * 1e3


def train_in_graph(episode: Episode, cfg: TaskConfig, params, opt, norm, train_q, schedule,
                   lr: float, evaluate) -> RunResult:
    raw = jax.device_put(episode.device_streams())
    clock, sched = jax.device_put((jnp.asarray(train_q), jnp.asarray(schedule, jnp.int32)))
    step = jax.jit(functools.partial(_step_in_graph, cfg=cfg, lr=lr))
    step, compile_s = timed_compile(step, params, opt, raw, clock, sched, norm)

    losses = []
    with UtilisationSampler() as util:
        start = time.perf_counter()
        for _ in range(len(schedule)):
            params, opt, loss = step(params, opt, raw, clock, sched, norm)
            losses.append(loss)
        jax.block_until_ready(params)
        seconds = time.perf_counter() - start

    pre_ms = _in_graph_preprocess_ms(raw, cfg, train_q, schedule)
    return RunResult("in-graph (jax_robocache)", len(schedule), seconds, compile_s, pre_ms,
                     util.result(), util.note, np.asarray(jax.device_get(losses)),
                     evaluate(params), params, schedule.shape[1])


def train_numpy(episode: Episode, cfg: TaskConfig, params, opt, norm, train_q, schedule,
                lr: float, evaluate) -> RunResult:
    step = jax.jit(functools.partial(adam_step, loss_fn, lr=lr))
    first = preprocess_numpy(episode, train_q[schedule[0]], cfg)
    step, compile_s = timed_compile(step, params, opt, first, norm)

    losses, pre_s = [], 0.0
    with UtilisationSampler() as util:
        start = time.perf_counter()
        for idx in schedule:
            t0 = time.perf_counter()
            batch = preprocess_numpy(episode, train_q[idx], cfg)
            pre_s += time.perf_counter() - t0
            params, opt, loss = step(params, opt, batch, norm)
            losses.append(loss)
        jax.block_until_ready(params)
        seconds = time.perf_counter() - start
    return RunResult("host numpy per batch", len(schedule), seconds, compile_s,
                     pre_s / len(schedule) * 1e3, util.result(), util.note,
                     np.asarray(jax.device_get(losses)), evaluate(params), params,
                     schedule.shape[1])
