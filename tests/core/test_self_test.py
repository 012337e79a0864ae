"""self_test() and ``python -m jax_robocache.self_test``."""

import subprocess
import sys

import jax_robocache


def test_self_test_passes_and_reports():
    report = jax_robocache.self_test(seed=3)
    assert report.ok, str(report)
    text = str(report)
    assert "PASS" in text and "all checks passed" in text
    from jax_robocache._core.primitive import REGISTRY
    for op in REGISTRY:  # every op of the package has a check, and the report lists it
        assert f"PASS  {op} " in text, (op, text)


def test_self_test_detects_a_broken_op(monkeypatch):
    import jax_robocache._core.self_test as module
    monkeypatch.setitem(module.CHECKS, "broken", lambda rng: (rng.normal(size=3),
                                                              rng.normal(size=3) + 1, 1e-6))
    report = jax_robocache.self_test(seed=1)
    assert not report.ok and "FAIL" in str(report)


def test_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "jax_robocache.self_test"], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all checks passed" in out.stdout
