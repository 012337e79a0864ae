"""The documentation stays reachable and consistent with the code.

* ``help(op)`` of every public op names each of its arguments and its contract page
  (``docs/ops/<op>.md``) and does not send the reader to a module docstring that the
  function shadows.
* Each contract page exists and names every argument of its function; each op module's
  docstring points to its page.
* Every relative link in README.md and docs/ resolves to a file or folder of the tree.
"""

from __future__ import annotations

import importlib
import inspect
import pydoc
import re
from pathlib import Path

import pytest

import jax_robocache

ROOT = Path(__file__).resolve().parents[1]

# public function -> (its module, its contract page)
OPS = {
    "resample": ("jax_robocache.streams.resample", "docs/ops/resample.md"),
    "align": ("jax_robocache.streams.align", "docs/ops/align.md"),
    "fuse_multimodal": ("jax_robocache.streams.align", "docs/ops/align.md"),
    "voxelize": ("jax_robocache.voxels.voxelize", "docs/ops/voxelize.md"),
    "points_to_voxels": ("jax_robocache.voxels.points_to_voxels", "docs/ops/points_to_voxels.md"),
    "sample_windows": ("jax_robocache.episodes.windows", "docs/ops/sample_windows.md"),
}


def _help_text(obj) -> str:
    return pydoc.render_doc(obj, renderer=pydoc.plaintext)


@pytest.mark.parametrize("name", sorted(OPS))
def test_help_names_every_argument_and_the_page(name):
    fn = getattr(jax_robocache, name)
    text = _help_text(fn)
    _, page = OPS[name]
    assert page in text, f"help(jax_robocache.{name}) does not point to {page}"
    doc = inspect.getdoc(fn) or ""
    for param in inspect.signature(fn).parameters:
        assert re.search(rf"\b{param}\b", doc), (
            f"help(jax_robocache.{name}) never mentions its argument {param!r}")
    assert "module docstring" not in doc, (
        f"help(jax_robocache.{name}) sends the reader to a module docstring, which the "
        "function shadows at the top level")


@pytest.mark.parametrize("name", ["resample", "align", "voxelize", "points_to_voxels"])
def test_help_states_the_key_semantics(name):
    """The essentials a user needs without the page: outputs and the main options."""
    doc = inspect.getdoc(getattr(jax_robocache, name))
    essentials = {
        "resample": ("linear", "nearest", "previous", "slerp", "clamp", "nan", "extrapolate",
                     "valid", "relative_timestamps"),
        "align": ("window_mean", "offset", "tolerance", "age", "AlignResult", "concatenated"),
        "voxelize": ("count", "occupancy", "sum", "mean", "max", "floor", "[min, max)"),
        "points_to_voxels": ("VoxelBatch", "coords", "num_points", "num_voxels",
                             "point_to_voxel", "dropped"),
    }[name]
    for word in essentials:
        assert word in doc, f"help(jax_robocache.{name}) does not mention {word!r}"


@pytest.mark.parametrize("name", sorted(OPS))
def test_page_exists_and_names_every_argument(name):
    module, page = OPS[name]
    text = (ROOT / page).read_text()
    for param in inspect.signature(getattr(jax_robocache, name)).parameters:
        assert re.search(rf"\b{param}\b", text), (
            f"{page} never names the argument {param!r} of {name}")
    assert page in (importlib.import_module(module).__doc__ or ""), (
        f"the docstring of {module} does not point to {page}")


def test_stream_points_to_the_align_page():
    assert "docs/ops/align.md" in _help_text(jax_robocache.Stream)


_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def _markdown_files():
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    broken = []
    for target in _LINK.findall(path.read_text()):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        if not (path.parent / target).exists():
            broken.append(target)
    assert not broken, f"{path.relative_to(ROOT)} links to missing files: {broken}"
