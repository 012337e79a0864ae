"""``python -m jax_robocache.demo``: two demo tasks, each trained in-graph and fed from the host.

* ``--task chunking`` (default): an action-chunking policy (the next 50 actions) trained
  through ``EpisodeStore`` + ``sample_windows`` + anchor sampling inside one jitted step,
  against the same training fed by a per-sample host loader (``chunk_run``).
* ``--task lidar``: robot motion from a real LiDAR recording, preprocessing (``align`` +
  ``voxelize``) in-graph against numpy per batch (``--bag`` selects it).
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from .. import info
from .episode import eval_blocks, load_bag, load_sena
from .model import Normaliser, adam_init, init_params
from .report import finish, table
from .task import TaskConfig, preprocess_numpy
from .train import make_eval, train_in_graph, train_numpy

DEFAULT_STEPS = 300
DEFAULT_BATCH = 64
TASKS = ("chunking", "lidar")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m jax_robocache.demo",
        description="Train a small policy twice: once with the data pipeline inside the jitted "
                    "training step (jax_robocache) and once fed by the host. Task 'chunking' "
                    "(default): predict the next 50 actions from state history, camera "
                    "embedding and wrench, samples cut by EpisodeStore + sample_windows vs a "
                    "per-sample LeRobot-style loader. Task 'lidar': the robot's motion over the "
                    "next 0.5 s from laser scans and odometry (real data), preprocessing "
                    "in-graph vs numpy per batch.")
    p.add_argument("--task", choices=TASKS, default=None,
                   help="chunking (default) or lidar (the default with --bag)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="training steps per variant")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", choices=("both", "in-graph", "host", "numpy"), default="both",
                   help="'host' and 'numpy' both name the host-fed variant")
    p.add_argument("--episodes", type=int, default=48,
                   help="chunking: synthetic episodes (1/8 held out for the eval loss)")
    p.add_argument("--duration", type=float, default=8.0,
                   help="chunking: seconds per episode")
    p.add_argument("--wrench", action="store_true",
                   help="chunking: add the 20 ms mean of the 1 kHz force stream (window_mean; "
                        "costly on CPU, where the jnp twin scans the whole stream per step)")
    p.add_argument("--bag", help="lidar: a ROS 2 bag (directory, .mcap or .db3) instead of the "
                                 "shipped recording; needs pip install 'jax_robocache[io]'")
    p.add_argument("--scan-topic", default="/scan", help="sensor_msgs/LaserScan topic of --bag")
    p.add_argument("--odom-topic", default="/odom", help="nav_msgs/Odometry topic of --bag")
    p.add_argument("--plot", default="robocache_demo.png", help="where to write the plot")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--json", help="also write every number (and the loss curves) to this file")
    p.add_argument("--export-sena-bag", metavar="DIR",
                   help="write the shipped recording as a ROS 2 bag to DIR and exit")
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1:
        p.error("--steps and --batch-size must be positive")
    if args.episodes < 2 or args.duration <= 1.5:
        p.error("--episodes must be >= 2 and --duration > 1.5 s")
    args.task = args.task or ("lidar" if args.bag else "chunking")
    if args.bag and args.task != "lidar":
        p.error("--bag feeds the lidar task: use --task lidar")
    args.variants = {"host": "numpy"}.get(args.variants, args.variants) if args.task == "lidar" \
        else {"numpy": "host"}.get(args.variants, args.variants)
    return args


def _describe_device() -> str:
    d = jax.devices()[0]
    return f"{jax.default_backend()} ({getattr(d, 'device_kind', d.platform)})"


def main(argv=None) -> dict | None:
    args = parse_args(argv)
    if args.export_sena_bag:
        from .sena_bag import write_sena_bag

        path = write_sena_bag(args.export_sena_bag)
        print(f"wrote {path}: topics /scan (sensor_msgs/LaserScan), /odom (nav_msgs/Odometry)\n"
              f"try: python -m jax_robocache.demo --bag {path}")
        return None
    if args.task == "chunking":
        from .chunk_run import run

        return run(args, _describe_device)
    return run_lidar(args)


def run_lidar(args) -> dict:
    """The LiDAR motion task (``--task lidar``)."""
    t_start = time.perf_counter()
    episode = load_bag(args.bag, args.scan_topic, args.odom_topic) if args.bag else load_sena()
    cfg = TaskConfig.for_episode(episode)
    clock = episode.query_clock(cfg.rate_hz, cfg.horizon_s)
    held_out = eval_blocks(len(clock), cfg.rate_hz)
    train_q, eval_q = clock[~held_out], clock[held_out]
    n_train = len(train_q)

    ops = info()["ops"]
    backends = ", ".join(f"{op} {ops.get(op, 'jnp')}" for op in ("align", "voxelize", "resample"))
    X, Y = cfg.grid_shape
    print("jax_robocache demo: learn robot motion from LiDAR")
    print(f"  data:   {episode.source}")
    print(f"  device: {_describe_device()}, jax {jax.__version__}; ops: {backends}")
    print(f"  task:   {len(clock)} query times on a {cfg.rate_hz:g} Hz clock ({n_train} train, "
          f"{len(eval_q)} eval: every 5th 5 s block)")
    print(f"          latest scan (hold, tolerance {cfg.scan_tolerance_s:.3f} s) -> {X}x{Y} "
          f"occupancy grid at {cfg.voxel_m} m + past {cfg.horizon_s} s motion -> motion over "
          f"the next {cfg.horizon_s} s")
    print(f"  train:  {args.steps} steps, batch {args.batch_size}, Adam lr {args.lr}, "
          f"identical batches for both variants", flush=True)

    rng = np.random.default_rng(args.seed)
    schedule = rng.integers(0, n_train, size=(args.steps, args.batch_size))
    fit = preprocess_numpy(episode, train_q, cfg)  # normalisation constants (training set)
    norm = Normaliser.fit(fit.target, fit.weight)
    params = init_params(jax.random.PRNGKey(args.seed), X * Y)
    raw = jax.device_put(episode.device_streams())
    evaluate = make_eval(raw, cfg, norm, eval_q)

    runners = {"in-graph": train_in_graph, "numpy": train_numpy}
    chosen = list(runners) if args.variants == "both" else [args.variants]
    results = []
    for name in chosen:
        print(f"  running {name} ...", flush=True)
        results.append(runners[name](episode, cfg, params, adam_init(params), norm, train_q,
                                     schedule, args.lr, evaluate))

    held = preprocess_numpy(episode, eval_q, cfg)
    w = held.weight / max(held.weight.sum(), 1.0)
    zero = float((np.mean(np.square(np.asarray(norm(held.target))), axis=-1) * w).sum())
    repeat = float((np.mean(np.square(np.asarray(norm(held.target) - norm(held.past))), axis=-1)
                    * w).sum())

    print()
    print(table(results))
    if len(results) == 2:
        print(f"\nin-graph preprocessing: {results[0].steps_per_s / results[1].steps_per_s:.2f}x "
              "the training steps per second of numpy preprocessing")
    print(f"eval baselines: predict the mean motion {zero:.4f}, repeat the past motion "
          f"{repeat:.4f}")
    return finish({"task": "lidar", "device": _describe_device(), "jax": jax.__version__,
                   "ops": backends, "data": episode.source, "steps": args.steps,
                   "batch_size": args.batch_size, "queries": len(clock),
                   "train_queries": n_train, "grid": [X, Y], "eval_baseline_mean": zero,
                   "eval_baseline_repeat_past": repeat}, results, args, t_start)

