"""Security checks of CI: bandit over our code, pip-audit over an installed environment.

Run with the Python of a virtual environment that holds bandit and pip-audit (not the
environment under test), from anywhere:

    python .ci/security.py --audit-python .ci-venv/bin/python

Findings are compared with the triaged exceptions of .ci/security.toml (one entry per
finding, each with a reason); anything not accepted there fails. Exit status: 0 clean,
1 untriaged findings, 2 a check could not run (tool error, vulnerability service
unreachable). The dependency audit never passes silently: a canary package with known
advisories is audited first and must come back vulnerable, and every installed package
must have been looked up. With --allow-offline (or ROBOCACHE_SECURITY_OFFLINE=1) an
unreachable service is reported in a banner and the exit status reflects bandit alone.
docs/security.md describes the policy.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess  # nosec B404 - runs the tools below with fixed argument lists
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / ".ci" / "security.toml"
OFFLINE_ENV = "ROBOCACHE_SECURITY_OFFLINE"
OWN_PACKAGE = re.compile(r"^jax[-_]robocache\b", re.I)

CLEAN, FINDINGS, CANNOT_RUN = 0, 1, 2
NOT_RUN: list[str] = []  # checks skipped (named in the final verdict)


def banner(lines: list[str]) -> None:
    bar = "#" * 78
    print("\n".join([bar, *(f"# {line}" for line in lines), bar]), flush=True)


def _tool(name: str) -> str:
    """The tool installed next to this interpreter (the tools' venv)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise SystemExit(f"security: {name} is not installed in {sys.prefix} "
                         f"(pip install bandit pip-audit there)")
    return str(path)


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # nosec B603


# -- bandit -------------------------------------------------------------------------
def _source_line(path: str, line: int) -> str:
    try:
        return (ROOT / path).read_text().splitlines()[line - 1]
    except (OSError, IndexError):
        return ""


def _bandit_accepts(finding: dict, entry: dict) -> bool:
    return (finding["test_id"] == entry["test"] and finding["filename"] == entry["path"]
            and entry["code"] in _source_line(finding["filename"], finding["line_number"]))


def _record(text, match, accepted, new, used):
    """One finding: untriaged (``match`` None) into ``new``, else printed as accepted with the
    triage entry's reason and its index marked used."""
    if match is None:
        new.append(text)
    else:
        used.add(match)
        print(f"  accepted  {text}\n            reason: {accepted[match]['reason']}")


def _print_triage(accepted: list, used: set, new: list, describe) -> None:
    """Names the triage entries that matched nothing (stale) and the untriaged findings."""
    for i, entry in enumerate(accepted):
        if i not in used:
            print(f"  STALE triage entry (matches nothing; delete it): {describe(entry)}")
    for text in new:
        print(f"  NEW       {text}")


def run_bandit(config: dict) -> int:
    accepted = config.get("accept", [])
    for entry in accepted:
        missing = {"test", "path", "code", "reason"} - set(entry)
        if missing or not str(entry.get("reason", "")).strip():
            print(f"bandit: triage entry {entry} lacks {sorted(missing) or ['a reason']}")
            return CANNOT_RUN
    paths = config["paths"]
    proc = _run([_tool("bandit"), "-r", *paths, "-f", "json", "-q"], cwd=ROOT)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        print(f"bandit failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return CANNOT_RUN
    files = [name for name in report.get("metrics", {}) if name != "_totals"]
    lines = report.get("metrics", {}).get("_totals", {}).get("loc", 0)
    if report.get("errors") or not files or not lines:
        print(f"bandit: scanned {len(files)} files, {lines} lines; errors: "
              f"{report.get('errors')} -- nothing may go unscanned")
        return CANNOT_RUN
    new, used = [], set()
    for finding in report["results"]:
        match = next((i for i, e in enumerate(accepted) if _bandit_accepts(finding, e)), None)
        where = f"{finding['filename']}:{finding['line_number']}"
        text = (f"{finding['test_id']} {finding['issue_severity'].lower()}/"
                f"{finding['issue_confidence'].lower()} {where}: {finding['issue_text']}")
        _record(text, match, accepted, new, used)
    _print_triage(accepted, used, new, lambda e: f"{e['test']} {e['path']}: {e['code']!r}")
    print(f"bandit: {len(files)} files, {lines} lines of {', '.join(paths)}: "
          f"{len(report['results'])} findings, {len(used)} accepted in .ci/security.toml, "
          f"{len(new)} untriaged")
    return FINDINGS if new else CLEAN


# -- pip-audit ------------------------------------------------------------------------
def _frozen(python: str) -> tuple[list[str], list[str]]:
    """Pinned requirements of the environment of ``python`` (all packages, pip included),
    and the lines that cannot be audited by name and version (direct URLs, editables)."""
    proc = _run([python, "-m", "pip", "freeze", "--all"])
    if proc.returncode:
        raise SystemExit(f"pip freeze failed in {python}:\n{proc.stderr}")
    pinned, other = [], []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or OWN_PACKAGE.match(line):
            continue
        (pinned if re.match(r"^[A-Za-z0-9._-]+==\S+$", line) else other).append(line)
    return pinned, other


def _pip_audit(requirements: list[str], service: str) -> tuple[dict | None, str]:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(requirements) + "\n")
    try:
        proc = _run([_tool("pip-audit"), "-r", f.name, "--no-deps", "--disable-pip",
                     "-s", service, "-f", "json", "--progress-spinner", "off"], timeout=900)
    finally:
        os.unlink(f.name)
    try:
        return json.loads(proc.stdout), proc.stderr
    except json.JSONDecodeError:
        return None, f"exit {proc.returncode}: {proc.stdout}\n{proc.stderr}"


