"""Golden cases: fixed inputs whose expected outputs live in tests/golden/*.npz.

The inputs are small cases of the ops' catalogues
(``jax_robocache/<family>/<op>_cases.py``) drawn with fixed seeds; the
expected outputs come from the independent numpy references
(tests/references/), generated once by ``python tests/golden_cases.py``.
A behaviour change then shows up as a golden-test failure and must be made
deliberately: regenerate, review the diff, commit the new npz.

Each npz holds the inputs (flat arrays, by name) and the expected outputs:
``expected`` for an op returning one array, ``expected.<leaf>`` for pytree
outputs (``<stream>.values`` / ``.valid`` / ``.age`` and ``concatenated`` for
``align``, the ``VoxelBatch`` field names for ``points_to_voxels``). Only
missing or changed files are rewritten (npz archives carry timestamps). The
committed resample files come from an older version of the episode
generator (same values and valid timestamps, other garbage past the lengths
and other query times): regenerating rewrites those nine files with new
inputs and their expected outputs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

GOLDEN_DIR = Path(__file__).parent / "golden"


class GoldenCase(NamedTuple):
    run: Callable[[dict], Any]  # inputs -> the op's output (array or pytree)
    inputs: dict[str, np.ndarray]
    reference: Callable[[dict], dict[str, np.ndarray]]  # inputs -> expected outputs by leaf name
    tol: float = 1e-5  # relative, and absolute relative to the largest |expected|


def expected_key(leaf: str) -> str:
    return f"expected.{leaf}" if leaf else "expected"


def named_outputs(out) -> dict[str, Any]:
    """An op's output by leaf name (the names of the npz's ``expected.<leaf>`` entries)."""
    from jax_robocache import AlignResult
    if isinstance(out, AlignResult):
        named = {}
        for name in out.names:
            values, valid, age = out[name]
            named.update({f"{name}.values": values, f"{name}.valid": valid, f"{name}.age": age})
        if out.concat is not None:
            named["concatenated"] = out.concatenated()
        return named
    if isinstance(out, dict):  # sample_windows: window name -> WindowResult
        return {f"{name}.{field}": leaf for name, w in out.items()
                for field, leaf in zip(w._fields, w)}
    if hasattr(out, "_fields"):  # NamedTuple (VoxelBatch)
        return {field: getattr(out, field) for field in out._fields}
    if isinstance(out, (tuple, list)):  # e.g. resample(..., return_valid=True)
        return {str(k): leaf for k, leaf in enumerate(out)}
    return {"": out}


def resample_cases():
    from references import resample as reference
    from jax_robocache.streams.resample_cases import CASES
    cases = {}
    for name, case in CASES.items():
        if name.split("_")[0] not in ("linear", "nearest", "previous", "slerp"):
            continue
        method, policy = name.split("_")
        call = case.make(np.random.default_rng([7, len(method), len(policy)]))  # fixed forever
        cases[f"resample_{name}"] = GoldenCase(
            lambda i, call=call: call.fn(**i), call.arrays,
            lambda i, m=method, p=policy: {"": reference.resample(
                i["values"], i["times"], i["query_times"], i["lengths"], m, p)[0]})
    return cases


def _align_case(name, seed):
    from references import align as reference_align
    from jax_robocache.streams.align_cases import CASES
    call = CASES[name].make(np.random.default_rng(seed))  # fixed forever
    metas, concatenate = call.options["streams"], call.options["concatenate"]

    def ref(i):
        out = reference_align.align(
            {n: dict(values=i[f"{n}.values"], times=i[f"{n}.times"],
                     lengths=i[f"{n}.lengths"], **meta) for n, meta in metas.items()},
            i["query_times"], call.options["out_of_range"])
        named = {f"{n}.{leaf}": out[n][k] for n in out
                 for k, leaf in enumerate(("values", "valid", "age"))}
        if concatenate:
            named["concatenated"] = np.concatenate([out[n][0] for n in sorted(out)], axis=-1)
        return named

    return GoldenCase(lambda i: call.fn(**i), call.arrays, ref)


def align_cases():
    seeds = {"methods_clamp": 11, "methods_nan": 12, "extrapolate_offset": 13,
             "shared_clock_concatenated": 14}
    return {f"align_{name}": _align_case(name, seed) for name, seed in seeds.items()}


def voxelize_cases():
    from references import voxelize as reference_voxel
    from jax_robocache.voxels.voxelize_cases import CASES, MODES, RANGE, VOXEL
    cases = {}
    for k, mode in enumerate(MODES):
        call = CASES[mode].make(np.random.default_rng([21, k]))  # fixed forever
        cases[f"voxelize_{mode}"] = GoldenCase(
            lambda i, call=call: call.fn(**i), call.arrays,
            lambda i, m=mode: {"": reference_voxel.voxelize(
                i["points"], i["features"] if m in ("sum", "mean", "max") else None,
                i["lengths"], VOXEL, RANGE, m)})
    return cases


def points_to_voxels_cases():
    from references import points_to_voxels as reference_p2v
    from jax_robocache.voxels.points_to_voxels_cases import CASES, RANGE
    cases = {}
    # roomy, overflowing voxels and points, pillars
    for k, name in enumerate(("uniform", "overflow", "pillars_xyz")):
        call = CASES[name].make(np.random.default_rng([31, k]),  # fixed forever
                                lengths=np.array([80, 49], np.int32))
        o = call.options
        cases[f"points_to_voxels_{name}"] = GoldenCase(
            lambda i, call=call: call.fn(**i), call.arrays,
            lambda i, o=o: reference_p2v.points_to_voxels(
                i["points"], i.get("features"), i["lengths"], o["voxel_size"], RANGE,
                o["max_voxels"], o["max_points_per_voxel"]), tol=0.0)
    return cases


def sample_windows_cases():
    from references import sample_windows as reference
    from jax_robocache.episodes.sample_windows_cases import CASES
    cases = {}
    for k, oor in enumerate(("clamp", "nan", "zero")):
        call = CASES[f"every_method_{oor}"].make(np.random.default_rng([51, k]))  # fixed forever
        spec = call.options["spec"]

        def ref(i, spec=spec):
            episodes = {}
            for name in {w.stream or n for n, w in spec.items()}:
                bounds = i[f"{name}.offsets"]
                split = (lambda x: [x[a:b] for a, b in zip(bounds[:-1], bounds[1:])])
                valid = i.get(f"{name}.valid")
                episodes[name] = dict(values=split(i[f"{name}.values"]),
                                      times=split(i[f"{name}.times"]),
                                      valid=None if valid is None else split(valid))
            out = reference.sample_windows(episodes, i["episode"], i["anchor"],
                                           reference.spec_dicts(spec))
            return {f"{n}.{leaf}": out[n][j] for n in out
                    for j, leaf in enumerate(("values", "valid", "age"))}

        cases[f"sample_windows_every_method_{oor}"] = GoldenCase(
            lambda i, call=call: call.fn(**i), call.arrays, ref, )
    return cases


def _edge_queries(times, offsets):
    """float32 queries on dyadic sample times: every sample time, each plus every offset (the
    tolerance / window edges, exact in binary), one float32 ulp either side of each sample
    (but no subnormal: XLA flushes those to zero), and NaN queries."""
    t = np.unique(np.asarray(times, np.float32))
    on = np.concatenate([t] + [t + np.float32(d) for d in offsets]
                        + [np.nextafter(t, np.float32(np.inf)),
                           np.nextafter(t, np.float32(-np.inf))]).astype(np.float32)
    on = on[(on == 0) | (np.abs(on) >= np.finfo(np.float32).tiny)]  # XLA flushes subnormals
    return np.concatenate([np.unique(on), np.float32([np.nan, np.nan])])


#: Dyadic sample times with a duplicate and gaps of 0.125, 0.25 and 0.5: every edge is exact.
EDGE_TIMES = np.float32([0.0, 0.125, 0.25, 0.25, 0.5, 1.0, 1.125])


def edge_cases():
    """Queries exactly on samples, tolerance and window edges, one ulp off them, and NaN."""
    from references import resample as reference
    from references import align as reference_align
    from jax_robocache import Stream, align, resample
    rng = np.random.default_rng(41)  # fixed forever
    S = EDGE_TIMES.size
    q = _edge_queries(EDGE_TIMES, (0.125, -0.125, 0.25, 0.0625))
    shared = dict(times=np.stack([EDGE_TIMES, EDGE_TIMES]),
                  lengths=np.array([S, S - 2], np.int32))
    cases = {}
    for method, policy in (("linear", "extrapolate"), ("nearest", "clamp"),
                           ("previous", "nan"), ("slerp", "clamp")):
        D = 4 if method == "slerp" else 2
        values = rng.normal(size=(2, S, D))
        if method == "slerp":
            values /= np.linalg.norm(values, axis=-1, keepdims=True)
        inputs = dict(values=values.astype(np.float32), query_times=np.stack([q, q[::-1]]),
                      **shared)
        cases[f"resample_{method}_{policy}_edges"] = GoldenCase(
            lambda i, m=method, p=policy: resample(
                i["values"], i["times"], i["query_times"], lengths=i["lengths"], method=m,
                out_of_range=p, return_valid=True),
            inputs,
            lambda i, m=method, p=policy: dict(zip(("0", "1"), reference.resample(
                i["values"], i["times"], i["query_times"], i["lengths"], m, p))))
    # align: tolerance 0.125 (== the smallest gap and a query offset), window 0.25 (== a gap)
    streams = {"linear": dict(method="linear", tolerance=0.125),
               "nearest": dict(method="nearest", tolerance=0.0625),
               "previous": dict(method="previous", tolerance=0.125),
               "window": dict(method="window_mean", window=0.25, tolerance=0.125)}
    for policy in ("clamp", "nan"):
        inputs = dict(query_times=np.stack([q, q[::-1]]), **shared)
        inputs.update({f"{n}.values": rng.normal(size=(2, S, 2)).astype(np.float32)
                       for n in streams})

        def run(i, p=policy):
            return align({n: Stream(i[f"{n}.values"], i["times"], i["lengths"], **meta)
                          for n, meta in streams.items()}, i["query_times"], out_of_range=p)

        def ref(i, p=policy):
            out = reference_align.align(
                {n: dict(values=i[f"{n}.values"], times=i["times"], lengths=i["lengths"],
                         **meta) for n, meta in streams.items()}, i["query_times"], p)
            return {f"{n}.{leaf}": out[n][k] for n in out
                    for k, leaf in enumerate(("values", "valid", "age"))}

        cases[f"align_tolerance_window_edges_{policy}"] = GoldenCase(run, inputs, ref)
    return cases


def all_cases() -> dict[str, GoldenCase]:
    return {**resample_cases(), **align_cases(), **voxelize_cases(), **points_to_voxels_cases(),
            **sample_windows_cases(), **edge_cases()}


def _same(path: Path, arrays: dict) -> bool:
    if not path.exists():
        return False
    with np.load(path) as old:
        return set(old.files) == set(arrays) and all(
            old[k].dtype == np.asarray(v).dtype and np.array_equal(old[k], v, equal_nan=True)
            for k, v in arrays.items())


def regenerate():
    GOLDEN_DIR.mkdir(exist_ok=True)
    for name, case in all_cases().items():
        arrays = dict(case.inputs)
        arrays.update({expected_key(leaf): np.asarray(v)
                       for leaf, v in case.reference(case.inputs).items()})
        path = GOLDEN_DIR / f"{name}.npz"
        if _same(path, arrays):
            print("unchanged", name)
            continue
        np.savez_compressed(path, **arrays)
        print("wrote", name, f"({path.stat().st_size} bytes)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.path.append(str(Path(__file__).parents[1]))  # the checkout, unless installed
    regenerate()
