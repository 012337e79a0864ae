"""Independent float64 numpy reference of ``align``, written from its contract (docs/ops/align.md).

Plain loops per episode, stream and query. The shared methods call
``reference.resample_episode`` (itself independent of the library); offsets,
tolerances, windows, ages and the NaN policy are implemented here from the
documented rules. Where the contract fixes a rounding step in the time dtype
(the query shifted by the offset, the window's lower edge q - w), this
reference performs that step in the time dtype too; everything else is
float64.
"""

from __future__ import annotations

import numpy as np

from .resample import resample_episode, unresolved


def _shifted_queries(q, offset, time_dtype):
    """The stream is evaluated at q - offset, rounded once in the time dtype (contract)."""
    q = np.asarray(q, time_dtype)
    return (q - np.asarray(offset, time_dtype)).astype(np.float64) if offset else \
        q.astype(np.float64)


def align_stream_episode(v, t, q, n, *, method, offset=0.0, tolerance=None, window=None,
                         out_of_range="clamp", time_dtype=np.float32):
    """One stream of one episode: v [S, D], t [S], q [T] -> (out [T, D], valid [T], age [T])."""
    S, D = v.shape
    n = int(min(max(n, 0), S))
    qs = _shifted_queries(q, offset, time_dtype)
    tt = np.asarray(t, np.float64)[:n]
    vv = np.asarray(v, np.float64)
    base = "previous" if method == "window_mean" else method
    out, valid = resample_episode(v, t, qs, n, base, out_of_range)
    if unresolved(t, n):  # every query counts as NaN
        return out, valid, np.full(len(qs), np.nan)
    age = np.full(len(qs), np.inf)
    for j, qj in enumerate(qs):
        if np.isnan(qj):
            age[j] = np.nan
            continue
        before = np.flatnonzero(tt <= qj)
        latest = int(before[-1]) if before.size else None
        if latest is not None:
            age[j] = qj - tt[latest]
        if not valid[j]:
            continue
        if method == "window_mean":
            lower = float(np.asarray(qj, time_dtype) - np.asarray(window, time_dtype))
            members = np.flatnonzero((tt > lower) & (tt <= qj))
            if members.size:
                out[j] = vv[members].mean(axis=0)
            else:
                valid[j] = False  # empty window: previous's value stays
                continue
        if tolerance is None:
            continue
        if method in ("previous", "window_mean"):
            dist = qj - tt[latest]
        elif method == "nearest":
            dist = np.min(np.abs(tt - qj))
        else:  # linear / slerp: the bracketing gap, 0 exactly on a sample
            dist = 0.0 if (qj == tt[latest] or latest == n - 1) else tt[latest + 1] - tt[latest]
        valid[j] = dist <= tolerance
    if out_of_range == "nan":
        out[~valid] = np.nan
    return out, valid, age


def align(streams, query_times, out_of_range="clamp", time_dtype=np.float32):
    """Batched reference. ``streams``: name -> dict(values [B,S,D], times [B,S] or [S],
    lengths [B] or None, method, offset, tolerance, window); ``query_times`` [B,T] or [T].

    Returns name -> (values [B,T,D], valid [B,T], age [B,T]) in float64.
    """
    result = {}
    for name, s in streams.items():
        values = np.asarray(s["values"])
        B, S, _ = values.shape
        times = np.broadcast_to(np.asarray(s["times"]), (B, S))
        q = np.asarray(query_times)
        q = np.broadcast_to(q, (B, q.shape[-1]))
        lengths = s.get("lengths")
        lengths = np.broadcast_to(S if lengths is None else np.asarray(lengths), (B,))
        if B == 0:  # no episodes: empty outputs
            T, D = q.shape[-1], values.shape[2]
            result[name] = (np.zeros((0, T, D)), np.zeros((0, T), bool), np.zeros((0, T)))
            continue
        per = [align_stream_episode(values[b], times[b], q[b], lengths[b],
                                    method=s.get("method", "linear"),
                                    offset=s.get("offset", 0.0),
                                    tolerance=s.get("tolerance"), window=s.get("window"),
                                    out_of_range=out_of_range, time_dtype=time_dtype)
               for b in range(B)]
        result[name] = tuple(np.stack(x) for x in zip(*per))
    return result
