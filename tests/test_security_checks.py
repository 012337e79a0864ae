"""The CI security runner (.ci/security.py) with stand-ins for bandit and pip-audit.

The real tools run in CI (.ci/run); here fake executables print canned JSON reports so
that every verdict of the runner is checked offline: triaged findings pass, untriaged
ones fail, a package that could not be looked up fails, and an audit whose service
returns no advisory data for the canary is reported as NOT RUN (failing, unless offline
runs are allowed), never as clean.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / ".ci" / "security.py"

BANDIT_FINDING = {"test_id": "B404", "filename": "benchmarks/stamp.py", "line_number": 9,
                  "issue_severity": "LOW", "issue_confidence": "HIGH",
                  "issue_text": "subprocess module"}
CONFIG = """
[bandit]
paths = ["benchmarks"]
{bandit_accept}
[pip_audit]
service = "pypi"
canary = "flask==0.5"
{audit_accept}
"""
ACCEPT_B404 = """[[bandit.accept]]
test = "B404"
path = "benchmarks/stamp.py"
code = "import subprocess"
reason = "fixed argument lists"
"""


def _fake_tools(tmp_path: Path, bandit: dict, canary: dict, audit: dict) -> Path:
    """A bin/ with python (this interpreter) and fake bandit / pip-audit printing JSON."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    os.symlink(sys.executable, bin_dir / "python")
    reports = {"bandit": bandit, "canary": canary, "audit": audit}
    (tmp_path / "reports.json").write_text(json.dumps(reports))
    for tool, body in (("bandit", "print(json.dumps(r['bandit']))"),
                       ("pip-audit", textwrap.dedent("""\
                           req = open(sys.argv[sys.argv.index('-r') + 1]).read()
                           print(json.dumps(r['canary'] if 'flask==0.5' in req else r['audit']))
                           sys.exit(1)"""))):
        script = bin_dir / tool
        script.write_text(f"#!{sys.executable}\nimport json, sys\n"
                          f"r = json.load(open({str(tmp_path / 'reports.json')!r}))\n{body}\n")
        script.chmod(0o755)
    return bin_dir


def _bandit(results):
    return {"errors": [], "results": results,
            "metrics": {"_totals": {"loc": 120}, "benchmarks/stamp.py": {"loc": 120}}}


CANARY_OK = {"dependencies": [{"name": "flask", "version": "0.5",
                               "vulns": [{"id": "PYSEC-2019-179", "aliases": [],
                                          "fix_versions": ["1.0"]}]}]}
CANARY_EMPTY = {"dependencies": [{"name": "flask", "skip_reason": "Dependency not found on "
                                                                  "PyPI"}]}
NUMPY_VULN = {"dependencies": [{"name": "numpy", "version": "1.0", "vulns": [
    {"id": "GHSA-test", "aliases": ["CVE-0000-1"], "fix_versions": ["9.9"]}]}]}


def _run(tmp_path, *, bandit_results=(), bandit_accept="", canary=CANARY_OK,
         audit=None, audit_accept="", env=None):
    tools = _fake_tools(tmp_path, _bandit(list(bandit_results)), canary,
                        audit if audit is not None else {"dependencies": [
                            {"name": "numpy", "version": "2.0", "vulns": []}]})
    config = tmp_path / "security.toml"
    config.write_text(CONFIG.format(bandit_accept=bandit_accept, audit_accept=audit_accept))
    proc = subprocess.run([str(tools / "python"), str(RUNNER), "--config", str(config),
                           "--audit-python", sys.executable], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def test_clean(tmp_path):
    rc, out = _run(tmp_path, bandit_results=[BANDIT_FINDING], bandit_accept=ACCEPT_B404)
    assert rc == 0, out
    assert "accepted  B404" in out and "0 untriaged" in out and "security: clean" in out


def test_untriaged_bandit_finding_fails(tmp_path):
    rc, out = _run(tmp_path, bandit_results=[BANDIT_FINDING])
    assert rc == 1 and "NEW       B404" in out, out


def test_stale_triage_entry_is_reported(tmp_path):
    rc, out = _run(tmp_path, bandit_accept=ACCEPT_B404)
    assert rc == 0 and "STALE triage entry" in out, out


def test_untriaged_vulnerability_fails_and_triaged_passes(tmp_path):
    rc, out = _run(tmp_path, audit=NUMPY_VULN)
    assert rc == 1 and "NEW       numpy 1.0: GHSA-test" in out, out
    accept = ('[[pip_audit.accept]]\nid = "CVE-0000-1"\npackage = "numpy"\n'
              'reason = "never reached"\n')
    rc, out = _run(tmp_path / "again", audit=NUMPY_VULN, audit_accept=accept)
    assert rc == 0 and "accepted  numpy 1.0: GHSA-test" in out, out


def test_package_not_looked_up_fails(tmp_path):
    audit = {"dependencies": [{"name": "numpy", "skip_reason": "Dependency not found on PyPI"}]}
    rc, out = _run(tmp_path, audit=audit)
    assert rc == 1 and "NOT AUDITED numpy" in out, out


@pytest.mark.parametrize("offline", [False, True])
def test_service_without_data_is_never_clean(tmp_path, offline):
    env = {"ROBOCACHE_SECURITY_OFFLINE": "1" if offline else "0"}
    rc, out = _run(tmp_path, canary=CANARY_EMPTY, env=env)
    assert "DEPENDENCY AUDIT NOT RUN" in out and "NO installed package was checked" in out, out
    assert rc == (0 if offline else 2), out
    if offline:
        assert "security: clean; BUT dependency audit NOT RUN" in out, out
