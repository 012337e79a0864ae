"""README.md's code runs: every ```python block of README.md and docs/ executes on CPU, and the
README's test command is the one CI runs.

Convention for python blocks in README.md and docs/**/*.md: each block runs on its own, in a fresh
namespace, in the order written. A block that cannot run everywhere says so on its FIRST line:

    # needs: gpu                       a CUDA GPU with the compiled kernels
    # needs: zarr, jax_robocache.episodes   importable modules (an optional extra, a new API)

Such a block runs wherever its needs are met and is skipped (with the reason) elsewhere; a block
without the line must run on a CPU-only install with the ``test`` extra. In docs/ (never in
README.md) a fragment that needs the reader's own data or names defined elsewhere says

    # illustration

on its first line: it is compiled (its syntax stays valid) but not run. Blocks in other
languages (```bash) are not executed; the test command is checked against ``.ci/run``.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from conftest import gpu_available

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

_FENCE = re.compile(r"^```(\w*)[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
_NEEDS = re.compile(r"#\s*needs:\s*(.+)")
_ILLUSTRATION = re.compile(r"#\s*illustration\b")


def is_illustration(code: str) -> bool:
    first = code.lstrip().splitlines()[0] if code.strip() else ""
    return bool(_ILLUSTRATION.match(first.strip()))


def code_blocks(path: Path, language: str) -> list[tuple[int, str]]:
    """``(line number, code)`` of every fenced block of ``language`` in ``path``."""
    text = path.read_text()
    return [(text.count("\n", 0, m.start()) + 1, m.group(2))
            for m in _FENCE.finditer(text) if m.group(1) == language]


def unmet_needs(code: str) -> list[str]:
    """The needs named on the block's first line that this machine does not meet."""
    first = code.lstrip().splitlines()[0] if code.strip() else ""
    match = _NEEDS.match(first.strip())
    if not match:
        return []
    unmet = []
    for need in (n.strip() for n in match.group(1).split(",")):
        if not need:
            continue
        if need == "gpu":
            if not gpu_available():
                unmet.append("gpu")
            continue
        try:
            found = importlib.util.find_spec(need) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            unmet.append(need)
    return unmet


PYTHON_BLOCKS = code_blocks(README, "python")
DOC_BLOCKS = [(path.relative_to(ROOT).as_posix(), line, code)
              for path in sorted((ROOT / "docs").rglob("*.md"))
              for line, code in code_blocks(path, "python")]


def test_readme_has_python_blocks():
    assert len(PYTHON_BLOCKS) >= 3, "README.md lost its quick start"


@pytest.mark.parametrize("line,code", PYTHON_BLOCKS, ids=[f"line{n}" for n, _ in PYTHON_BLOCKS])
def test_readme_python_block_runs(line, code, monkeypatch):
    assert not is_illustration(code), f"README.md:{line}: every README block must run"
    unmet = unmet_needs(code)
    if unmet:
        pytest.skip(f"README.md:{line} needs {', '.join(unmet)}")
    monkeypatch.chdir(ROOT)  # README's paths are the checkout's, as a reader runs them
    namespace = {"__name__": f"readme_line{line}"}
    exec(compile(code, f"README.md:{line}", "exec"), namespace)  # noqa: S102


@pytest.mark.parametrize("page,line,code", DOC_BLOCKS,
                         ids=[f"{p}:{n}" for p, n, _ in DOC_BLOCKS])
def test_docs_python_block_runs(page, line, code):
    if is_illustration(code):
        compile(code, f"{page}:{line}", "exec")  # a fragment: its syntax only
        return
    unmet = unmet_needs(code)
    if unmet:
        pytest.skip(f"{page}:{line} needs {', '.join(unmet)}")
    namespace = {"__name__": f"doc_block_{line}"}
    exec(compile(code, f"{page}:{line}", "exec"), namespace)  # noqa: S102


def test_quick_start_shows_every_op_and_the_epoch_rule():
    """The quick start calls all four ops and converts epoch stamps (issue 15)."""
    code = "\n".join(c for _, c in PYTHON_BLOCKS)
    for name in ("resample(", "align(", "voxelize(", "points_to_voxels(", "relative_timestamps("):
        assert name in code, f"README.md's python blocks never call {name[:-1]}"


def test_readme_test_command_is_what_ci_runs():
    """The Test section's command is a line of .ci/run, verbatim."""
    text = README.read_text()
    section = text[text.index("## Test"):]
    blocks = code_blocks_in(section, "bash")
    assert blocks, "README.md's Test section has no command"
    command = blocks[0].strip()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines, f"README's test command {command!r} is not run by .ci/run"


def code_blocks_in(text: str, language: str) -> list[str]:
    return [m.group(2) for m in _FENCE.finditer(text) if m.group(1) == language]


def test_needs_convention():
    """The marker parser itself: unknown modules are unmet, present ones are met."""
    assert unmet_needs("# needs: numpy\nx = 1") == []
    assert unmet_needs("# needs: numpy, no_such_module_xyz\n") == ["no_such_module_xyz"]
    assert unmet_needs("# needs: no_such_pkg_xyz.sub\n") == ["no_such_pkg_xyz.sub"]
    assert unmet_needs("import numpy\n# needs: no_such_module_xyz\n") == []
    assert is_illustration("# illustration: needs your dataset\nx = y")
    assert not is_illustration("x = 1\n# illustration\n")
