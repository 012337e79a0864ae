"""Shared test fixtures: platforms (CPU always; the CUDA path when a GPU is present)."""

from __future__ import annotations

import os
import zlib

# Several CPU devices for the sharding tests (must precede jax's backend start).
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_force_host_platform_device_count=4").strip()

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, Phase, settings  # noqa: E402

import jax_robocache  # noqa: E402
from jax_robocache._core import extension as _extension  # noqa: E402


# Hypothesis profiles. "ci" (default): a few dozen examples per fuzz test. "long"
# (HYPOTHESIS_PROFILE=long, the device run): 10,000 examples per fuzz test, no shrinking
# (a failure prints its example and seed at once), no example database.
# ROBOCACHE_FUZZ_EXAMPLES=N overrides the count of either profile (timing, quick reruns).
_FUZZ_EXAMPLES = os.environ.get("ROBOCACHE_FUZZ_EXAMPLES")
settings.register_profile("ci", max_examples=int(_FUZZ_EXAMPLES or 25), deadline=None,
                          phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=int(_FUZZ_EXAMPLES or 10_000), deadline=None,
                          database=None, phases=(Phase.explicit, Phase.generate),
                          print_blob=True, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def gpu_available() -> bool:
    try:
        return bool(jax.devices("gpu")) and _extension.STATUS.registered
    except RuntimeError:
        return False


PLATFORMS = ("cpu", "gpu")


def skip_unless_platform(testcase_or_none, platform: str) -> None:
    """Skips (cleanly) a test for a platform this machine does not have."""
    if platform == "gpu" and not gpu_available():
        reason = "no GPU with jax_robocache CUDA kernels (%s)" % (
            _extension.STATUS.reason or "no GPU device")
        if testcase_or_none is not None:
            testcase_or_none.skipTest(reason)
        pytest.skip(reason)


def device(platform: str):
    return jax.devices(platform)[0]


@pytest.fixture(params=PLATFORMS)
def platform(request):
    skip_unless_platform(None, request.param)
    with jax.default_device(device(request.param)):
        yield request.param


#: Fresh random inputs every run; set ROBOCACHE_TEST_SEED to replay a run.
RUN_SEED = int(os.environ.get("ROBOCACHE_TEST_SEED", np.random.SeedSequence().entropy % 2**31))


def rng_for(name: str) -> np.random.Generator:
    """A generator for one test: the run seed mixed with the test's name."""
    return np.random.default_rng([RUN_SEED, zlib.crc32(name.encode())])


@pytest.fixture
def rng(request):
    return rng_for(request.node.nodeid)


def pytest_report_header(config):
    info = jax_robocache.info()
    kernels = info["kernels_unavailable_reason"] or "CUDA kernels in use"
    return [f"ROBOCACHE_TEST_SEED={RUN_SEED}",
            f"jax_robocache {info['version']} jax {info['jax']} backend {info['default_backend']} "
            f"({kernels}) ops: {info['ops']}"]


# The header above is hidden by `pytest -q`: the seed is also the last line of every run and
# a section of every failure report, so a failure can always be replayed.
def _replay_line() -> str:
    return f"ROBOCACHE_TEST_SEED={RUN_SEED} (set it to replay this run's random inputs)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        report.sections.append(("random inputs", _replay_line()))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    terminalreporter.write_line(_replay_line())
