"""The action-chunking policy: a small pure-JAX MLP and its padding-masked L1 loss.

Input: the state history (2 x D, normalised), the camera embedding and, when the
spec has it, the mean wrench (each zeroed where its window is invalid, plus its
validity flag).
Output: the 50-step chunk as residuals from the current state,
``(action_k - state_now) / scale_k``, with ``scale`` the training set's
per-step, per-joint standard deviation of that residual. The loss is ACT's:
mean absolute error over the chunk entries that are not padding
(``is_pad = ~valid``); predicting "hold the current state" (all zeros) scores
the mean absolute normalised residual, the printed baseline.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Scales(NamedTuple):
    state_mean: jax.Array  # [D]
    state_std: jax.Array  # [D]
    residual_std: jax.Array  # [K, D]
    wrench_mean: jax.Array | None = None  # [F] (None: no wrench window)
    wrench_std: jax.Array | None = None

    @classmethod
    def fit(cls, batch: dict) -> "Scales":
        """From a host batch (``HostLoader.batch``), over its valid entries only."""
        now = batch["state"][:, -1].astype(np.float64)
        ok = ~batch["action_is_pad"]
        resid = batch["action"] - now[:, None]
        count = np.maximum(ok.sum(axis=0), 1)[:, None]
        res_std = np.sqrt((np.where(ok[..., None], resid, 0.0) ** 2).sum(axis=0) / count)
        f = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
        floor = lambda x: np.maximum(x, 1e-6)  # noqa: E731
        scales = cls(f(now.mean(0)), f(floor(now.std(0))), f(floor(res_std)))
        if "wrench" not in batch:
            return scales
        wrench = batch["wrench"][~batch["wrench_is_pad"]].astype(np.float64)
        return scales._replace(wrench_mean=f(wrench.mean(0)), wrench_std=f(floor(wrench.std(0))))


def init_params(key, state_dim: int, camera_dim: int, wrench_dim: int, chunk: int,
                hidden=(256, 256)) -> dict:
    fan = 2 * state_dim + camera_dim + 1 + (wrench_dim + 1 if wrench_dim else 0)
    sizes = [(fan, hidden[0]), (hidden[0], hidden[1]), (hidden[1], chunk * state_dim)]
    params = {}
    for k, ((fan_in, fan_out), sub) in enumerate(zip(sizes, jax.random.split(key, len(sizes)))):
        params[f"w{k}"] = jax.random.normal(sub, (fan_in, fan_out), jnp.float32) * np.sqrt(
            2.0 / fan_in)
        params[f"b{k}"] = jnp.zeros((fan_out,), jnp.float32)
    params["w2"] = params["w2"] * 0.1  # start near "hold the current state"
    return params


def features(batch: dict, s: Scales):
    B = batch["state"].shape[0]
    state = ((batch["state"] - s.state_mean) / s.state_std).reshape(B, -1)
    cam_ok = ~batch["camera_is_pad"]
    parts = [state, jnp.where(cam_ok[:, None], batch["camera"].astype(jnp.float32), 0.0),
             cam_ok[:, None].astype(jnp.float32)]
    if "wrench" in batch:
        ok = ~batch["wrench_is_pad"]
        parts += [jnp.where(ok[:, None], (batch["wrench"] - s.wrench_mean) / s.wrench_std, 0.0),
                  ok[:, None].astype(jnp.float32)]
    return jnp.concatenate(parts, axis=-1)


def predict(params: dict, batch: dict, s: Scales):
    """``[B, K, D]`` normalised residual chunk."""
    h = jax.nn.relu(features(batch, s) @ params["w0"] + params["b0"])
    h = jax.nn.relu(h @ params["w1"] + params["b1"])
    out = h @ params["w2"] + params["b2"]
    return out.reshape(out.shape[0], *s.residual_std.shape)


def target(batch: dict, s: Scales):
    return (batch["action"] - batch["state"][:, -1:, :]) / s.residual_std


def loss_fn(params: dict, batch: dict, s: Scales):
    """L1 over the non-padded chunk entries (``is_pad`` entries weigh 0)."""
    err = jnp.abs(predict(params, batch, s) - target(batch, s))
    w = (~batch["action_is_pad"]).astype(jnp.float32)[..., None]
    return jnp.sum(err * w) / jnp.maximum(jnp.sum(w) * err.shape[-1], 1.0)


def hold_baseline(batch: dict, s: Scales) -> float:
    """The loss of predicting "hold the current state" (zero residual)."""
    err = np.abs(np.asarray(target(batch, s)))
    w = (~np.asarray(batch["action_is_pad"]))[..., None]
    return float((err * w).sum() / max(w.sum() * err.shape[-1], 1))
