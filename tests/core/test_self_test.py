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


def test_no_gpu_is_named_as_the_reason(monkeypatch):
    """Kernels registered but no GPU: info() and the report say so (the twins run)."""
    from jax_robocache._core import extension, info as info_module
    registered = extension.ExtensionStatus(True, True, "90-real", "0.10.2", "")
    assert "no GPU device" in info_module.kernels_unavailable_reason(registered, 0)
    assert info_module.kernels_unavailable_reason(registered, 1) == ""
    monkeypatch.setenv(info_module.FORCE_JNP_ENV, "1")
    assert info_module.FORCE_JNP_ENV in info_module.kernels_unavailable_reason(registered, 1)
    monkeypatch.delenv(info_module.FORCE_JNP_ENV)
    monkeypatch.setattr(extension, "STATUS", registered)
    monkeypatch.setattr(info_module, "gpu_device_count", lambda: 0)
    info = jax_robocache.info()
    assert info["gpu_devices"] == 0 and "no GPU device" in info["kernels_unavailable_reason"]
    header = str(jax_robocache.self_test(seed=2)).splitlines()[0]
    assert "no GPU device" in header and "CUDA kernels in use" not in header, header


def test_info_reason_is_empty_only_when_kernels_run():
    info = jax_robocache.info()
    runs_kernels = "cuda-ffi" in info["ops"].values()
    assert (info["kernels_unavailable_reason"] == "") == runs_kernels, info
