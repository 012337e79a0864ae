"""Summarises a compute-sanitizer log: errors per section, and which of them are in our kernels.

Usage: python scripts/sanitizer_report.py LOG [--label NAME]

A section is the text between ``@@ <name> begin`` / ``@@ <name> end`` marker
lines that gpu_workload.py prints (``--lengths a,b,...``); without markers the
whole log is one section. An error is a sanitizer report block (a
``========= <description>`` line and its indented lines); it counts as ours
when its block names a ``robocache`` kernel, and as a host copy when it is a
host API access (initcheck: uninitialised device bytes copied to the host, as
an output our kernel left unwritten would be; gpu_workload.py copies every
output). Prints one line per section: reports printed, ours, host copies, the
most frequent (kind @ location) pairs, and the tool's own ERROR SUMMARY /
RACECHECK SUMMARY line (which also counts reports beyond --print-limit).
"""

from __future__ import annotations

import argparse
import collections
import re
import sys

NOT_ERRORS = ("COMPUTE-SANITIZER", "ERROR SUMMARY", "RACECHECK SUMMARY", "LEAK SUMMARY",
              "Target application returned", "This warning", "Note:")
LOCATION = re.compile(r"([\w./-]+\.(?:cu|cuh|cc|h)):(\d+)")


def blocks(lines):
    """(section, header, body lines) of every report block."""
    section, header, body = "all", None, []
    for line in lines:
        marker = re.match(r"@@ (\S+) (begin|end)", line)
        if marker:
            if header:
                yield section, header, body
            header, body = None, []
            section = marker.group(1) if marker.group(2) == "begin" else "all"
            continue
        m = re.match(r"=========( +)(.*)", line)
        if not m:
            continue
        if len(m.group(1)) == 1:  # a new top-level line
            if header:
                yield section, header, body
            text = m.group(2).strip()
            header, body = (None if not text or text.startswith(NOT_ERRORS) else text), []
        elif header:
            body.append(m.group(2))
    if header:
        yield section, header, body


def summarise(path: str) -> tuple[dict, list[str]]:
    with open(path, errors="replace") as fh:
        lines = fh.read().splitlines()
    stats = collections.OrderedDict()
    for line in lines:  # every marked section, reports or not
        marker = re.match(r"@@ (\S+) begin", line)
        if marker:
            stats.setdefault(marker.group(1), dict(errors=0, ours=0, copies=0,
                                                   where=collections.Counter()))
    for section, header, body in blocks(lines):
        s = stats.setdefault(section, dict(errors=0, ours=0, copies=0,
                                           where=collections.Counter()))
        s["errors"] += 1
        text = " ".join(body)
        ours = "robocache" in text or "robocache" in header
        s["ours"] += ours
        s["copies"] += header.startswith("Host API")
        loc = LOCATION.search(text) or LOCATION.search(header)
        kind = re.sub(r"0x[0-9a-f]+|\d+", "#", re.sub(r" of size \d+ bytes?", "", header))[:60]
        s["where"][f"{'ours' if ours else 'other'}: {kind} @ "
                   f"{loc.group(1).split('/')[-1] + ':' + loc.group(2) if loc else '?'}"] += 1
    totals = [line.strip("= ").strip() for line in lines
              if "ERROR SUMMARY" in line or "RACECHECK SUMMARY" in line]
    return stats, totals


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log")
    parser.add_argument("--label", default="")
    parser.add_argument("--fail-on-ours", action="store_true",
                        help="exit status 1 when a report names a robocache kernel or a host copy")
    args = parser.parse_args()
    stats, totals = summarise(args.log)
    tool_line = totals[-1] if totals else "no summary line (killed or timed out?)"
    if not stats:
        print(f"{args.label}: no reports; {tool_line}")
    for section, s in stats.items():
        top = "; ".join(f"{k} x{n}" for k, n in s["where"].most_common(4))
        name = args.label + ("" if section == "all" else f" [{section}]")
        print(f"{name}: {s['errors']} reports printed, {s['ours']} in robocache kernels, "
              f"{s['copies']} host copies{' (' + top + ')' if top else ''}; {tool_line}")
    bad = any(s["ours"] or s["copies"] for s in stats.values())
    return 1 if args.fail_on_ours and bad else 0


if __name__ == "__main__":
    sys.exit(main())
