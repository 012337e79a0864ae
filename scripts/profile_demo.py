"""Profiles the demo's training step and prints the share of step time spent in our ops.

    python scripts/profile_demo.py            # CPU or GPU, whichever jax uses
    python scripts/profile_demo.py --steps 50 --batch-size 256 --out profile_out --json p.json

It compiles the in-graph training step of ``python -m jax_robocache.demo --task lidar``
(preprocessing with ``align`` and ``voxelize``, model, loss, gradient, Adam; jax_robocache/demo/train.py),
captures a ``jax.profiler`` trace of ``--steps`` steps into ``--out`` (open it in
TensorBoard's profile plugin or Perfetto), and attributes the XLA ops of the trace to our ops
through the op metadata of the compiled program: every op carries the name scope
``jax_robocache/<op>`` (FfiOp, docs/profiling.md). On GPUs the device's kernel activity is
counted (XLA command buffers are turned off so that every kernel is attributed to its HLO
op; --keep-command-buffers leaves them on); on CPU the XLA CPU runtime's thunks, summed over
its threads. A fusion is attributed by its own metadata (that of its root).
"""

from __future__ import annotations

import argparse
import collections
import functools
import glob
import json
import os
import re
import sys
import time
from pathlib import Path

SCOPE = re.compile(r"jax_robocache/([A-Za-z0-9_]+)")
OTHER = "other (model, loss, gradient, Adam, glue)"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=20, help="training steps traced")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="profile_out", help="where the trace is written")
    p.add_argument("--json", help="also write the table's numbers to this file")
    p.add_argument("--keep-command-buffers", action="store_true",
                   help="GPU: leave XLA command buffers on (kernels inside them may then be "
                        "unattributed)")
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1:
        p.error("--steps and --batch-size must be positive")
    return args


# -- the HLO side: instruction name -> our op ------------------------------------------
def op_of_instruction(hlo_text: str) -> dict[str, str]:
    """Maps every instruction of the compiled HLO module to ``jax_robocache/<op>`` or OTHER.

    An instruction without metadata (a fusion that XLA wrapped around one op) takes that of
    the root of the computation it calls.
    """
    op_name, calls, roots, computation = {}, {}, {}, None
    for line in hlo_text.splitlines():
        header = re.match(r"^(?:ENTRY )?%([\w.\-]+) .*\{\s*$", line)
        if header:
            computation = header.group(1)
            continue
        m = re.match(r"^\s*(ROOT )?%([\w.\-]+) = (.*)$", line)
        if not m:
            continue
        name, rest = m.group(2), m.group(3)
        meta = re.search(r'metadata=\{[^}]*op_name="([^"]*)"', rest)
        op_name[name] = meta.group(1) if meta else None
        called = re.search(r"calls=%([\w.\-]+)", rest)
        if called:
            calls[name] = called.group(1)
        if m.group(1) and computation:
            roots[computation] = name

    def resolve(name, depth=0):
        if op_name.get(name) is None and name in calls and depth < 8:
            return resolve(roots.get(calls[name], ""), depth + 1)
        return op_name.get(name) or ""

    ops = {}
    for name in op_name:
        scope = SCOPE.search(resolve(name))
        ops[name] = f"jax_robocache/{scope.group(1)}" if scope else OTHER
    return ops


# -- the trace side ---------------------------------------------------------------------
def _stats(event) -> dict:
    return {k: v for k, v in event.stats}


def _outermost(events):
    """Drops events nested in another event of the same line (a loop's body in the loop)."""
    kept, end = [], -1.0
    for e in sorted(events, key=lambda e: (e.start_ns, -e.duration_ns)):
        if e.start_ns + e.duration_ns <= end:
            continue
        kept.append(e)
        end = max(end, e.start_ns + e.duration_ns)
    return kept


def op_times(trace_file: str, module: str, ops: dict[str, str]) -> tuple[dict, str, int]:
    """Nanoseconds per op class of the module's XLA ops in the trace.

    Returns (times, where the events came from, events counted). GPU: the device planes'
    stream activity; otherwise the host's XLA thunks. Device events without an HLO op
    (memcpy, kernels inside command buffers) are counted as "unattributed device activity".
    """
    import jax

    data = jax.profiler.ProfileData.from_file(trace_file)
    device_lines, host_lines = [], []
    for plane in data.planes:
        if plane.name.startswith("/device:GPU"):
            lines = list(plane.lines)
            streams = [line for line in lines if line.name.startswith("Stream")]
            device_lines += streams or [line for line in lines if line.name == "XLA Ops"]
        elif plane.name.startswith("/host:CPU"):
            host_lines += list(plane.lines)
    device_events = [list(line.events) for line in device_lines]
    on_device = any(device_events)
    lines = device_events if on_device else [list(line.events) for line in host_lines]
    times: dict[str, float] = collections.defaultdict(float)
    counted = 0
    for events in lines:
        mine = []
        for e in events:
            stats = _stats(e)
            if stats.get("hlo_module", module) != module:
                continue
            if "hlo_op" in stats:
                mine.append((e, ops.get(str(stats["hlo_op"]), OTHER)))
            elif on_device:
                name = e.name
                mine.append((e, "jax_robocache (kernel, no HLO op)" if "robocache" in name
                             else "unattributed device activity"))
        label = {id(e): op for e, op in mine}
        for e in _outermost([e for e, _ in mine]):
            times[label[id(e)]] += e.duration_ns
            counted += 1
    return dict(times), ("GPU kernels (device trace)" if on_device
                         else "XLA CPU thunks (host trace, summed over threads)"), counted


