"""Argument checking shared by the ops: enumerations and trace-time errors.

Every check runs on shapes and dtypes only, so errors surface at trace time
(under ``jit`` too) and name the offending argument.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ..jax_compat import x64_enabled
from .codes import METHODS, OUT_OF_RANGE  # noqa: F401  (re-exported for the ops)

VALUE_DTYPES = (jnp.float32, jnp.bfloat16, jnp.float16, jnp.float64)
TIME_DTYPES = (jnp.float32, jnp.float64)


def check_choice(name: str, value, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def dtype_name(dtype) -> str:
    return jnp.dtype(dtype).name


def check_dtype(name: str, x, allowed: Sequence, hint: str = "") -> None:
    if jnp.dtype(x.dtype) not in [jnp.dtype(d) for d in allowed]:
        names = ", ".join(dtype_name(d) for d in allowed
                          if jnp.dtype(d) != jnp.float64 or x64_enabled())
        raise TypeError(f"{name} must have dtype in ({names}), got {dtype_name(x.dtype)} "
                        f"with shape {tuple(x.shape)}{hint}")


def check_min_rank(name: str, x, rank: int, layout: str, hint: str = "") -> None:
    if x.ndim < rank:
        raise ValueError(f"{name} must have shape {layout} (rank >= {rank}), got shape "
                         f"{tuple(x.shape)}{hint}")


def feature_axis_hint(name: str, x) -> str:
    """The advice for a ``[..., S]`` signal given where ``[..., S, D]`` is expected."""
    return (f"; for a scalar signal add a trailing feature axis: {name}[..., None] (shape "
            f"{tuple(x.shape) + (1,)})")


def check_same_host_dtype(pairs) -> None:
    """Host (numpy) timestamp arrays of different float dtypes: an error that says which.

    ``pairs`` is a sequence of (argument name, value). Called before the host
    conversion of float64/int64 timestamps, which otherwise reports a numpy
    float32 array as "not a host array".
    """
    host = [(n, np.asarray(x)) for n, x in pairs
            if isinstance(x, (np.ndarray, list, tuple))]
    dtypes = {a.dtype for _, a in host}
    if len(host) < len(pairs) or len(dtypes) < 2:
        return
    desc = ", ".join(f"{n} {a.dtype.name}" for n, a in host)
    raise TypeError(
        f"the timestamp arrays have different dtypes ({desc}); give them one dtype. numpy "
        "makes float64 by default (np.linspace, np.arange): for seconds that are already "
        "small (relative to the episode start) cast the float64 ones with .astype(np.float32); "
        "for epoch timestamps keep every array float64 (or int64 nanoseconds), and they are "
        "converted together to episode-relative seconds on the host.")


def check_sample_axis(values_name: str, values, times_name: str, times) -> None:
    """``times [..., S]`` must end in the sample axis S of ``values [..., S, D]``.

    When ``times`` ends in the *last* axis of ``values`` instead, ``values``
    most likely lacks its feature axis (a scalar signal given as ``[..., S]``):
    the error says so and how to add it.
    """
    S = values.shape[-2]
    if times.shape[-1] == S:
        return
    if values.shape[-1] == times.shape[-1]:
        raise ValueError(
            f"{values_name} {tuple(values.shape)} must have a trailing feature axis "
            f"[..., S, D]: its last axis matches the sample axis of {times_name} "
            f"{tuple(times.shape)}, so it looks like a scalar signal without one. Pass "
            f"{values_name}[..., None] (shape {tuple(values.shape) + (1,)}) for one feature.")
    raise ValueError(f"{times_name} {tuple(times.shape)} must end in S={S}, the sample axis of "
                     f"{values_name} {tuple(values.shape)} ([..., S, D])")


def broadcast_leading(named_shapes: dict[str, tuple]) -> tuple:
    """Broadcasts the leading (batch) shapes of several arguments, naming them on failure."""
    try:
        return np.broadcast_shapes(*named_shapes.values())
    except ValueError:
        desc = ", ".join(f"{k} {v}" for k, v in named_shapes.items())
        raise ValueError(f"leading (batch) dimensions do not match: {desc}") from None


def to_canonical(x, lead: tuple, lead_rank_of_x: int, full: bool = False):
    """Reshapes ``x`` [*lead_x, *rest] to [B or 1, *rest] for broadcast-compatible lead_x.

    An operand that carries the full leading shape becomes [B, ...]; one whose
    leading shape has a single element is shared ([1, ...]) unless ``full``;
    anything else is broadcast (copied) to the full leading shape.
    """
    lead_x = tuple(x.shape[:lead_rank_of_x])
    rest = tuple(x.shape[lead_rank_of_x:])
    if lead_x == tuple(lead):
        return x.reshape((math.prod(lead),) + rest)
    if math.prod(lead_x) == 1 and not full:
        return x.reshape((1,) + rest)
    x = jnp.broadcast_to(x.reshape(lead_x + rest), tuple(lead) + rest)
    return x.reshape((math.prod(lead),) + rest)


def as_jax(x):
    """``jnp.asarray(x)``, skipped for what already is a jax array (an eager call's cost)."""
    return x if isinstance(x, jax.Array) else jnp.asarray(x)


def check_lengths(lengths, name: str = "lengths"):
    """A ``lengths`` argument as an array (numpy for Python sequences, jax arrays as they
    are) after its dtype check: a non-integer dtype raises TypeError naming the argument."""
    if lengths is None or isinstance(lengths, (jax.Array, np.ndarray)):
        arr = lengths
    else:
        arr = np.asarray(lengths)
    if arr is not None and not jnp.issubdtype(arr.dtype, jnp.integer):
        raise TypeError(f"{name} must be an integer array, got {arr.dtype.name} "
                        f"{tuple(arr.shape)}")
    return arr


def valid_lengths(lengths, n: int, name: str = "lengths"):
    """Checks a ``lengths`` argument and returns it as int32 clamped into [0, n].

    ``None`` means all ``n`` valid (an int32 scalar). Integer arrays of any
    width are clamped before the cast to int32, so huge int64 values cannot
    wrap around; a non-integer dtype raises TypeError naming the argument.
    """
    if lengths is None:
        return jnp.full((), n, jnp.int32)
    lengths = jnp.asarray(check_lengths(lengths, name))
    top = min(n, int(jnp.iinfo(lengths.dtype).max))
    return jnp.clip(lengths, 0, top).astype(jnp.int32)