def _service_down(allow_offline: bool, service: str, why: str) -> int:
    banner([f"DEPENDENCY AUDIT NOT RUN: pip-audit's vulnerability service ({service}) is",
            "unreachable or answers without advisory data. NO installed package was checked",
            "for known vulnerabilities.", f"Why: {why}",
            "Run `python .ci/security.py` where the service is reachable (docs/security.md)."])
    if allow_offline:
        NOT_RUN.append(f"dependency audit NOT RUN (service unreachable; {OFFLINE_ENV} set)")
        return CLEAN
    return CANNOT_RUN


def run_pip_audit(config: dict, python: str, allow_offline: bool) -> int:
    service = config.get("service", "pypi")
    accepted = config.get("accept", [])
    for entry in accepted:
        if not {"id", "package", "reason"} <= set(entry) or not str(entry["reason"]).strip():
            print(f"pip-audit: triage entry {entry} needs id, package and reason")
            return CANNOT_RUN
    # The canary proves the service answers with advisory data (a mirror without it, a
    # proxy that answers 404, no network: pip-audit itself would print "no known
    # vulnerabilities" while having checked nothing).
    canary, err = _pip_audit([config["canary"]], service)
    if canary is None:
        return _service_down(allow_offline, service, (err.strip().splitlines() or ['no output'])[-1])
    canary_vulns = sum(len(d.get("vulns", [])) for d in canary.get("dependencies", []))
    if not canary_vulns:
        skipped = [d.get("skip_reason") for d in canary.get("dependencies", [])]
        return _service_down(allow_offline, service,
                             f"the canary {config['canary']} came back with no advisory "
                             f"({'; '.join(filter(None, skipped)) or 'no data'})")
    print(f"pip-audit: service {service} answers (canary {config['canary']}: "
          f"{canary_vulns} known advisories)")

    pinned, other = _frozen(python)
    if not pinned:
        print(f"pip-audit: pip freeze of {python} listed no package")
        return CANNOT_RUN
    report, err = _pip_audit(pinned, service)
    if report is None:
        return _service_down(allow_offline, service, err)
    status = CLEAN
    for line in other:
        print(f"  NOT AUDITED (not a released version: install it from an index) {line}")
        status = FINDINGS
    new, used = [], set()
    for dep in report.get("dependencies", []):
        if dep.get("skip_reason"):
            print(f"  NOT AUDITED {dep['name']}: {dep['skip_reason']}")
            status = FINDINGS
        for vuln in dep.get("vulns", []):
            ids = {vuln["id"], *vuln.get("aliases", [])}
            match = next((i for i, e in enumerate(accepted)
                          if e["id"] in ids and e["package"].lower() == dep["name"].lower()),
                         None)
            text = (f"{dep['name']} {dep['version']}: {vuln['id']} "
                    f"({', '.join(vuln.get('aliases', []))}) fixed in "
                    f"{', '.join(vuln.get('fix_versions', [])) or 'no release yet'}")
            _record(text, match, accepted, new, used)
    _print_triage(accepted, used, new, lambda e: f"{e['id']} ({e['package']})")
    audited = sum(1 for d in report.get("dependencies", []) if not d.get("skip_reason"))
    print(f"pip-audit: {audited} of {len(pinned) + len(other)} installed packages of {python} "
          f"audited against {service}: {len(new) + len(used)} known vulnerabilities, "
          f"{len(used)} accepted in .ci/security.toml, {len(new)} untriaged")
    return FINDINGS if new else status


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--audit-python", default=None,
                   help="interpreter of the environment to audit (default: skip pip-audit)")
    p.add_argument("--allow-offline", action="store_true",
                   default=os.environ.get(OFFLINE_ENV, "") not in ("", "0"),
                   help=f"an unreachable vulnerability service does not fail (${OFFLINE_ENV})")
    p.add_argument("--config", type=Path, default=CONFIG, help="the triage file")
    args = p.parse_args(argv)
    config = tomllib.loads(args.config.read_text())
    print("== bandit (Python security linter) ==", flush=True)
    status = run_bandit(config["bandit"])
    if args.audit_python:
        print("== pip-audit (known vulnerabilities of the installed packages) ==", flush=True)
        status = max(status, run_pip_audit(config["pip_audit"], args.audit_python,
                                           args.allow_offline))
    else:
        banner(["DEPENDENCY AUDIT NOT RUN: no --audit-python given."])
        NOT_RUN.append("dependency audit NOT RUN (no --audit-python)")
    print({CLEAN: "security: clean" + "".join(f"; BUT {n}" for n in NOT_RUN), FINDINGS: "security: UNTRIAGED FINDINGS (see NEW / "
           "NOT AUDITED above; fix them or triage them in .ci/security.toml)",
           CANNOT_RUN: "security: A CHECK COULD NOT RUN (see above)"}[status])
    return status


if __name__ == "__main__":
    sys.exit(main())