# -- the demo's step ----------------------------------------------------------------------
def traced_step(args):
    """Compiles the demo's in-graph step, runs it traced; returns what the table needs."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jax_robocache import info
    from jax_robocache.demo.episode import eval_blocks, load_sena
    from jax_robocache.demo.model import Normaliser, adam_init, init_params
    from jax_robocache.demo.task import TaskConfig, preprocess_numpy
    from jax_robocache.demo.train import _step_in_graph

    episode = load_sena()
    cfg = TaskConfig.for_episode(episode)
    clock = episode.query_clock(cfg.rate_hz, cfg.horizon_s)
    train_q = clock[~eval_blocks(len(clock), cfg.rate_hz)]
    rng = np.random.default_rng(args.seed)
    schedule = rng.integers(0, len(train_q), size=(args.steps, args.batch_size))
    fit = preprocess_numpy(episode, train_q, cfg)
    norm = Normaliser.fit(fit.target, fit.weight)
    X, Y = cfg.grid_shape
    params = init_params(jax.random.PRNGKey(args.seed), X * Y)
    opt = adam_init(params)
    raw = jax.device_put(episode.device_streams())
    clock_d, sched = jax.device_put((jnp.asarray(train_q), jnp.asarray(schedule, jnp.int32)))

    step = jax.jit(functools.partial(_step_in_graph, cfg=cfg, lr=1e-3))
    compiled = step.lower(params, opt, raw, clock_d, sched, norm).compile()
    for _ in range(2):  # warm-up (first-run allocations stay out of the trace)
        params, opt, loss = compiled(params, opt, raw, clock_d, sched, norm)
    jax.block_until_ready((params, opt, loss))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    before = set(glob.glob(str(out / "**" / "*.xplane.pb"), recursive=True))
    with jax.profiler.trace(str(out)):
        start = time.perf_counter()
        for _ in range(args.steps):
            params, opt, loss = compiled(params, opt, raw, clock_d, sched, norm)
        jax.block_until_ready((params, opt, loss))
        wall = time.perf_counter() - start
    new = sorted(set(glob.glob(str(out / "**" / "*.xplane.pb"), recursive=True)) - before)
    if not new:
        raise SystemExit(f"profile_demo: jax.profiler wrote no trace under {out}")
    hlo = compiled.as_text()
    module = re.match(r"HloModule (\S+?),", hlo).group(1)
    backends = info()["ops"]
    device = jax.devices()[0]
    return {"trace": new[-1], "hlo": hlo, "module": module, "wall_s": wall,
            "device": f"{jax.default_backend()} ({getattr(device, 'device_kind', '')})",
            "jax": jax.__version__,
            "lowerings": {op: backends.get(op, "?") for op in ("align", "voxelize")}}


def table(rows: dict[str, float], steps: int, wall_s: float, source: str) -> tuple[str, dict]:
    """The printed table and its numbers (ms per step, shares in percent)."""
    total = sum(rows.values())
    step_ns = wall_s / steps * 1e9
    ours = {k: v for k, v in rows.items() if k.startswith("jax_robocache")}
    order = sorted(ours, key=lambda k: -ours[k]) + sorted(k for k in rows if k not in ours)
    result = {"steps": steps, "wall_ms_per_step": step_ns / 1e6,
              "op_ms_per_step": total / steps / 1e6, "source": source, "ops": {}}
    lines = [f"  {'op':<44} {'ms/step':>9} {'% op time':>10} {'% step':>7}"]

    def row(name, ns):
        ms, share_ops, share_step = ns / steps / 1e6, 100 * ns / total, 100 * ns / steps / step_ns
        lines.append(f"  {name:<44} {ms:>9.3f} {share_ops:>10.1f} {share_step:>7.1f}")
        return {"ms_per_step": ms, "percent_of_op_time": share_ops,
                "percent_of_step_time": share_step}

    for name in order:
        result["ops"][name] = row(name, rows[name])
    result["all_jax_robocache"] = row("all jax_robocache ops", sum(ours.values()))
    return "\n".join(lines), result


def main(argv=None) -> dict:
    args = parse_args(argv)
    if not args.keep_command_buffers and "xla_gpu_enable_command_buffer" not in os.environ.get(
            "XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                                   + " --xla_gpu_enable_command_buffer=").strip()
    run = traced_step(args)
    rows, source, counted = op_times(run["trace"], run["module"], op_of_instruction(run["hlo"]))
    if not counted or not sum(rows.values()):
        raise SystemExit(f"profile_demo: no XLA op of {run['module']} found in {run['trace']}")
    text, result = table(rows, args.steps, run["wall_s"], source)
    ops = ", ".join(f"{k} {v}" for k, v in run["lowerings"].items())
    print("jax_robocache: where the demo's training step spends its time")
    print(f"  device: {run['device']}, jax {run['jax']}; ops: {ops}")
    print(f"  {args.steps} steps of batch {args.batch_size} traced: "
          f"{result['wall_ms_per_step']:.3f} ms per step (wall), "
          f"{result['op_ms_per_step']:.3f} ms of XLA ops per step ({source})")
    print(f"  trace: {run['trace']}")
    print(text)
    print("  % op time: share of the XLA op time counted; % step: share of the wall time of a "
          "step" + (" (CPU thunks run on several threads: shares of step time may add up to "
                    "more than 100)" if "CPU" in source else ""))
    result.update(device=run["device"], jax=run["jax"], lowerings=run["lowerings"],
                  batch_size=args.batch_size, trace=run["trace"])
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        print(f"  numbers: {args.json}")
    return result


if __name__ == "__main__":
    import importlib.util

    if importlib.util.find_spec("jax_robocache") is None:  # not installed: this checkout's
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
