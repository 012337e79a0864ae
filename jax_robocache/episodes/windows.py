"""``Window`` and ``sample_windows``: training windows cut from an ``EpisodeStore`` inside ``jit``.

Contract (docs/ops/sample_windows.md has the full table):

* ``sample_windows(store, episode, anchor, spec)``: ``episode [...]`` integer,
  ``anchor [...]`` float seconds relative to the episode's origin (the two
  broadcast against each other; write B for their broadcast size), ``spec`` a
  mapping name -> ``Window``. The window named ``name`` reads the store's
  stream ``Window.stream`` (default: ``name``). The result maps each name to a
  ``WindowResult``: ``values [..., K, D]`` (the stream's dtype), ``valid
  [..., K]`` bool (``is_pad = ~valid``) and ``age [..., K]`` float32, with K
  the number of deltas of that window.
* **Time windows** (``seconds=deltas``): entry k is the stream of that episode
  evaluated at ``q_k = anchor + deltas[k]`` (one rounding in the time dtype)
  exactly as ``align`` evaluates a ``Stream(method, offset, tolerance,
  window)`` at query ``q_k``: the stream is read at ``q_k - offset``; values,
  ``valid`` and ``age`` follow align's rules (linear / nearest / previous /
  slerp / window_mean, ``tolerance``, ``out_of_range`` ``"clamp"`` / ``"nan"``
  / ``"extrapolate"`` (linear only)) on the episode's samples, plus
  ``out_of_range="zero"``: align's ``"clamp"`` with every invalid entry set to 0.
* **Index windows** (``steps=deltas``, integers): ``anchor_index`` is the
  latest sample of the stream in that episode with ``t <= anchor - offset``
  (-1 when there is none); entry k is sample ``anchor_index + steps[k]``,
  ``valid`` when that index lies in the episode (LeRobot's ``delta_indices``
  and Octo's chunking), else the index is clamped into the episode (``"clamp"``,
  LeRobot's padding values), or the entry is NaN (``"nan"``) or 0 (``"zero"``).
  ``age [k] = (anchor - offset) - t[index]`` (the clamped index; negative for
  future samples).
* ``valid`` per-sample masks of the store (``RaggedStream.valid``): an entry
  that reads a masked sample is invalid (its value is computed as without the
  mask, then NaN / 0 under ``"nan"`` / ``"zero"``); linear and slerp read the
  two bracketing samples (one when the query is on a sample), window_mean every
  sample of the window. ``age`` ignores the mask.
* An ``episode`` outside ``[0, E)``, an empty episode, or a NaN anchor gives
  invalid entries only (values 0, NaN under ``"nan"``; NaN under ``"clamp"``
  for a NaN anchor, as align gives for a NaN query; age +inf, NaN for a NaN
  anchor). No input makes an out-of-bounds read.
* One primitive for every window of the call: on GPUs one CUDA kernel launch
  (csrc/episodes/sample_windows_kernels.cu) for all windows, its jnp twin
  ``windows_twin.py`` elsewhere, and on GPUs too in a program partitioned over
  several devices (the batch partitioner would copy the shared store once
  per row) or for more than ``MAX_WINDOW_ENTRIES`` deltas in one call.
  ``jit``, ``vmap`` over ``episode`` / ``anchor`` (vmapping over the store
  copies it per batch element), ``grad`` with respect to the store's values
  (every method), its times and the anchor (linear / slerp and ``age``), from
  the twin's JVP; batch sharding of ``episode`` / ``anchor`` with the store
  replicated runs without collectives.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._core import codes
from .._core.contract import METHODS
from .._core.partitioning import partitioned
from .._core.primitive import FfiOp
from ..jax_compat import ShapedArray
from ..streams.align_twin import WINDOW_MEAN
from .store import EpisodeStore
from .windows_twin import INDEX, TIME, WindowParams, sample_windows_twin

__all__ = ["MAX_WINDOW_ENTRIES", "MAX_WINDOWS", "Window", "WindowResult", "sample_windows"]

#: Window methods and their codes (align's).
WINDOW_METHODS = {**METHODS, "window_mean": WINDOW_MEAN}
#: out_of_range policies and their codes: align's three plus "zero".
WINDOW_OUT_OF_RANGE = codes.WINDOW_OUT_OF_RANGE
#: Most windows one call takes (the kernel's descriptor table, as align's).
MAX_WINDOWS = codes.MAX_WINDOWS
#: Most deltas (summed over the windows) one kernel launch takes; beyond, the twin runs.
MAX_WINDOW_ENTRIES = codes.MAX_WINDOW_ENTRIES
#: Steps beyond this magnitude could overflow int32 index arithmetic.
MAX_STEP = 1 << 30


@dataclasses.dataclass(frozen=True)
class Window:
    """One window of ``sample_windows``: which samples to take around each anchor.

    Exactly one of:
      seconds: time deltas (seconds) from the anchor, any order, e.g.
        ``(-0.04, -0.02, 0.0)`` or ``np.arange(50) / 50``.
      steps: integer sample steps from the anchor's sample, e.g. ``(-1, 0)`` or
        ``range(50)`` (LeRobot ``delta_indices``).

    Attributes:
      method: time windows: ``"linear"`` (default), ``"nearest"``,
        ``"previous"``, ``"slerp"`` (quaternions xyzw, D = 4) or
        ``"window_mean"`` (needs ``window``). Index windows read samples as
        they are: None (default; ``"linear"``, ``"previous"`` and ``"nearest"``
        are accepted and mean the same there).
      offset: seconds added to the stream's sample times (sensor latency): the
        stream is read at ``anchor + delta - offset``.
      tolerance: seconds (time windows): an entry is invalid when the samples
        used are farther than this from the query (align's rule).
      out_of_range: ``"clamp"`` (default), ``"nan"``, ``"zero"``, or
        ``"extrapolate"`` (time windows, linear only).
      window: seconds, the averaging width of ``"window_mean"``.
      stream: the store stream to read (default: the window's name in the spec),
        so one stream can feed several windows.
    """

    seconds: tuple | None = None
    steps: tuple | None = None
    method: str | None = None
    offset: float = 0.0
    tolerance: float | None = None
    out_of_range: str = "clamp"
    window: float | None = None
    stream: str | None = None

    def __post_init__(self):
        if (self.seconds is None) == (self.steps is None):
            raise ValueError("Window needs exactly one of seconds=(time deltas) or "
                             f"steps=(sample steps); got seconds={self.seconds!r}, "
                             f"steps={self.steps!r}")
        if self.seconds is not None:
            deltas = _float_tuple("Window.seconds", self.seconds)
            object.__setattr__(self, "seconds", deltas)
        else:
            deltas = _int_tuple("Window.steps", self.steps)
            object.__setattr__(self, "steps", deltas)
        if not deltas:
            raise ValueError("Window needs at least one delta (seconds or steps), got none")
        if self.out_of_range not in WINDOW_OUT_OF_RANGE:
            raise ValueError(f"Window.out_of_range must be one of {sorted(WINDOW_OUT_OF_RANGE)}, "
                             f"got {self.out_of_range!r}")
        offset = _finite("Window.offset", self.offset)
        object.__setattr__(self, "offset", offset)
        if self.tolerance is not None:
            tol = float(self.tolerance)
            if not tol >= 0:
                raise ValueError(f"Window.tolerance must be >= 0 (or None), got {self.tolerance}")
            object.__setattr__(self, "tolerance", tol)
        if self.window is not None:
            object.__setattr__(self, "window", _finite("Window.window", self.window))
        if self.stream is not None and not isinstance(self.stream, str):
            raise TypeError(f"Window.stream must be a stream name (str), got {self.stream!r}")
        if self.steps is not None:
            self._check_index()
        else:
            self._check_time()

    def _check_index(self):
        if self.method not in (None, "linear", "previous", "nearest"):
            raise ValueError(f"index windows (steps=...) read samples as they are; method must "
                             f"be None (or 'linear' / 'previous' / 'nearest', which read the "
                             f"same samples), got {self.method!r}. Use seconds=... for "
                             "slerp / window_mean windows")
        for label, x in (("tolerance", self.tolerance), ("window", self.window)):
            if x is not None:
                raise ValueError(f"Window.{label} applies to time windows (seconds=...), not to "
                                 f"index windows (steps=...); got {label}={x}")
        if self.out_of_range == "extrapolate":
            raise ValueError("out_of_range='extrapolate' applies to linear time windows only; "
                             "index windows take 'clamp', 'nan' or 'zero'")

    def _check_time(self):
        method = self.method or "linear"
        if method not in WINDOW_METHODS:
            raise ValueError(f"Window.method must be one of {sorted(WINDOW_METHODS)}, got "
                             f"{self.method!r}")
        object.__setattr__(self, "method", method)
        if method == "window_mean":
            if self.window is None or not self.window > 0:
                raise ValueError(f"method='window_mean' needs window=seconds > 0, got "
                                 f"window={self.window!r}")
        elif self.window is not None:
            raise ValueError(f"Window.window is only used by method='window_mean', got "
                             f"method={method!r}")
        if self.out_of_range == "extrapolate" and method != "linear":
            raise ValueError(f"out_of_range='extrapolate' needs method='linear', got "
                             f"method={method!r}")

    @property
    def size(self) -> int:
        """K, the number of entries of the window."""
        return len(self.seconds if self.seconds is not None else self.steps)

    @property
    def is_time(self) -> bool:
        return self.seconds is not None


def _float_tuple(label, x) -> tuple:
    if isinstance(x, jax.core.Tracer):
        raise TypeError(f"{label} must be static (a tuple or numpy array), got a traced array")
    arr = np.asarray(x, np.float64).reshape(-1) if not np.isscalar(x) else np.asarray([x], float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{label} must be finite, got {arr}")
    return tuple(float(v) for v in arr)


def _int_tuple(label, x) -> tuple:
    if isinstance(x, jax.core.Tracer):
        raise TypeError(f"{label} must be static (a tuple, range or numpy array), got a traced "
                        "array")
    arr = np.asarray(list(x) if isinstance(x, range) else x).reshape(-1)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise TypeError(f"{label} must hold integers, got {arr}")
    arr = arr.astype(np.int64)
    if arr.size and np.abs(arr).max() > MAX_STEP:
        raise ValueError(f"{label} must lie in [-2**30, 2**30], got {arr.min()}..{arr.max()}")
    return tuple(int(v) for v in arr)


def _finite(label, x) -> float:
    if isinstance(x, jax.core.Tracer):
        raise TypeError(f"{label} must be a static Python float, got a traced array")
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{label} must be finite, got {x}")
    return x


class WindowResult(NamedTuple):
    """One window of ``sample_windows``."""
    values: jax.Array  # [..., K, D], the stream's dtype
    valid: jax.Array  # [..., K] bool; is_pad = ~valid
    age: jax.Array  # [..., K] float32 seconds (see the module docstring)


# -- the primitive -------------------------------------------------------------
def _abstract_eval(episode, anchor, *operands, windows):
    B = episode.shape[0]
    avals = []
    for k, p in enumerate(windows):
        values = operands[4 * k]
        avals += [ShapedArray((B, p.size, values.shape[2]), values.dtype),
                  ShapedArray((B, p.size), jnp.bool_), ShapedArray((B, p.size), jnp.float32)]
    return tuple(avals)


def _ffi_attrs(windows):
    """The kernel's attributes: one entry per window, and every window's deltas."""
    inf = float("inf")
    return dict(
        kinds=np.asarray([p.kind for p in windows], np.int32),
        methods=np.asarray([p.method for p in windows], np.int32),
        out_of_range=np.asarray([p.out_of_range for p in windows], np.int32),
        masked=np.asarray([int(p.masked) for p in windows], np.int32),
        max_lengths=np.asarray([-1 if p.max_length is None else p.max_length
                                for p in windows], np.int64),
        sizes=np.asarray([p.size for p in windows], np.int64),
        time_offsets=np.asarray([p.offset for p in windows], np.float64),
        tolerances=np.asarray([inf if p.tolerance is None else p.tolerance for p in windows],
                              np.float64),
        windows=np.asarray([p.window for p in windows], np.float64),
        deltas=np.asarray([d for p in windows for d in p.deltas], np.float64))


#: ``JAX_ROBOCACHE_SAMPLE_WINDOWS_KERNEL=0`` runs the jnp twin (XLA) on GPUs instead of
#: the sample_windows kernel (``JAX_ROBOCACHE_FORCE_JNP=1`` does it for every op).
KERNEL_ENV = "JAX_ROBOCACHE_SAMPLE_WINDOWS_KERNEL"


def _jnp_when(ctx, windows):
    """Why a call runs the twin on GPU although the kernel is there (None: the kernel)."""
    if os.environ.get(KERNEL_ENV, "1").strip().lower() in ("0", "false", "no"):
        return f"{KERNEL_ENV}=0 asks for the jnp twin"
    entries = sum(p.size for p in windows)
    if entries > MAX_WINDOW_ENTRIES:
        return (f"{entries} deltas in one call, more than the kernel's {MAX_WINDOW_ENTRIES}; "
                "split the spec over several calls")
    if partitioned(ctx):
        return ("a program partitioned over several devices: the batch partitioner would "
                "broadcast the shared store to every row; the twin keeps it replicated")
    return None


_op = FfiOp("sample_windows", twin=sample_windows_twin, abstract_eval=_abstract_eval,
            ffi_target="robocache_sample_windows", ffi_attrs=_ffi_attrs, jnp_when=_jnp_when,
            # episode and anchor are per row: under vmap a shared [1] one is broadcast
            full_batch_operands=lambda n, **params: (0, 1))


def backend(platform: str | None = None) -> str:
    """What ``sample_windows`` lowers to on ``platform``: ``"cuda-ffi"`` or ``"jnp"``."""
    return _op.backend(platform)


# -- the public function ---------------------------------------------------------
def check_spec(store: EpisodeStore, spec) -> tuple[str, ...]:
    """Checks a spec against a store; returns the window names, sorted."""
    if not isinstance(spec, Mapping):
        raise TypeError(f"spec must be a mapping name -> Window, got {type(spec).__name__}")
    if not spec:
        raise ValueError("spec must name at least one Window, got an empty mapping")
    if len(spec) > MAX_WINDOWS:
        raise ValueError(f"sample_windows takes at most {MAX_WINDOWS} windows per call, got "
                         f"{len(spec)}; split them over several calls")
    for name, w in spec.items():
        if not isinstance(name, str):
            raise TypeError(f"spec keys must be strings, got {name!r}")
        if not isinstance(w, Window):
            raise TypeError(f"spec[{name!r}] must be a jax_robocache.Window, got "
                            f"{type(w).__name__}")
        stream = w.stream or name
        if stream not in store.streams:
            raise KeyError(f"spec[{name!r}] reads stream {stream!r}, which the store does not "
                           f"hold; streams: {sorted(store.streams)}")
        if w.method == "slerp" and store.streams[stream].values.shape[-1] != 4:
            raise ValueError(f"spec[{name!r}] has method='slerp', which needs quaternion values "
                             f"[N, 4] (x, y, z, w); stream {stream!r} has "
                             f"{tuple(store.streams[stream].values.shape)}")
    return tuple(sorted(spec))


def _search_bound(max_length: int | None) -> int | None:
    """``2**d - 1 >= max_length``: the episode length the searches are sized for (d steps).
    Rounding up keeps one compiled program for stores of similar episode lengths."""
    return None if max_length is None else (1 << int(max_length).bit_length()) - 1


def _params(w: Window, stream) -> WindowParams:
    masked = stream.valid is not None
    bound = _search_bound(stream.max_length)
    if w.is_time:
        return WindowParams(TIME, w.seconds, WINDOW_METHODS[w.method], w.offset,
                            w.tolerance, w.window or 0.0, WINDOW_OUT_OF_RANGE[w.out_of_range],
                            masked, bound)
    return WindowParams(INDEX, w.steps, -1, w.offset, None, 0.0,
                        WINDOW_OUT_OF_RANGE[w.out_of_range], masked, bound)


def _queries(store: EpisodeStore, episode, anchor):
    E = store.num_episodes
    if isinstance(episode, (np.ndarray, np.integer, list, tuple, int)):
        host = np.asarray(episode)
        if np.issubdtype(host.dtype, np.integer):  # clamp before JAX narrows int64 to int32
            episode = np.where((host >= 0) & (host < E), host, -1).astype(np.int32)
    episode, anchor = jnp.asarray(episode), jnp.asarray(anchor)
    if not jnp.issubdtype(episode.dtype, jnp.integer):
        raise TypeError(f"episode must be an integer array (episode numbers), got "
                        f"{episode.dtype.name} with shape {tuple(episode.shape)}")
    tdtype = store.time_dtype
    if not jnp.issubdtype(anchor.dtype, jnp.floating):
        raise TypeError(f"anchor must be float seconds relative to the episode's origin, got "
                        f"{anchor.dtype.name} with shape {tuple(anchor.shape)}")
    if jnp.finfo(anchor.dtype).bits > jnp.finfo(tdtype).bits:
        raise TypeError(f"anchor has dtype {anchor.dtype.name}, wider than the store's times "
                        f"({jnp.dtype(tdtype).name}); cast it (or build the store under x64)")
    try:
        lead = np.broadcast_shapes(episode.shape, anchor.shape)
    except ValueError:
        raise ValueError(f"episode {tuple(episode.shape)} and anchor {tuple(anchor.shape)} must "
                         "broadcast against each other") from None
    # Out-of-range episode numbers of a wider type become -1 before the int32 cast (no
    # wrap). int32 ones pass as they are (no XLA op before the kernel): the kernel and the
    # twin read an episode outside [0, E) as absent.
    if episode.dtype != jnp.int32:
        E = store.num_episodes
        episode = jnp.where((episode >= 0) & (episode < E), episode, -1).astype(jnp.int32)
    episode = jnp.broadcast_to(episode, lead).reshape(-1)
    anchor = jnp.broadcast_to(anchor.astype(tdtype), lead).reshape(-1)
    return episode, anchor, tuple(lead)


def sample_windows(store: EpisodeStore, episode, anchor,
                   spec: Mapping[str, Window]) -> dict[str, WindowResult]:
    """Cuts the windows of ``spec`` around each (episode, anchor) pair, inside ``jit``.

    ``sample_windows(store, episode, anchor, {"action": Window(steps=range(50)), ...})``.
    Full contract: docs/ops/sample_windows.md.

    Args:
      store: an ``EpisodeStore`` (a pytree: pass it through ``jit``).
      episode: ``[...]`` integer episode numbers (outside ``[0, E)``: all invalid).
      anchor: ``[...]`` float seconds since the episode's origin (NaN: all invalid),
        in the store's time dtype or narrower; broadcasts against ``episode``.
      spec: mapping name -> ``Window`` (at most ``MAX_WINDOWS``).

    Returns:
      dict name -> ``WindowResult(values [..., K, D], valid [..., K], age [..., K])``,
      sorted by name; K = the window's number of deltas; ``is_pad = ~valid``.

    A time window (``Window(seconds=...)``) evaluates the stream at
    ``anchor + delta - offset`` exactly as ``align`` does (``method``, ``tolerance``,
    ``window``, ``out_of_range`` clamp / nan / extrapolate, plus ``"zero"``: 0 where
    invalid). An index window (``Window(steps=...)``) reads sample
    ``anchor_index + step``, ``anchor_index`` the stream's latest sample at or before
    ``anchor - offset`` (LeRobot's ``delta_indices``), valid inside the episode. A
    stream's ``valid`` mask invalidates entries that read a masked sample. Works under
    ``jit``, ``vmap`` over ``episode`` / ``anchor``, ``grad`` w.r.t. the store's values,
    and batch sharding with the store replicated.
    """
    if not isinstance(store, EpisodeStore):
        raise TypeError(f"store must be a jax_robocache.EpisodeStore, got {type(store).__name__}")
    names = check_spec(store, spec)
    episode, anchor, lead = _queries(store, episode, anchor)
    operands, params = [], []
    for name in names:
        w = spec[name]
        s = store.streams[w.stream or name]
        mask = s.valid if s.valid is not None else jnp.zeros((0,), jnp.bool_)
        operands += [s.values[None], s.times[None], s.offsets[None], mask[None]]
        params.append(_params(w, s))
    outs = _op.bind(episode, anchor, *operands, windows=tuple(params))
    result = {}
    for k, name in enumerate(names):
        values, valid, age = outs[3 * k:3 * k + 3]
        K, D = values.shape[1:]
        result[name] = WindowResult(values.reshape(lead + (K, D)), valid.reshape(lead + (K,)),
                                    age.reshape(lead + (K,)))
    return result
