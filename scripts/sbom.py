"""Writes the CycloneDX SBOM (JSON, spec 1.5) of a jax_robocache wheel next to it.

    python scripts/sbom.py dist/cuda/jax_robocache-*.whl     # -> <wheel>.cdx.json
    python scripts/sbom.py --validate dist/cuda/*.cdx.json   # schema check (cyclonedx-python-lib)

What it records, read from the wheel itself (scripts/build_wheel.sh calls this for every
wheel it builds; docs/security.md):
  * the wheel: name, version, SHA-256, license, tags;
  * its Python dependencies: every Requires-Dist with its version range (``required``, or
    ``optional`` with the extra that pulls it in);
  * for a CUDA wheel, the compiled module ``jax_robocache._robocache_cuda`` (SHA-256) and
    what is compiled into it, as the module reports it (``build_info()``, facts from the
    headers and compilers of its build): the CUDA runtime (linked statically) and its
    version, nanobind and its version, the XLA FFI API headers and the jaxlib they came
    from, the CUDA target architectures, the nvcc and host compiler versions. The module is
    imported from the wheel, so run this with an interpreter the wheel is built for.
"""

from __future__ import annotations

import argparse
import datetime
import email.parser
import hashlib
import importlib.machinery
import importlib.util
import json
import re
import sys
import tempfile
import uuid
import zipfile
from pathlib import Path

SPEC_VERSION = "1.5"
MODULE = "_robocache_cuda"
PROPERTY = "jax_robocache:"  # namespace of our properties


def _sha256(data: bytes) -> list[dict]:
    return [{"alg": "SHA-256", "content": hashlib.sha256(data).hexdigest()}]


def _purl_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # the PyPI purl normalisation


def _props(**values) -> list[dict]:
    return [{"name": PROPERTY + k, "value": str(v)} for k, v in values.items() if v not in
            (None, "")]


