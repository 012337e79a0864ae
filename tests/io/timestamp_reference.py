"""Independent reference for the timestamp diagnostics: a per-sample Python loop, float64."""

from __future__ import annotations

import math

CATEGORIES = ("nan", "duplicate", "backward", "gap", "jitter")


def loop_report(t, period, tol, scale=1.0):
    """Category -> sample indices, each stamp compared with the latest earlier stamp."""
    cats = {c: [] for c in CATEGORIES}
    latest = None
    same = tol if period is None else min(tol, period / 4)  # the duplicate threshold
    for k, raw in enumerate(t):
        x = float(raw)
        if math.isnan(x):
            cats["nan"].append(k)
            continue
        if latest is not None:
            d = (int(raw) - int(latest)) * scale if isinstance(latest, int) else x - latest
            if abs(d) <= same:
                cats["duplicate"].append(k)
            elif d < -same:
                cats["backward"].append(k)
            elif period is not None and d > period + tol and d >= 1.5 * period:
                cats["gap"].append(k)
            elif period is not None and abs(d - period) > tol:
                cats["jitter"].append(k)
        value = int(raw) if scale != 1.0 else x
        latest = value if latest is None else max(latest, value)
    return cats
