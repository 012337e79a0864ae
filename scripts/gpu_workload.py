"""Runs every op once per shape on the default device: the workload of sanitize.sh and soak.py.

``workloads()`` yields (name, jitted function, arguments) for a spread of shapes
including edge sizes (empty batches, clouds and streams, S = 1, T = 0,
all-out-of-range points, overflowing voxels, NaN/inf inputs, garbage past
``lengths``) and every method / mode / policy of every op; new ops add their
generator to ``GENERATORS``. Each entry is one compiled shape; the total stays
moderate (about 130) so that a full sanitizer pass stays feasible.

For compute-sanitizer runs: ``--small`` keeps the entries with at most 256 KiB
of operands (short runs; the edge cases stay), and ``--lengths`` chooses how
the ``lengths`` operand of resample, voxelize and points_to_voxels reaches the
kernel (the initcheck diagnosis of sanitize.sh; several variants separated by
commas run one after another between ``@@ lengths=<variant>`` marker lines):

* ``arg`` (default): a numpy argument of the jitted function; the op clamps it
  (an XLA fusion writes the buffer the kernel reads).
* ``device``: the same, as a ``jax.device_put`` array.
* ``raw``: a device array, pre-clamped on the host, handed to the kernel
  without the clamp (the kernel reads the buffer the host->device copy wrote).
* ``none``: ``lengths=None``: the op passes ``jnp.full((1,), N)``, which XLA
  embeds as a one-element module constant (initialised by the module loader).
* ``const``: the numpy array captured by the jitted function: a B-element
  XLA constant.

``--match`` keeps the entries whose name contains one of the given strings.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from jax_robocache.episodes import sample_windows_cases
from jax_robocache.streams import align_cases, resample_cases
from jax_robocache.voxels import points_to_voxels_cases, voxelize_cases


def _entry(name, call):
    """(name, jitted function, arguments) of a catalogue call: the batched arrays are the
    arguments (``lengths`` last where the op takes it), shared ones are captured."""
    fn, args = call.positional()
    return name, jax.jit(fn), args


def resample_workloads(rng):
    shapes = [(1, 1, 1, 1), (3, 17, 5, 9), (16, 500, 32, 50), (4, 2000, 256, 300),
              (2, 9000, 3, 64), (5, 40, 4, 0)]
    for B, S, D, T in shapes:
        for dtype in (np.float32, jnp.bfloat16):
            for method in ("linear", "nearest", "previous") + (("slerp",) if D == 4 else ()):
                for policy in ("clamp", "nan") + (("extrapolate",) if method == "linear" else ()):
                    call = resample_cases.CASES[f"{method}_{policy}"].make(
                        rng, B=B, S=S, D=D, T=T, value_dtype=dtype, return_valid=True)
                    yield _entry(f"resample/{method}/{policy}/{B}x{S}x{D}->{T}/"
                                 f"{np.dtype(dtype).name}", call)


#: One stream per align method (window_mean windowed, some with tolerances and offsets).
ALL_METHODS = (dict(method="linear", offset=0.003), dict(method="nearest", tolerance=0.01),
               dict(method="previous", offset=-0.002, tolerance=0.02),
               dict(method="slerp", tolerance=0.05),
               dict(method="window_mean", window=0.03, tolerance=0.02))


def _align_entry(rng, B, sizes, T, *, metas=ALL_METHODS, dtypes=None, out_of_range="clamp",
                 concatenate=False, shared_clock=False):
    """One align call over streams of (S, D) ``sizes`` with ``metas``; (name, fn, args)."""
    streams = {f"s{k:02d}": (S, 4 if meta["method"] == "slerp" else D, dict(meta))
               for k, ((S, D), meta) in enumerate(zip(sizes, metas))}
    call = align_cases.CASES["methods_clamp"].make(
        rng, B=B, T=T, streams=streams, out_of_range=out_of_range, concatenate=concatenate,
        shared_clock=shared_clock, dtypes=dict(zip(streams, dtypes or ())))
    methods = "+".join(sorted({m["method"] for m in metas}))
    S = "/".join(str(s) for s, _ in sizes)
    return _entry(f"align/{methods}/{out_of_range}{'/concat' if concatenate else ''}/B{B}/S{S}"
                  f"/T{T}", call)


def align_workloads(rng):
    bf16 = jnp.bfloat16
    yield _align_entry(rng, 1, [(1, 1)] * 5, 1)  # S = 1 in every method
    yield _align_entry(rng, 3, [(17, 5), (9, 1), (33, 3), (5, 4), (60, 2)], 9, out_of_range="nan")
    yield _align_entry(rng, 16, [(500, 32), (50, 8), (200, 6), (30, 4), (1000, 6)], 50,
                       dtypes=[bf16, np.float32, np.float16, np.float32, np.float32],
                       concatenate=True)
    yield _align_entry(rng, 4, [(0, 3), (1, 2), (0, 4), (7, 4), (0, 2)], 7,  # empty streams
                       out_of_range="nan", shared_clock=True)
    yield _align_entry(rng, 5, [(20, 3)] * 5, 0)  # T = 0
    yield _align_entry(rng, 0, [(20, 3)] * 5, 6)  # no episodes
    yield _align_entry(rng, 4, [(int(s), 3) for s in rng.integers(1, 300, 16)], 64,  # 16 streams
                       metas=[ALL_METHODS[k % 5] for k in range(16)], out_of_range="nan")
    yield _align_entry(rng, 8, [(2000, 64), (3, 2)], 300, metas=[dict(method="linear")] * 2,
                       out_of_range="extrapolate", shared_clock=True)
    # fuse_multimodal: vision 30 Hz, proprio 500 Hz, force 1 kHz (per 1 s), per-episode clock
    call = align_cases.CASES["fuse_multimodal"].make(rng, B=32, T=50, scale=1)
    yield _entry("align/fuse_multimodal/B32/T50", call)


VOXEL_MODES = voxelize_cases.MODES


def voxelize_workloads(rng):
    small = dict(voxel_size=(0.25, 0.5, 0.2), point_range=(-1.0, -2.0, 0.0, 1.0, 2.0, 1.0))
    lidar = dict(voxel_size=(0.4, 0.4, 0.5), point_range=(-40.0, -40.0, -3.0, 40.0, 40.0, 1.0))
    cases = [  # (label, B, N, C, grid kwargs, modes, outside, feature dtype)
        ("empty-clouds", 2, 0, 3, small, VOXEL_MODES, False, np.float32),
        ("tiny", 2, 64, 2, small, ("count", "max"), False, np.float32),  # few threads: short logs
        ("small", 3, 1000, 4, small, VOXEL_MODES, False, np.float32),
        ("lidar", 2, 60000, 2, lidar, ("count", "mean", "max"), False, np.float32),
        ("all-out-of-range", 2, 500, 2, small, ("count", "mean"), True, np.float32),
        ("bf16-features", 4, 3000, 3, small, ("sum", "max"), False, jnp.bfloat16),
        ("no-clouds", 0, 100, 2, small, ("count", "sum"), False, np.float32),
    ]
    for label, B, N, C, grid, modes, outside, dtype in cases:
        for mode in modes:
            call = voxelize_cases.CASES[mode].make(rng, B=B, N=N, C=C, outside=outside,
                                                   dtype=dtype, nan_features=0.005, **grid)
            yield _entry(f"voxelize/{mode}/{label}/B{B}xN{N}xC{C}", call)


def points_to_voxels_workloads(rng):
    grid = dict(voxel_size=(0.3, 0.5, 0.4), point_range=(-1.0, -2.0, -0.5, 1.4, 2.0, 0.7))
    pillars = dict(voxel_size=(0.16, 0.16, 4.0), point_range=(0.0, -40.0, -3.0, 70.4, 40.0, 1.0))
    cases = [  # (label, B, N, C, grid kwargs, M, P, outside, feature dtype)
        ("empty-clouds", 2, 0, 1, grid, 10, 4, False, np.float32),
        ("tiny", 2, 64, 1, grid, 16, 4, False, np.float32),
        ("small", 3, 2000, 2, grid, 500, 8, False, np.float32),
        ("overflowing", 2, 5000, 1, grid, 20, 4, False, np.float32),  # rows and slots run out
        ("all-out-of-range", 2, 300, 1, grid, 16, 4, True, np.float32),
        ("pillars", 2, 60000, 1, pillars, 12000, 32, False, np.float32),
        ("one-slot", 2, 700, 3, grid, 1, 1, False, jnp.float16),
        ("xyz-only", 3, 800, 0, grid, 64, 5, False, jnp.bfloat16),
        ("no-clouds", 0, 100, 1, grid, 8, 2, False, np.float32),
    ]
    for label, B, N, C, g, M, P, outside, dtype in cases:
        call = points_to_voxels_cases.CASES["clouds"].make(
            rng, B=B, N=N, C=C, max_voxels=M, max_points_per_voxel=P, outside=outside,
            dtype=dtype, nan_features=0.005, **g)
        yield _entry(f"points_to_voxels/{label}/B{B}xN{N}xC{C}/M{M}xP{P}", call)


def sample_windows_workloads(rng):
    """Every method and out-of-range policy on ragged stores with empty and one-sample
    episodes, masks, NaN anchors and out-of-range episode ids; the training batch at two
    sizes (bfloat16 embeddings, a 1 kHz window mean); an empty batch."""
    for oor in ("clamp", "nan", "zero"):
        for B, E in ((1, 3), (64, 5), (700, 12)):
            call = sample_windows_cases.CASES[f"every_method_{oor}"].make(rng, B=B, E=E)
            yield _entry(f"sample_windows/every_method_{oor}/B{B}xE{E}", call)
    for B, E, seconds in ((0, 3, 1.0), (256, 8, 2.0), (4096, 20, 10.0)):
        call = sample_windows_cases.CASES["training_batch"].make(rng, B=B, E=E, seconds=seconds)
        yield _entry(f"sample_windows/training_batch/B{B}xE{E}", call)


GENERATORS = {"resample": resample_workloads, "align": align_workloads,
              "voxelize": voxelize_workloads, "points_to_voxels": points_to_voxels_workloads,
              "sample_windows": sample_windows_workloads}
#: Ops whose workload entries take ``lengths`` as their last operand (--lengths variants).
LENGTHS_LAST = ("resample", "voxelize", "points_to_voxels")
LENGTHS_MODULES = {"resample": "streams.resample", "voxelize": "voxels.voxelize",
                   "points_to_voxels": "voxels.points_to_voxels"}
LENGTHS_VARIANTS = ("arg", "device", "raw", "none", "const")
SMALL_BYTES = 256 << 10


def workloads(rng, ops=None, small=False, match=None):
    """(name, jitted function, arguments) for every op (or those named in ``ops``); ``small``:
    only entries with at most SMALL_BYTES of operands; ``match``: only names containing one
    of these strings."""
    for op, generate in GENERATORS.items():
        if ops is None or op in ops:
            for name, fn, operands in generate(rng):
                if small and sum(np.asarray(x).nbytes for x in operands) > SMALL_BYTES:
                    continue
                if match is None or any(m in name for m in match):
                    yield name, fn, operands


@contextlib.contextmanager
def unclamped_lengths():
    """The ops hand ``lengths`` to the kernel as given (int32, already in [0, N]), without
    the clamp of ``_core.contract.valid_lengths`` (--lengths raw only)."""
    modules = [importlib.import_module(f"jax_robocache.{LENGTHS_MODULES[op]}")
               for op in LENGTHS_LAST]

    def as_given(lengths, n, name="lengths"):
        return jnp.full((), n, jnp.int32) if lengths is None else jnp.asarray(lengths)

    saved = [m.valid_lengths for m in modules]
    for m in modules:
        m.valid_lengths = as_given
    try:
        yield
    finally:
        for m, f in zip(modules, saved):
            m.valid_lengths = f


def with_lengths(name, fn, operands, variant):
    """The entry with its ``lengths`` (last operand) passed as ``variant`` (see the docstring)."""
    if variant == "arg" or name.split("/")[0] not in LENGTHS_LAST:
        return name, fn, operands
    *rest, n = operands
    inner = fn.__wrapped__
    if variant == "device":
        return name, fn, (*rest, jax.device_put(n))
    if variant == "raw":
        n = np.clip(n, 0, rest[0].shape[-2]).astype(np.int32)  # S or N, as the op would clamp
        return name, jax.jit(inner), (*rest, jax.device_put(n))
    fixed = None if variant == "none" else n
    return name, jax.jit(lambda *a: inner(*a, fixed)), tuple(rest)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--ops", nargs="+", choices=sorted(GENERATORS), help="default: all")
    parser.add_argument("--small", action="store_true",
                        help=f"only entries with at most {SMALL_BYTES >> 10} KiB of operands")
    parser.add_argument("--match", nargs="+", help="only entries whose name contains one of these")
    parser.add_argument("--lengths", default="arg",
                        help="how lengths reach the kernels: comma-separated variants of "
                             f"{','.join(LENGTHS_VARIANTS)} (default arg)")
    parser.add_argument("--list", action="store_true", help="print the workload names only")
    args = parser.parse_args()
    variants = args.lengths.split(",")
    unknown = set(variants) - set(LENGTHS_VARIANTS)
    if unknown:
        parser.error(f"unknown --lengths variants {sorted(unknown)}")
    count = 0
    for variant in variants:
        if len(variants) > 1:
            print(f"@@ lengths={variant} begin", flush=True)
        rng = np.random.default_rng(0)
        patch = unclamped_lengths() if variant == "raw" else contextlib.nullcontext()
        with patch:
            for entry in workloads(rng, args.ops, args.small, args.match):
                name, fn, operands = with_lengths(*entry, variant)
                if args.list:
                    print(name)
                    continue
                for _ in range(args.repeats):
                    jax.device_get(fn(*operands))  # to the host: initcheck checks the copy too
                    count += 1
        if len(variants) > 1:
            sys.stdout.flush()
            time.sleep(1.0)  # let a sanitizer print this variant's reports before the marker
            print(f"@@ lengths={variant} end", flush=True)
    if not args.list:
        print(f"ran {count} op calls on {jax.devices()[0].device_kind}")


if __name__ == "__main__":
    main()
