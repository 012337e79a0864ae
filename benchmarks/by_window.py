"""sample_windows at issue 17's spec, window by window: what each window of the call costs.

    python benchmarks/by_window.py [--batch 4096] [--subsets all,action,...] [--jnp] [--out F]

Times the call with every window, then with each subset given (``+``-joined window names;
``all``: the four), in-graph (``timing.InGraphTimer``, every output live) with the inputs
resident in L2 (no input rotation: ``run.py`` rotates copies, so its rows are higher), and
prints MB that must move and the fraction of the copy bandwidth measured in the same run.
``--jnp`` adds the jnp twin of the whole call. docs/perf/h100_2026-12-08 has a run.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

import timing
from harness import force_jnp
from suites import sample_windows as sw

DEFAULT_SUBSETS = "all,action,image_embedding,state,wrench"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seconds", type=float, default=20.0, help="mean episode length")
    p.add_argument("--subsets", default=DEFAULT_SUBSETS)
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--jnp", action="store_true", help="also time the jnp twin of the call")
    p.add_argument("--out", help="write the rows here (JSON)")
    args = p.parse_args(argv)
    inputs = sw.make_inputs(np.random.default_rng(0), B=args.batch, E=args.episodes,
                            seconds=args.seconds)
    max_lengths = sw.max_lengths(args.seconds)
    copy_bw = timing.copy_bandwidth()
    print(f"{jax.devices()[0].device_kind}: copy bandwidth {copy_bw / 1e9:.0f} GB/s")
    rows = []

    def measure(names, label):
        fn = lambda *a: sw.ours(*a, max_lengths=max_lengths, names=names)  # noqa: E731
        samples = timing.InGraphTimer(fn, inputs, feed=1).samples(inputs, args.repeats)
        us = float(np.median(samples)) * 1e6
        mb = sw.bytes_moved(inputs, names) / 1e6
        frac = (mb * 1e6 / copy_bw) / (us * 1e-6)
        rows.append(dict(windows=list(names), impl=label, us=us, mb=mb, copy_fraction=frac))
        print(f"{label:6s} {'+'.join(names):45s} {us:8.1f} us {mb:7.1f} MB {100 * frac:5.1f}% of copy")

    for subset in args.subsets.split(","):
        measure(sw.ORDER if subset == "all" else tuple(subset.split("+")), "ours")
    if args.jnp:
        with force_jnp(True):
            measure(sw.ORDER, "jnp")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(dict(device=jax.devices()[0].device_kind, jax=jax.__version__,
                           batch=args.batch, copy_bandwidth=copy_bw, rows=rows,
                           date=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())),
                      f, indent=1)


if __name__ == "__main__":
    main()
