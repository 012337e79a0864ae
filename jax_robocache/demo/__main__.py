"""``python -m jax_robocache.demo [--steps N] [--batch-size B] [--bag PATH ...]``."""

from .cli import main

main()
