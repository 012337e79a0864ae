"""``python -m jax_robocache.demo [--task chunking|lidar] [--steps N] [--batch-size B] ...``."""

from .cli import main

main()
