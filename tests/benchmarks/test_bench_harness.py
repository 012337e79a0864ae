"""The benchmark harness: the smoke suite of every op end to end (in-process, CPU), the run
order, the loop dependency, goals, the reports, compare.py's verdicts and exit codes, and the
Nsight Compute CSV summary. No timed assertions."""

from __future__ import annotations

import csv
import json
import os
import sys

import jax
import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
                                "benchmarks"))
import compare  # noqa: E402
import harness  # noqa: E402
import ncu_summary  # noqa: E402
import report  # noqa: E402
import run  # noqa: E402
import suites  # noqa: E402
import timing  # noqa: E402

OPS = {"resample", "align", "voxelize", "points_to_voxels"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    doc = out / "perf.md"
    doc.write_text(f"# Perf\nintro\n{report.BEGIN}\nstale table\n{report.END}\noutro\n")
    with jax.default_device(jax.devices("cpu")[0]):
        status = run.main(["--suite", "smoke", "--out", str(out), "--markdown", str(doc),
                           "--git-sha", "abc123"])
    return status, out, json.loads((out / "bench.json").read_text())


def test_smoke_measures_every_implementation(smoke):
    status, _, result = smoke
    assert status == 0 and not result["errors"] and not result["skipped"]
    assert OPS <= set(suites.available_ops())
    cases = {(r["op"], r["case"]) for r in result["rows"]}
    assert {op for op, _ in cases} == set(suites.available_ops())  # every op, OPS included
    for op, name in cases:
        impls = {r["impl"] for r in result["rows"] if (r["op"], r["case"]) == (op, name)}
        assert {"ours", "ours_standalone", "jnp", "numpy"} <= impls, (op, name)
    for r in result["rows"]:
        assert r["n"] == len(r["samples"]) >= 2
        assert 0 < r["median"] <= r["p99"] and r["ci95_low"] <= r["mean"] <= r["ci95_high"]
        assert r["ours_speedup"] > 0
    for r in result["rows"]:
        if r["impl"] in ("numpy", "torch"):
            assert r["agrees"], r  # the baselines compute what ours computes
    ours = [r for r in result["rows"] if r["impl"] == "ours"]
    assert all(r["uses_kernel"] is False for r in ours)  # CPU: the jnp lowering
    assert result["copy_bandwidth_Bps"] > 0


def test_every_output_is_stamped(smoke):
    _, out, result = smoke
    st = result["stamp"]
    assert st["git"] == "abc123" and st["platform"] == "cpu"
    for key in ("device", "driver", "jax", "jaxlib", "date"):
        assert key in st
    with open(out / "bench.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(result["rows"]) and {r["git"] for r in rows} == {"abc123"}
    assert {r["jax"] for r in rows} == {jax.__version__}
    page = (out / "report.html").read_text()
    assert "<table>" in page and "abc123" in page and jax.__version__ in page
    doc = (out / "perf.md").read_text()
    assert doc.startswith("# Perf\nintro\n") and doc.endswith("outro\n")
    assert "stale table" not in doc and "abc123" in doc
    assert all(f"### {op}\n" in doc for op in OPS)


def test_report_regenerates_without_matplotlib(smoke, tmp_path, monkeypatch):
    _, out, _ = smoke
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    report.main([str(out / "bench.json"), "--html", str(tmp_path / "r.html"),
                 "--markdown", str(tmp_path / "t.md")])
    assert "need matplotlib" in (tmp_path / "r.html").read_text()
    assert (tmp_path / "t.md").read_text().startswith(report.BEGIN)


def test_full_runs_every_ops_quick_cases_first():
    args = run.parse_args(["--suite", "full"])
    order = run.run_order(args, [])
    quick = [(c.op, c.name) for op in suites.available_ops()
             for c in suites.load(op).cases("quick")]
    assert [(c.op, c.name) for c in order[:len(quick)]] == quick
    assert {c.op for c in order[:len(quick)]} == set(suites.available_ops())
    assert len(order) > len(quick) and len({(c.op, c.name) for c in order}) == len(order)


def test_integer_outputs_still_chain_the_loop():
    """An int32 grid as the first output (voxelize count) must feed the next call: otherwise
    XLA folds ``x * 0`` to 0 and merges the unrolled calls into one."""
    from jax_robocache import voxelize
    fn = lambda p, n: voxelize(p, voxel_size=0.25, point_range=(-1, -1, -1, 1, 1, 1),  # noqa
                               lengths=n)
    points = np.random.default_rng(0).uniform(-1, 1, (1, 500, 3)).astype(np.float32)
    lengths = np.array([500], np.int32)
    with jax.default_device(jax.devices("cpu")[0]):
        hlo = timing._looped(fn, 2, 1, 3, 1, 4).lower(points, lengths).compile().as_text()
    assert hlo.count(" scatter(") == 4


@pytest.mark.parametrize("goal, rows, text, met", [
    (("vs_jnp_min", 10.0), dict(jnp=dict(ours_speedup=12.0)), "12.0x vs jnp (goal >= 10x)", True),
    (("vs_jnp_min", 12.0), dict(jnp=dict(ours_speedup=3.0)), "3.0x vs jnp (goal >= 12x)", False),
    (("roofline_max", 1.3), dict(ours=dict(bw_fraction=0.8)), "1.25x the copy time (goal <= 1.3x)",
     True),
    (("copy_fraction_min", 0.8), dict(ours=dict(bw_fraction=0.5)),
     "50% of copy (goal >= 80%)", False),
    (("p50_max_s", 2e-4), dict(ours=dict(median=1.5e-4)), "p50 0.150 ms (goal <= 0.2 ms)", True),
    (("vs_jnp_min", 4.0), dict(ours=dict()), "vs_jnp_min 4: not measured", None),
    (None, {}, None, None),
])
def test_goal_verdicts(goal, rows, text, met):
    verdict = harness.check_goal(goal, rows)
    assert verdict == dict(goal=text, goal_met=met)
    shown = report.fmt_goal(verdict)
    assert (shown == "–") if text is None else shown.startswith(text)
    assert ("NOT met" in shown) == (met is False)


def test_a_failing_baseline_is_an_error_not_a_lost_case():
    def broken(*_):
        raise RuntimeError("baseline bug")
    case = harness.Case(op="resample", name="t", params={},
                        make_inputs=lambda rng: [rng.standard_normal(8).astype(np.float32)],
                        fn=lambda x: x * 2, bytes_moved=lambda x: 64, numpy_fn=broken)
    errors = []
    with jax.default_device(jax.devices("cpu")[0]):
        rows = harness.measure(case, harness.SUITE_SETTINGS["smoke"], 1e9, errors=errors,
                               log=lambda _: None)
    assert [r["impl"] for r in rows] == ["ours", "ours_standalone", "jnp"]
    assert len(errors) == 1 and "numpy baseline" in errors[0] and "baseline bug" in errors[0]


def _write_run(path, p50=1.0, p99=1.0, jnp=1.0, device="NVIDIA H100 80GB HBM3"):
    rows = [dict(op="resample", case="train_f32", impl="ours", median=100e-6 * p50,
                 p99=130e-6 * p99),
            dict(op="resample", case="large_bf16", impl="ours", median=900e-6, p99=950e-6),
            dict(op="resample", case="train_f32", impl="jnp", median=1e-3 * jnp, p99=1.2e-3 * jnp)]
    path.write_text(json.dumps({"stamp": {"device": device, "git": "x"}, "rows": rows}))
    return str(path)


@pytest.mark.parametrize("p50, p99, extra, expected", [
    (1.00, 1.00, [], 0),
    (1.04, 1.09, [], 0),                  # inside 5% / 10%
    (0.50, 0.50, [], 0),                  # faster is fine
    (1.06, 1.00, [], 1),                  # p50 +6%
    (1.00, 1.11, [], 1),                  # p99 +11%
    (1.06, 1.00, ["--p50", "0.10"], 0),   # thresholds are configurable
    (1.00, 1.11, ["--p99", "0.20"], 0),
    (1.03, 1.00, ["--p50", "0.02"], 1),
])
def test_compare_exit_codes(tmp_path, p50, p99, extra, expected):
    base = _write_run(tmp_path / "base.json")
    new = _write_run(tmp_path / "run.json", p50=p50, p99=p99)
    assert compare.main([new, base, *extra]) == expected


def test_compare_gates_only_the_chosen_implementations(tmp_path):
    base = _write_run(tmp_path / "base.json")
    new = _write_run(tmp_path / "run.json", jnp=1.5)
    assert compare.main([new, base]) == 0
    assert compare.main([new, base, "--impls", "ours,jnp"]) == 1


def test_compare_refuses_what_is_not_comparable(tmp_path):
    base = _write_run(tmp_path / "base.json")
    other = _write_run(tmp_path / "other.json", device="NVIDIA H200")
    assert compare.main([other, base]) == 2
    assert compare.main([other, base, "--allow-device-mismatch"]) == 0
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"stamp": {"device": "NVIDIA H100 80GB HBM3"}, "rows": []}))
    assert compare.main([str(empty), base]) == 2


def test_ncu_summary_reads_a_raw_export(tmp_path, capsys):
    raw = tmp_path / "raw.csv"
    raw.write_text(
        "==PROF== Disconnected from process 1\n"
        '"ID","Kernel Name","gpu__time_duration.sum","dram__bytes.sum.per_second",'
        '"sm__warps_active.avg.pct_of_peak_sustained_active","launch__block_size"\n'
        '"","","nsecond","byte/second","%",""\n'
        '"0","robocache::(anonymous namespace)::ResampleKernel(Args)","12,345","2,500,000,000,000",'
        '"61.5","256"\n')
    assert ncu_summary.main([str(raw)]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert len(rows) == 1 and rows[0]["kernel"].endswith("ResampleKernel(Args)")
    assert float(rows[0]["duration_us"]) == pytest.approx(12.345)
    assert float(rows[0]["dram_GBps"]) == pytest.approx(2500)
    assert float(rows[0]["achieved_occupancy_pct"]) == pytest.approx(61.5)
    assert rows[0]["theoretical_occupancy_pct"] == ""
