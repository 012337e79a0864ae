"""``python -m jax_robocache.demo`` (default task): train an action-chunking policy two ways."""

from __future__ import annotations

import time

import jax
import numpy as np

from ..episodes.windows import backend
from .chunk_model import Scales, hold_baseline, init_params
from .chunk_train import make_eval, train_host_loader, train_in_graph
from .chunking import CHUNK, HostLoader, make_episodes, require
from .model import adam_init
from .report import finish, table

EVAL_SAMPLES = 1024


def run(args, describe_device) -> dict:
    t_start = time.perf_counter()
    E = args.episodes
    held = max(1, E // 8)
    episodes = make_episodes(E, args.duration, seed=args.seed)
    train_ep, eval_ep = episodes.subset(range(E - held)), episodes.subset(range(E - held, E))
    store = train_ep.store()
    anchors = store.anchor_table("action", require=require())  # once, outside the step
    loader = HostLoader(train_ep, wrench=args.wrench)
    eval_loader = HostLoader(eval_ep, wrench=args.wrench)
    sizes = {k: sum(len(x) for x in v) for k, v in train_ep.values.items()}
    D = train_ep.values["state"][0].shape[1]

    print("jax_robocache demo: action chunking (predict the next 50 actions)")
    print(f"  device: {describe_device()}, jax {jax.__version__}; sample_windows: {backend()} "
          "inside the jitted step")
    print(f"  data:   {E} synthetic episodes of {args.duration:g} s (jitter, dropouts, gaps), "
          f"{E - held} train / {held} eval; train samples: "
          + ", ".join(f"{k} {n}" for k, n in sizes.items()))
    print(f"  spec:   state steps (-1, 0) @ 50 Hz D={D}, action steps range({CHUNK}) "
          "(is_pad = ~valid), camera previous @ 15 Hz"
          + (", wrench 20 ms mean @ 1 kHz" if args.wrench else " (--wrench: + 20 ms mean of "
             "the 1 kHz force)") + "; "
          f"{len(loader)} eligible anchors")
    print(f"  train:  {args.steps} steps, batch {args.batch_size}, Adam lr {args.lr}, masked L1; "
          "anchors drawn in the step (in-graph) or by the host loader, same distribution",
          flush=True)

    fit_rng = np.random.default_rng(args.seed + 1)
    scales = Scales.fit(loader.sample(fit_rng, 2048))
    stride = max(1, len(eval_loader) // EVAL_SAMPLES)
    eval_batch = eval_loader.batch(eval_loader.eligible[::stride][:EVAL_SAMPLES])
    evaluate = make_eval(eval_batch, scales)
    params = init_params(jax.random.PRNGKey(args.seed), D, eval_batch["camera"].shape[-1],
                         eval_batch["wrench"].shape[-1] if args.wrench else 0, CHUNK)
    common = dict(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                  evaluate=evaluate)
    runners = {"in-graph": lambda: train_in_graph(store, anchors, params, adam_init(params),
                                                  scales, chunk=CHUNK, wrench=args.wrench,
                                                  **common),
               "host": lambda: train_host_loader(loader, params, adam_init(params), scales,
                                                 **common)}
    chosen = list(runners) if args.variants == "both" else [args.variants]
    results = []
    for name in chosen:
        print(f"  running {name} ...", flush=True)
        results.append(runners[name]())

    baseline = hold_baseline(eval_batch, scales)
    print()
    print(table(results, first="loader", loader="loader ms/step"))
    if len(results) == 2:
        print(f"\nin-graph sampling: {results[0].samples_per_s / results[1].samples_per_s:.2f}x "
              "the training samples per second of the per-sample host loader")
    print(f"eval baseline: hold the current state {baseline:.4f}")
    return finish({"task": "chunking", "device": describe_device(), "jax": jax.__version__,
                   "sample_windows": backend(), "episodes": E, "eval_episodes": held,
                   "duration_s": args.duration, "steps": args.steps,
                   "batch_size": args.batch_size, "chunk": CHUNK, "wrench": args.wrench,
                   "eligible_anchors": len(loader), "eval_baseline_hold": baseline},
                  results, args, t_start)
