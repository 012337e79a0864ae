"""Independent float64 numpy references for the ops' documented semantics.

Written from the contracts (docs/ops/<op>.md) with plain loops, not
from the jnp twins: a disagreement means one of the two is wrong.
"""

from __future__ import annotations

import numpy as np


def _slerp(q0, q1, w):
    d = float(np.dot(q0, q1))
    if d < 0:
        q1, d = -q1, -d
    if d >= 1.0 - 1e-12:
        r = q0 + w * (q1 - q0)
    else:
        th = np.arccos(min(d, 1.0))
        r = (np.sin((1 - w) * th) * q0 + np.sin(w * th) * q1) / np.sin(th)
    return r / np.linalg.norm(r)


def unresolved(t, n):
    """The contract's resolution rule, in the dtype of ``t`` [S] (float32 unless given float64):
    n >= 2 valid samples and 4 eps max(|t_0|, |t_{n-1}|) (n - 1) > max(|t_{n-1} - t_0|,
    (n - 1) 1e-6)."""
    t = np.asarray(t)
    n = int(min(max(n, 0), t.shape[-1]))
    if n < 2 or not np.issubdtype(t.dtype, np.floating):
        return False
    f = t.dtype.type
    t0, tl = t[0], t[n - 1]
    bound = (max(abs(t0), abs(tl)) * f(4 * np.finfo(t.dtype).eps)) * f(n - 1)
    return bool(bound > max(abs(f(tl - t0)), f(n - 1) * f(1e-6)))


def resample_episode(v, t, q, n, method, out_of_range):
    """One episode: v [S, D], t [S], q [T], n valid samples -> (out [T, D], valid [T]).

    Times the dtype cannot resolve (``unresolved``): every query counts as NaN.
    """
    S, D = v.shape
    if unresolved(t, n):
        return np.full((len(q), D), np.nan), np.zeros(len(q), bool)
    n = int(min(max(n, 0), S))
    v = v.astype(np.float64)
    t = t.astype(np.float64)[:n]
    out = np.zeros((len(q), D))
    valid = np.zeros(len(q), bool)
    norm = (lambda r: r / np.linalg.norm(r)) if method == "slerp" else (lambda r: r)
    for j, qj in enumerate(q.astype(np.float64)):
        if np.isnan(qj):
            out[j] = np.nan
            continue
        if n == 0:
            out[j] = np.nan if out_of_range == "nan" else 0.0
            continue
        if qj < t[0] or qj > t[-1]:
            below = qj < t[0]
            if out_of_range == "nan":
                out[j] = np.nan
            elif out_of_range == "extrapolate":
                a = 0 if below else n - 2
                if n > 1 and t[a + 1] > t[a]:
                    w = (qj - t[a]) / (t[a + 1] - t[a])
                    out[j] = v[a] + w * (v[a + 1] - v[a])
                else:
                    out[j] = v[0] if below else v[n - 1]
            elif below:
                out[j] = norm(v[0])
            elif method == "nearest":
                out[j] = v[int(np.flatnonzero(t == t[-1])[0])]
            else:
                out[j] = norm(v[n - 1])
            continue
        valid[j] = True
        i = int(np.searchsorted(t, qj, side="right")) - 1
        if method == "previous":
            out[j] = v[i]
        elif method == "nearest":
            out[j] = v[int(np.argmin(np.abs(t - qj)))]  # argmin: first (lowest) on ties
        elif qj == t[i] or i == n - 1:
            out[j] = norm(v[i])
        else:
            w = (qj - t[i]) / (t[i + 1] - t[i])
            if method == "slerp":
                out[j] = _slerp(v[i], v[i + 1], w)
            else:
                out[j] = v[i] + w * (v[i + 1] - v[i])
    return out, valid


def resample(values, times, query_times, lengths=None, method="linear", out_of_range="clamp"):
    """Batched reference: values [B, S, D], times [B, S], query_times [B, T] or [T], lengths [B]."""
    values = np.asarray(values)
    B, S, _ = values.shape
    times = np.broadcast_to(np.asarray(times), (B, S))
    query_times = np.asarray(query_times)
    query_times = np.broadcast_to(query_times, (B, query_times.shape[-1]))
    lengths = np.broadcast_to(S if lengths is None else np.asarray(lengths), (B,))
    T = query_times.shape[-1]
    if B == 0:
        return np.zeros((0, T, values.shape[2])), np.zeros((0, T), bool)
    outs, valids = zip(*(resample_episode(values[b], times[b], query_times[b], lengths[b],
                                          method, out_of_range) for b in range(B)))
    return np.stack(outs), np.stack(valids)
