"""``python -m jax_robocache.self_test``: run ``jax_robocache.self_test()`` and print its report."""

import sys

from jax_robocache._core.self_test import main

if __name__ == "__main__":
    sys.exit(main())
