"""Benchmark suites: one module per op, ``suites/<op>.py``.

Each module defines ``cases(suite: str) -> list[harness.Case]`` for the suites
``smoke`` (tiny, CPU, seconds), ``quick`` (the op's issue targets) and ``full``
(``quick`` plus a size sweep). A module whose op has not landed yet fails to
import and is skipped with its reason.
"""

from __future__ import annotations

import importlib
import pkgutil

SUITES = ("smoke", "quick", "full")


def available_ops() -> list[str]:
    """Every op with a suite module, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def load(op: str):
    """The op's suite module (ImportError when the op, or its module, is missing)."""
    return importlib.import_module(f"{__name__}.{op}")
