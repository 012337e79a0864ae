"""Opt-in value checks (``validate=True``) under ``jit``: a clear error without ``checkify``.

``jax.experimental.checkify.check`` works eagerly and inside
``checkify.checkify``; staged out (``jit``, ``scan``) without the wrapper it
fails to lower with JAX's generic "Cannot abstractly evaluate a checkify.check
which was not functionalized". ``requires_checkify`` marks a value that feeds
the op with an identity primitive: ``checkify`` drops it (a rule in its
interpreter), and lowering it anywhere else raises an error that names the op
and the option and shows the wrapping. The marker is bound before the checks,
so its lowering (program order) runs first.
"""

from __future__ import annotations

from ..jax_compat import (CHECKIFY_RULE_TAKES_CTX, Primitive, ad, batching, checkify_error_checks,
                          mlir)

__all__ = ["requires_checkify"]

_marker_p = Primitive("robocache_requires_checkify")
_marker_p.def_impl(lambda x, **params: x)
_marker_p.def_abstract_eval(lambda x, **params: x)
batching.primitive_batchers[_marker_p] = lambda args, dims, **params: (
    _marker_p.bind(*args, **params), dims[0])
ad.primitive_jvps[_marker_p] = lambda primals, tangents, **params: (
    _marker_p.bind(*primals, **params), tangents[0])


def _unfunctionalized(ctx, x, *, op: str, option: str):
    raise ValueError(
        f"{op}({option}) under jax.jit (or scan, shard_map, ...) checks values inside the "
        "compiled program, which needs the function wrapped in "
        "jax.experimental.checkify.checkify:\n"
        "    from jax.experimental import checkify\n"
        f"    err, out = checkify.checkify(jax.jit(f))(*args)   # f calls {op}(..., {option})\n"
        "    err.throw()   # raises if a check failed\n"
        f"(eager calls check without it). Or drop {option} inside jit.")


mlir.register_lowering(_marker_p, _unfunctionalized)
if checkify_error_checks is not None:
    if CHECKIFY_RULE_TAKES_CTX:
        checkify_error_checks[_marker_p] = lambda ctx, error, enabled, x, **params: (error, x)
    else:
        checkify_error_checks[_marker_p] = lambda error, enabled, x, **params: (error, x)


def requires_checkify(x, *, op: str, option: str = "validate=True"):
    """``x`` unchanged; lowering it outside ``checkify`` raises a ValueError naming ``op``.

    Apply it to an operand of the op (so it is not dead code) before binding
    the checks. Eagerly it is the identity (the checks raise by themselves).
    """
    return _marker_p.bind(x, op=op, option=option)
