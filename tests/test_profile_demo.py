"""scripts/profile_demo.py: a traced demo step, attributed to our ops (CPU here; GPU later)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import jax
import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("profile_demo", ROOT / "scripts" / "profile_demo.py")
profile_demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(profile_demo)

HLO = """HloModule jit_step, entry_computation_layout={(f32[4]{0})->f32[4]{0}}

%fused_computation (param_0: f32[4]) -> f32[4] {
  %param_0 = f32[4]{0} parameter(0)
  ROOT %gather.1 = f32[4]{0} negate(%param_0), metadata={op_name="jit(step)/vmap(jax_robocache/align)/neg"}
}

%wrapped_slice_computation (param_0.1: f32[4]) -> f32[4] {
  %param_0.1 = f32[4]{0} parameter(0)
  ROOT %slice.2 = f32[4]{0} slice(%param_0.1), slice={[0:4]}, metadata={op_name="jit(step)/slice"}
}

ENTRY %main.3 (x: f32[4]) -> f32[4] {
  %x = f32[4]{0} parameter(0)
  %gather_fusion = f32[4]{0} fusion(%x), kind=kLoop, calls=%fused_computation, metadata={op_name="jit(step)/jax_robocache/align/gather"}
  %wrapped_slice = f32[4]{0} fusion(%gather_fusion), kind=kLoop, calls=%wrapped_slice_computation
  %custom-call.1 = f32[4]{0} custom-call(%wrapped_slice), custom_call_target="robocache_voxelize", metadata={op_name="jit(step)/jax_robocache/voxelize/robocache_voxelize"}
  ROOT %add.1 = f32[4]{0} add(%custom-call.1, %x), metadata={op_name="jit(step)/add"}
}
"""


def test_instruction_attribution():
    ops = profile_demo.op_of_instruction(HLO)
    assert ops["gather_fusion"] == "jax_robocache/align"
    assert ops["gather.1"] == "jax_robocache/align"  # under vmap: vmap(jax_robocache/align)
    assert ops["custom-call.1"] == "jax_robocache/voxelize"
    assert ops["wrapped_slice"] == profile_demo.OTHER  # no metadata: its root's (a slice)
    assert ops["add.1"] == profile_demo.OTHER


def test_profile_demo_on_this_backend(tmp_path, capsys, monkeypatch):
    if jax.default_backend() != "cpu":
        pytest.skip("the GPU figures come from the device run (docs/profiling.md)")
    monkeypatch.setenv("XLA_FLAGS", __import__("os").environ.get("XLA_FLAGS", ""))  # restored
    out = tmp_path / "numbers.json"
    result = profile_demo.main(["--steps", "2", "--batch-size", "8", "--out",
                                str(tmp_path / "trace"), "--json", str(out)])
    printed = capsys.readouterr().out
    assert json.loads(out.read_text())["ops"].keys() == result["ops"].keys()
    assert Path(result["trace"]).is_file()
    ours = {k: v for k, v in result["ops"].items() if k.startswith("jax_robocache/")}
    assert set(ours) == {"jax_robocache/align", "jax_robocache/voxelize"}, result["ops"]
    for name, row in result["ops"].items():
        assert row["ms_per_step"] > 0, (name, row)
        assert f"{name:<44}" in printed
    assert sum(r["percent_of_op_time"] for r in result["ops"].values()) == pytest.approx(100)
    assert result["all_jax_robocache"]["ms_per_step"] == pytest.approx(
        sum(r["ms_per_step"] for r in ours.values()))
    assert "XLA CPU thunks" in result["source"]