def wheel_metadata(wheel: zipfile.ZipFile):
    """The METADATA (email.message.Message) and WHEEL tags of an open wheel."""
    names = wheel.namelist()
    meta = next(n for n in names if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
    tags_file = meta.rsplit("/", 1)[0] + "/WHEEL"
    metadata = email.parser.Parser().parsestr(wheel.read(meta).decode())
    tags = email.parser.Parser().parsestr(wheel.read(tags_file).decode()).get_all("Tag", [])
    return metadata, tags


def dependency_components(metadata) -> list[dict]:
    """One component per Requires-Dist (the range is the declared requirement)."""
    from packaging.requirements import Requirement

    components, seen = [], {}
    for line in metadata.get_all("Requires-Dist", []):
        req = Requirement(line)
        extras = sorted(set(re.findall(r'extra\s*==\s*"([^"]+)"', str(req.marker or ""))))
        ref = f"pypi:{_purl_name(req.name)}"
        if ref in seen:  # the same package from several extras: one component
            comp = seen[ref]
            if not extras:
                comp["scope"] = "required"
            for extra in extras:
                comp["properties"].extend(_props(extra=extra))
            continue
        comp = {"type": "library", "bom-ref": ref, "name": req.name,
                "purl": f"pkg:pypi/{_purl_name(req.name)}",
                "scope": "optional" if extras else "required",
                "properties": _props(requirement=str(req.specifier) or "any",
                                     marker=req.marker)
                + [p for extra in extras for p in _props(extra=extra)]}
        seen[ref] = comp
        components.append(comp)
    return components


def module_facts(module) -> dict:
    """The build facts of a loaded ``_robocache_cuda`` module."""
    facts = dict(module.build_info())
    expected = {"cuda_runtime_version", "cuda_runtime_linkage", "nvcc_version", "host_compiler",
                "nanobind_version", "xla_ffi_jaxlib_version", "cuda_architectures"}
    missing = expected - set(facts)
    if missing:
        raise RuntimeError(f"{module.__file__}: build_info() lacks {sorted(missing)}")
    return facts


def facts_from_wheel(wheel: zipfile.ZipFile, so_name: str) -> dict:
    """Imports the wheel's compiled module (this interpreter must match its ABI tag)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(so_name).name
        path.write_bytes(wheel.read(so_name))
        loader = importlib.machinery.ExtensionFileLoader(MODULE, str(path))
        spec = importlib.util.spec_from_file_location(MODULE, path, loader=loader)
        try:
            module = importlib.util.module_from_spec(spec)
            loader.exec_module(module)
        except ImportError as err:
            raise SystemExit(f"sbom: cannot import {so_name} with Python "
                             f"{sys.version.split()[0]} ({err}); run scripts/sbom.py with "
                             f"the interpreter the wheel was built for") from err
        return module_facts(module)


def compiled_components(so_name: str, so_bytes: bytes, facts: dict, version: str) -> list[dict]:
    """The compiled module and what is linked or compiled into it."""
    archs = facts["cuda_architectures"]
    cudart = {"type": "library", "bom-ref": "compiled:cudart", "name": "cudart_static",
              "version": facts["cuda_runtime_version"], "supplier": {"name": "NVIDIA"},
              "description": "CUDA runtime, linked statically into the module",
              "purl": f"pkg:generic/nvidia/cudart_static@{facts['cuda_runtime_version']}",
              "properties": _props(linkage=facts["cuda_runtime_linkage"])}
    nanobind = {"type": "library", "bom-ref": "compiled:nanobind", "name": "nanobind",
                "version": facts["nanobind_version"],
                "description": "C++/Python binding library, compiled in (NB_STATIC)",
                "purl": f"pkg:pypi/nanobind@{facts['nanobind_version']}",
                "properties": _props(linkage="static")}
    ffi = {"type": "library", "bom-ref": "compiled:xla-ffi-headers",
           "name": "xla-ffi-api-headers", "version": facts["xla_ffi_jaxlib_version"],
           "description": "XLA FFI API headers (header-only) the handlers are compiled "
                          "against, from this jaxlib release",
           "purl": f"pkg:pypi/jaxlib@{facts['xla_ffi_jaxlib_version']}",
           "properties": _props(source="jaxlib/include/xla/ffi/api")}
    module = {"type": "library", "bom-ref": "compiled:module", "name": f"jax_robocache.{MODULE}",
              "version": version,
              "description": "CUDA kernels as XLA FFI handlers (nanobind extension module)",
              "hashes": _sha256(so_bytes),
              "properties": _props(file=so_name, cuda_architectures=archs,
                                   nvcc_version=facts["nvcc_version"],
                                   host_compiler=facts["host_compiler"],
                                   xla_ffi_jaxlib_version=facts["xla_ffi_jaxlib_version"])}
    return [module, cudart, nanobind, ffi]


def build_sbom(wheel_path: Path, facts: dict | None = None) -> dict:
    """The SBOM of ``wheel_path``. ``facts``: the compiled module's build facts (default:
    imported from the wheel; ignored for a wheel without the module)."""
    data = wheel_path.read_bytes()
    with zipfile.ZipFile(wheel_path) as wheel:
        metadata, tags = wheel_metadata(wheel)
        name, version = metadata["Name"], metadata["Version"]
        sos = [n for n in wheel.namelist()
               if re.fullmatch(rf"jax_robocache/{MODULE}\..*(so|pyd)", n)]
        if len(sos) > 1:
            raise SystemExit(f"sbom: several compiled modules in {wheel_path}: {sos}")
        compiled = []
        if sos:
            if facts is None:
                facts = facts_from_wheel(wheel, sos[0])
            compiled = compiled_components(sos[0], wheel.read(sos[0]), facts, version)
    root_ref = f"pkg:pypi/{_purl_name(name)}@{version}"
    license_text = metadata.get("License-Expression") or metadata.get("License")
    root = {"type": "library", "bom-ref": root_ref, "name": name, "version": version,
            "purl": root_ref, "hashes": _sha256(data),
            "description": metadata.get("Summary", ""),
            "properties": _props(wheel=wheel_path.name, requires_python=metadata.get(
                "Requires-Python"), variant="cuda" if compiled else "cpu (jax.numpy only)")
            + [p for t in tags for p in _props(tag=t)]}
    if license_text:
        root["licenses"] = [{"license": {"id": license_text}}
                            if re.fullmatch(r"[A-Za-z0-9.+-]+", license_text)
                            else {"expression": license_text}]
    deps = dependency_components(metadata)
    dependencies = [{"ref": root_ref, "dependsOn": [c["bom-ref"] for c in deps + compiled[:1]]}]
    if compiled:
        dependencies.append({"ref": "compiled:module",
                             "dependsOn": [c["bom-ref"] for c in compiled[1:]]})
        dependencies += [{"ref": c["bom-ref"], "dependsOn": []} for c in compiled[1:]]
    dependencies += [{"ref": c["bom-ref"], "dependsOn": []} for c in deps]
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return {
        "$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json",
        "bomFormat": "CycloneDX", "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid4()}", "version": 1,
        "metadata": {"timestamp": now.isoformat().replace("+00:00", "Z"),
                     "tools": {"components": [{"type": "application",
                                               "name": "jax_robocache scripts/sbom.py",
                                               "version": version}]},
                     "component": root},
        "components": deps + compiled,
        "dependencies": dependencies,
    }


def write_sbom(wheel_path: Path, facts: dict | None = None) -> Path:
    out = wheel_path.with_name(wheel_path.name + ".cdx.json")
    out.write_text(json.dumps(build_sbom(wheel_path, facts), indent=1) + "\n")
    return out


def validate(path: Path) -> None:
    """Validates against the official CycloneDX 1.5 JSON schema (cyclonedx-python-lib)."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(path.read_text())
    if error is not None:
        raise SystemExit(f"sbom: {path} is not valid CycloneDX {SPEC_VERSION}: {error}")
    print(f"{path}: valid CycloneDX {SPEC_VERSION}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", type=Path, help="wheels (or SBOMs with --validate)")
    p.add_argument("--validate", action="store_true",
                   help="validate SBOM files against the CycloneDX schema instead")
    args = p.parse_args(argv)
    for path in args.files:
        if args.validate:
            validate(path)
        else:
            print(f"wrote {write_sbom(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
