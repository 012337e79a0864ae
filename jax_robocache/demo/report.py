"""The demo's printed table and its plot (matplotlib optional)."""

from __future__ import annotations

import json
import time
from typing import Sequence

import numpy as np

from .train import RunResult


def _util(r: RunResult) -> str:
    return f"{r.utilisation:.0f} % ({r.utilisation_note})" if r.utilisation is not None else (
        r.utilisation_note or "n/a")


def table(results: Sequence[RunResult], first: str = "preprocessing",
          loader: str = "preprocessing ms/step") -> str:
    """A Markdown table: samples/s, steps/s, loader ms per step, utilisation, losses."""
    head = (first, "samples/s", "steps/s", loader, "device utilisation", "final train loss",
            "eval loss", "compile s")
    rows = [head]
    for r in results:
        note = " (timed alone)" if r.name.startswith("in-graph") else " (host)"
        rows.append((r.name, f"{r.samples_per_s:.0f}", f"{r.steps_per_s:.1f}",
                     f"{r.preprocess_ms:.3f}{note}", _util(r), f"{r.final_loss:.4f}",
                     f"{r.eval_loss:.4f}", f"{r.compile_s:.1f}"))
    widths = [max(len(row[k]) for row in rows) for k in range(len(head))]

    def line(row):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(rows[0]), sep] + [line(r) for r in rows[1:]])


def plot(results: Sequence[RunResult], path: str) -> str:
    """Writes the loss curves and throughput to ``path``; returns a line for the printout."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install matplotlib)"
    fig, (ax_loss, ax_rate) = plt.subplots(1, 2, figsize=(11, 4))
    for r in results:
        steps = np.arange(1, len(r.losses) + 1)
        ax_loss.plot(steps, r.losses, lw=1, alpha=0.8, label=r.name)
    ax_loss.set(xlabel="step", ylabel="training loss (normalised)", yscale="log",
                title="loss")
    ax_loss.legend()
    names = [r.name for r in results]
    rates = [r.steps_per_s for r in results]
    bars = ax_rate.bar(range(len(results)), rates, color=["tab:blue", "tab:orange"][:len(results)])
    for bar, r in zip(bars, results):
        ax_rate.annotate(f"{r.steps_per_s:.0f}/s\nload {r.preprocess_ms:.2f} ms",
                         (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                         ha="center", va="bottom", fontsize=8)
    ax_rate.set_xticks(range(len(results)), names, fontsize=8)
    ax_rate.set(ylabel="training steps per second", title="throughput")
    ax_rate.margins(y=0.2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"plot: {path}"


def finish(summary: dict, results: Sequence[RunResult], args, t_start: float) -> dict:
    """The demo's last lines: the plot (unless ``--no-plot``), the total time, and the
    numbers as JSON in ``args.json``; returns ``summary`` with the results added."""
    print("plot: skipped (--no-plot)" if args.no_plot else plot(results, args.plot))
    total = time.perf_counter() - t_start
    print(f"total time {total:.1f} s")
    summary = dict(summary, total_seconds=total, results=[r.summary() for r in results])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
        print(f"numbers: {args.json}")
    return summary
