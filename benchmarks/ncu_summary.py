"""Summarises an Nsight Compute raw CSV export (`ncu --import R --page raw --csv
--print-units base`): one line per profiled kernel launch with its duration,
achieved DRAM bandwidth and occupancy. Usage: python ncu_summary.py RAW.csv > SUMMARY.csv
"""

from __future__ import annotations

import csv
import sys

#: summary column -> (raw metric, scale to the summary's unit)
COLUMNS = {
    "duration_us": ("gpu__time_duration.sum", 1e-3),                     # ns
    "dram_GBps": ("dram__bytes.sum.per_second", 1e-9),                   # byte/s
    "dram_pct_of_peak": ("dram__throughput.avg.pct_of_peak_sustained_elapsed", 1.0),
    "dram_read_MB": ("dram__bytes_read.sum", 1e-6),
    "dram_write_MB": ("dram__bytes_write.sum", 1e-6),
    "achieved_occupancy_pct": ("sm__warps_active.avg.pct_of_peak_sustained_active", 1.0),
    "theoretical_occupancy_pct": ("sm__maximum_warps_per_active_cycle_pct", 1.0),
    "registers_per_thread": ("launch__registers_per_thread", 1.0),
    "block_size": ("launch__block_size", 1.0),
    "grid_size": ("launch__grid_size", 1.0),
}


def _number(text: str | None) -> float | None:
    try:
        return float(text.replace(",", "")) if text not in (None, "", "n/a") else None
    except ValueError:
        return None


def summarize(lines) -> list[dict]:
    rows = list(csv.DictReader(lines))
    out = []
    for row in rows:
        name = row.get("Kernel Name", "")
        if not name or _number(row.get("ID")) is None:  # the units row has no ID
            continue
        entry = {"id": row["ID"], "kernel": name}
        for column, (metric, scale) in COLUMNS.items():
            value = _number(row.get(metric))
            entry[column] = None if value is None else round(value * scale, 3)
        out.append(entry)
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0], newline="") as fh:
        lines = [line for line in fh if not line.startswith("==")]  # ncu's own messages
    entries = summarize(lines)
    writer = csv.DictWriter(sys.stdout, ["id", "kernel", *COLUMNS])
    writer.writeheader()
    writer.writerows(entries)
    return 0 if entries else 1


if __name__ == "__main__":
    sys.exit(main())
