"""Batch-sharded preprocessing over every device of one host, or of several hosts.

Each op runs on its own shard of episodes: no all-gather, the output stays
sharded like the input (see ``jax_robocache/_core/partitioning.py``).

Single host (all local GPUs, or CPU devices):
    python examples/multi_gpu.py
Several processes / hosts (run once per process; process 0 is the coordinator):
    python examples/multi_gpu.py --coordinator HOST:PORT --num-processes 2 --process-id 0
    python examples/multi_gpu.py --coordinator HOST:PORT --num-processes 2 --process-id 1
Try it on one machine with CPU devices:
    XLA_FLAGS=--xla_force_host_platform_device_count=2 python examples/multi_gpu.py \
        --platform cpu --coordinator 127.0.0.1:12355 --num-processes 2 --process-id 0   (and 1)
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from jax_robocache import resample


def local_episodes(process_id: int, episodes: int, samples: int = 500, features: int = 14):
    """This process's episodes (a data loader would read its own files here)."""
    rng = np.random.default_rng(1000 + process_id)
    times = np.cumsum(rng.uniform(1e-3, 3e-3, (episodes, samples)), axis=1).astype(np.float32)
    values = rng.normal(size=(episodes, samples, features)).astype(np.float32)
    return values, times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coordinator", default=None, help="HOST:PORT of process 0")
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--platform", default=None, help="cpu or gpu (default: jax's default)")
    parser.add_argument("--episodes-per-device", type=int, default=4)
    args = parser.parse_args(argv)
    if args.platform:
        jax.config.update("jax_platforms", args.platform)
    if args.coordinator:
        jax.distributed.initialize(coordinator_address=args.coordinator,
                                   num_processes=args.num_processes,
                                   process_id=args.process_id)

    # One mesh axis over every device of every process; episodes are sharded on it.
    mesh = jax.make_mesh((jax.device_count(),), ("episodes",))
    batch = NamedSharding(mesh, P("episodes"))
    n_local = args.episodes_per_device * jax.local_device_count()
    values, times = local_episodes(jax.process_index(), n_local)
    clock = np.linspace(0.05, 0.5, 50, dtype=np.float32)  # the policy's clock, shared

    # Assemble global arrays from each process's local rows (no data moves).
    g_values = jax.make_array_from_process_local_data(batch, values)
    g_times = jax.make_array_from_process_local_data(batch, times)

    with jax.set_mesh(mesh):
        preprocess = jax.jit(lambda v, t: resample(v, t, clock))
        out = preprocess(g_values, g_times)
        hlo = preprocess.lower(g_values, g_times).compile().as_text()
    gathers = [c for c in ("all-gather", "all-to-all") if c in hlo]

    # Check this process's shards against a numpy computation of its own rows.
    local_out = np.concatenate([np.asarray(s.data) for s in sorted(
        out.addressable_shards, key=lambda s: s.index[0].start)])
    expected = np.stack([np.stack([np.interp(clock, times[b], values[b, :, d])
                                   for d in range(values.shape[2])], axis=-1)
                         for b in range(n_local)])
    error = float(np.abs(local_out - expected).max())
    print(f"process {jax.process_index()}/{jax.process_count()}: {jax.local_device_count()} "
          f"local of {jax.device_count()} devices, global batch {out.shape}, sharding "
          f"{out.sharding.spec}, collectives in HLO: {gathers or 'none'}, max error {error:.2e}")
    ok = not gathers and error < 1e-4 and out.sharding.spec[0] == "episodes"
    if args.coordinator:
        jax.distributed.shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
