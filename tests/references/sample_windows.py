"""Independent float64 numpy reference of ``sample_windows``, written from its contract.

Plain loops per (row, window, entry), on per-episode numpy arrays (never the
flat device layout). Time windows call ``reference_align.align_stream_episode``
(the independent align reference) on the episode's samples; index windows
write out LeRobot's ``delta_indices`` rule (``query_indices`` /
``_is_pad`` of ``LeRobotDataset._get_query_indices``) and, separately, Octo's
``chunk_act_obs`` rule (history clamped at 0 with a pad mask, future clamped
at the last step). Masks, ``"zero"`` and the episode / NaN-anchor rules come
from the contract (docs/ops/sample_windows.md).
"""

from __future__ import annotations

import numpy as np

from references.align import align_stream_episode


def _time_window(v, t, mask, anchor, w, time_dtype):
    """One row of a time window on one episode (v [n, D], t [n]) -> out, valid, age."""
    n = len(t)
    deltas = np.asarray(w["seconds"], np.float64)
    # q = anchor + delta, one rounding in the time dtype (align then subtracts the offset).
    q = (np.asarray(anchor, time_dtype) + deltas.astype(time_dtype)).astype(time_dtype)
    oor = "clamp" if w["out_of_range"] == "zero" else w["out_of_range"]
    out, valid, age = align_stream_episode(
        v, t, q, n, method=w["method"], offset=w.get("offset", 0.0),
        tolerance=w.get("tolerance"), window=w.get("window"), out_of_range=oor,
        time_dtype=time_dtype)
    if mask is not None and n:
        off = w.get("offset", 0.0)
        tt = np.asarray(t, np.float64)
        for k in range(len(q)):
            if not valid[k]:
                continue
            qk = float(np.asarray(q[k], time_dtype) - np.asarray(off, time_dtype)) if off \
                else float(q[k])
            used = _samples_used(tt, qk, w, time_dtype)
            if not mask[used].all():
                valid[k] = False
    if w["out_of_range"] == "nan":
        out[~valid] = np.nan
    elif w["out_of_range"] == "zero":
        out[~valid] = 0.0
    return out, valid, age


def _samples_used(tt, q, w, time_dtype):
    """The sample indices a valid time-window entry reads (contract: masks)."""
    method = w["method"]
    latest = int(np.flatnonzero(tt <= q)[-1])
    if method == "previous":
        return np.array([latest])
    if method == "nearest":
        return np.array([int(np.argmin(np.abs(tt - q)))])
    if method == "window_mean":
        lower = float(np.asarray(q, time_dtype) - np.asarray(w["window"], time_dtype))
        return np.flatnonzero((tt > lower) & (tt <= q))
    if q == tt[latest] or latest == len(tt) - 1:  # linear / slerp on a sample
        return np.array([latest])
    return np.array([latest, latest + 1])


def lerobot_query_indices(idx, ep_start, ep_end, delta_indices):
    """LeRobot's rule: global indices clamped into the episode, and the padding mask."""
    query = [max(ep_start, min(ep_end - 1, idx + d)) for d in delta_indices]
    is_pad = [(idx + d < ep_start) | (idx + d >= ep_end) for d in delta_indices]
    return np.asarray(query), np.asarray(is_pad)


def octo_chunk(traj_len, history, future):
    """Octo's chunk_act_obs rule for every step of one trajectory.

    history: observation window size (indices t - history + 1 .. t, clamped at
    0, pad mask where negative); future: action steps t .. t + future (clamped
    at traj_len - 1, pad mask where past the end). Returns (obs_idx [L, H],
    obs_pad [L, H], act_idx [L, F + 1], act_pad [L, F + 1]).
    """
    steps = np.arange(traj_len)[:, None]
    hist = steps + np.arange(-history + 1, 1)[None]
    obs_pad = hist < 0
    act = steps + np.arange(future + 1)[None]
    act_pad = act > traj_len - 1
    return np.maximum(hist, 0), obs_pad, np.minimum(act, traj_len - 1), act_pad


def _index_window(v, t, mask, anchor, w, time_dtype):
    n, D = v.shape
    steps = list(w["steps"])
    K = len(steps)
    policy = w["out_of_range"]
    off = w.get("offset", 0.0)
    qa = np.asarray(anchor, time_dtype)
    if off:
        qa = np.asarray(qa - np.asarray(off, time_dtype), time_dtype)
    qa = float(qa)
    if np.isnan(qa):
        out = np.full((K, D), 0.0 if policy == "zero" else np.nan)
        return out, np.zeros(K, bool), np.full(K, np.nan)
    if n == 0:
        return (np.full((K, D), np.nan if policy == "nan" else 0.0), np.zeros(K, bool),
                np.full(K, np.inf))
    tt = np.asarray(t, np.float64)
    anchor_index = int(np.sum(tt <= qa)) - 1  # latest sample at or before the anchor
    # LeRobot's rule in episode coordinates (ep_start = 0, ep_end = n).
    query, is_pad = lerobot_query_indices(anchor_index, 0, n, steps)
    out = np.asarray(v, np.float64)[query].copy()
    valid = ~is_pad
    if mask is not None:
        valid &= np.asarray(mask)[query]
    age = qa - tt[query]
    if policy == "nan":
        out[~valid] = np.nan
    elif policy == "zero":
        out[~valid] = 0.0
    return out, valid, age


def sample_windows(episodes, episode, anchor, spec, time_dtype=np.float32):
    """``episodes``: name -> dict(values=[list of [n_e, D]], times=[list of [n_e]],
    valid=[list of [n_e] bool] or None); ``episode [B]``, ``anchor [B]``; ``spec``: window
    name -> dict(stream, seconds | steps, method, offset, tolerance, window, out_of_range).

    Returns name -> (values [B, K, D], valid [B, K], age [B, K]) in float64.
    """
    result = {}
    for name, w in spec.items():
        s = episodes[w.get("stream") or name]
        E = len(s["values"])
        first = np.asarray(s["values"][0])
        D = first.shape[1] if first.ndim == 2 else 1
        rows = []
        for e, a in zip(np.asarray(episode).tolist(), np.asarray(anchor).tolist()):
            if 0 <= e < E:
                v = np.asarray(s["values"][e], np.float64).reshape(-1, D)
                t = np.asarray(s["times"][e])
                m = None if s.get("valid") is None else np.asarray(s["valid"][e])
            else:  # an episode outside the store: an empty one
                v, t, m = np.zeros((0, D)), np.zeros(0, time_dtype), None
            fn = _time_window if "seconds" in w else _index_window
            rows.append(fn(v, t, m, a, w, time_dtype))
        result[name] = tuple(np.stack(x) for x in zip(*rows))
    return result


def spec_dicts(spec) -> dict:
    """``sample_windows``' spec (name -> ``Window``) as this reference's dicts."""
    out = {}
    for name, w in spec.items():
        d = dict(out_of_range=w.out_of_range, offset=w.offset, tolerance=w.tolerance,
                 window=w.window, stream=w.stream, method=w.method)
        d["seconds" if w.is_time else "steps"] = w.seconds if w.is_time else w.steps
        out[name] = d
    return out
