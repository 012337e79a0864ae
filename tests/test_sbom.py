"""The wheel SBOM generator (scripts/sbom.py): CycloneDX 1.5 structure and content.

Wheels are assembled here from the project's real pyproject.toml dependencies (building one
with CMake takes too long for a unit test; CI builds the CPU wheel and validates its SBOM
against the official schema, see .ci/run). The compiled-module facts are checked against the
real module wherever it is built (CI compiles it; the GPU machine too).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import re
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("robocache_sbom", ROOT / "scripts" / "sbom.py")
sbom = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sbom)

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SO_NAME = "jax_robocache/_robocache_cuda.cpython-311-x86_64-linux-gnu.so"
FACTS = {"cuda_runtime_version": "13.0", "cuda_runtime_linkage": "static",
         "nvcc_version": "13.0.88", "host_compiler": "GNU 12.2.0", "nanobind_version": "3.1.0",
         "xla_ffi_jaxlib_version": "0.10.2", "cuda_architectures": "80-real,90-real,90-virtual"}


def _requires_dist() -> list[str]:
    lines = list(PYPROJECT["dependencies"])
    for extra, reqs in PYPROJECT["optional-dependencies"].items():
        lines += [f'{r}; extra == "{extra}"' for r in reqs]
    return lines


def _wheel(tmp_path: Path, *, compiled: bytes | None = None, tag="py3-none-any") -> Path:
    path = tmp_path / f"jax_robocache-0.1.0-{tag}.whl"
    meta = ["Metadata-Version: 2.2", "Name: jax_robocache", "Version: 0.1.0",
            "Summary: test wheel", "License: Apache-2.0", "Requires-Python: >=3.10"]
    meta += [f"Requires-Dist: {r}" for r in _requires_dist()]
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("jax_robocache/__init__.py", "")
        z.writestr("jax_robocache-0.1.0.dist-info/METADATA", "\n".join(meta) + "\n")
        z.writestr("jax_robocache-0.1.0.dist-info/WHEEL",
                   f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n")
        if compiled is not None:
            z.writestr(SO_NAME, compiled)
    return path


def _props(component: dict) -> dict:
    out: dict = {}
    for p in component.get("properties", []):
        assert p["name"].startswith("jax_robocache:"), p
        out.setdefault(p["name"].split(":", 1)[1], []).append(p["value"])
    return out


def check_cyclonedx(doc: dict) -> dict:
    """Structural checks of CycloneDX 1.5 (required fields, unique and resolvable refs);
    returns the components by bom-ref."""
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.5"
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", doc["serialNumber"])
    assert doc["version"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["metadata"]["timestamp"])
    root = doc["metadata"]["component"]
    components = [root] + doc["components"]
    refs = [c["bom-ref"] for c in components]
    assert len(refs) == len(set(refs)), refs
    for c in components:
        assert c["type"] in ("library", "application") and c["name"], c
        for h in c.get("hashes", []):
            assert h["alg"] == "SHA-256" and re.fullmatch(r"[0-9a-f]{64}", h["content"])
        if "purl" in c:
            assert c["purl"].startswith(("pkg:pypi/", "pkg:generic/")), c["purl"]
    by_ref = dict(zip(refs, components))
    for dep in doc["dependencies"]:
        assert dep["ref"] in by_ref, dep
        assert all(d in by_ref for d in dep["dependsOn"]), dep
    # Every component is reachable from the wheel.
    graph = {d["ref"]: d["dependsOn"] for d in doc["dependencies"]}
    seen, todo = set(), [root["bom-ref"]]
    while todo:
        ref = todo.pop()
        if ref not in seen:
            seen.add(ref)
            todo += graph.get(ref, [])
    assert seen == set(refs), set(refs) - seen
    json.dumps(doc)  # serialisable
    return by_ref


def test_cpu_wheel(tmp_path):
    wheel = _wheel(tmp_path)
    out = sbom.write_sbom(wheel)
    assert out.name == wheel.name + ".cdx.json" and out.parent == wheel.parent
    doc = json.loads(out.read_text())
    by_ref = check_cyclonedx(doc)
    root = doc["metadata"]["component"]
    assert root["name"] == "jax_robocache" and root["version"] == "0.1.0"
    assert root["hashes"][0]["content"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert root["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    assert _props(root)["variant"] == ["cpu (jax.numpy only)"]
    assert _props(root)["tag"] == ["py3-none-any"]
    # Every runtime dependency, required, with the declared range.
    for line in PYPROJECT["dependencies"]:
        name, spec = re.match(r"([A-Za-z0-9_.-]+)(.*)", line).groups()
        comp = by_ref[f"pypi:{name.lower()}"]
        assert comp["scope"] == "required" and comp["purl"] == f"pkg:pypi/{name.lower()}"
        assert sorted(_props(comp)["requirement"][0].split(",")) == sorted(spec.split(",")), comp
    # Extras: optional, naming every extra that pulls the package in (rosbags: test and io).
    rosbags = by_ref["pypi:rosbags"]
    assert rosbags["scope"] == "optional"
    assert sorted(_props(rosbags)["extra"]) == sorted(
        e for e, reqs in PYPROJECT["optional-dependencies"].items()
        if any(r.startswith("rosbags") for r in reqs))
    assert not any(r.startswith("compiled:") for r in by_ref)


def test_cuda_wheel(tmp_path):
    so = b"\x7fELF not really a module"
    wheel = _wheel(tmp_path, compiled=so, tag="cp311-cp311-linux_x86_64")
    doc = sbom.build_sbom(wheel, facts=FACTS)
    by_ref = check_cyclonedx(doc)
    module = by_ref["compiled:module"]
    assert module["hashes"][0]["content"] == hashlib.sha256(so).hexdigest()
    assert _props(module)["file"] == [SO_NAME]
    assert _props(module)["cuda_architectures"] == [FACTS["cuda_architectures"]]
    assert _props(module)["nvcc_version"] == ["13.0.88"]
    cudart = by_ref["compiled:cudart"]
    assert cudart["version"] == "13.0" and _props(cudart)["linkage"] == ["static"]
    assert by_ref["compiled:nanobind"]["version"] == "3.1.0"
    ffi = by_ref["compiled:xla-ffi-headers"]
    assert ffi["version"] == "0.10.2" and ffi["purl"] == "pkg:pypi/jaxlib@0.10.2"
    graph = {d["ref"]: set(d["dependsOn"]) for d in doc["dependencies"]}
    assert "compiled:module" in graph[doc["metadata"]["component"]["bom-ref"]]
    assert graph["compiled:module"] == {"compiled:cudart", "compiled:nanobind",
                                        "compiled:xla-ffi-headers"}
    assert _props(doc["metadata"]["component"])["variant"] == ["cuda"]


def test_missing_fact_is_an_error():
    class Module:
        __file__ = "fake.so"

        @staticmethod
        def build_info():
            return {k: v for k, v in FACTS.items() if k != "nvcc_version"}

    with pytest.raises(RuntimeError, match="nvcc_version"):
        sbom.module_facts(Module)


def test_facts_of_the_built_module():
    """The real module's build facts agree with what it reports elsewhere (CI, GPU machine)."""
    try:
        module = importlib.import_module("jax_robocache._robocache_cuda")
    except ImportError as err:
        pytest.skip(f"CUDA module not built here ({err})")
    facts = sbom.module_facts(module)
    assert facts["cuda_architectures"] == module.cuda_architectures()
    assert facts["xla_ffi_jaxlib_version"] == module.built_against_jaxlib()
    assert re.fullmatch(r"\d+\.\d+", facts["cuda_runtime_version"]), facts
    assert re.fullmatch(r"\d+\.\d+\.\d+", facts["nvcc_version"]), facts
    assert re.fullmatch(r"\d+\.\d+\.\d+", facts["nanobind_version"]), facts
    assert facts["cuda_runtime_linkage"] == "static"
    # nvcc and the CUDA runtime headers come from one toolkit.
    assert facts["nvcc_version"].split(".")[:2] == facts["cuda_runtime_version"].split(".")


def test_schema_validation(tmp_path):
    """Against the official schema, where cyclonedx-python-lib is installed (CI's tools venv
    validates the real CPU wheel's SBOM)."""
    pytest.importorskip("cyclonedx.validation.json")
    sbom.validate(sbom.write_sbom(_wheel(tmp_path)))
    sbom.validate(sbom.write_sbom(_wheel(tmp_path, compiled=b"so",
                                         tag="cp311-cp311-linux_x86_64"), FACTS))
