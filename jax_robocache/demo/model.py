"""A small pure-JAX network and Adam (no flax/optax needed).

Input: the occupancy grid (flattened) through a ReLU layer, joined with the
past motion, then two more layers to the predicted future motion. Motions are
normalised by the training set's mean and standard deviation (``Normaliser``),
so a loss of 1.0 is what always predicting the mean motion scores.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Normaliser(NamedTuple):
    mean: jax.Array  # [3]
    std: jax.Array  # [3]

    @classmethod
    def fit(cls, motions: np.ndarray, weight: np.ndarray) -> "Normaliser":
        w = weight[:, None] / max(float(weight.sum()), 1.0)
        mean = (motions * w).sum(axis=0)
        std = np.sqrt(((motions - mean) ** 2 * w).sum(axis=0))
        return cls(jnp.asarray(mean, jnp.float32), jnp.asarray(np.maximum(std, 1e-6), jnp.float32))

    def __call__(self, motion):
        return (motion - self.mean) / self.std


def init_params(key, grid_cells: int, hidden=(256, 128)) -> dict:
    sizes = [(grid_cells, hidden[0]), (hidden[0] + 3, hidden[1]), (hidden[1], 3)]
    params = {}
    for k, ((fan_in, fan_out), sub) in enumerate(zip(sizes, jax.random.split(key, len(sizes)))):
        params[f"w{k}"] = jax.random.normal(sub, (fan_in, fan_out), jnp.float32) * np.sqrt(
            2.0 / fan_in)
        params[f"b{k}"] = jnp.zeros((fan_out,), jnp.float32)
    return params


def predict(params: dict, grid, past_normalised):
    """``[B, 3]`` normalised future motion from ``grid [B, X, Y]`` and ``past [B, 3]``."""
    h = jax.nn.relu(grid.reshape(grid.shape[0], -1) @ params["w0"] + params["b0"])
    h = jax.nn.relu(jnp.concatenate([h, past_normalised], axis=-1) @ params["w1"] + params["b1"])
    return h @ params["w2"] + params["b2"]


def loss_fn(params: dict, batch, norm: Normaliser):
    """Weighted mean squared error of the normalised motion (weight 0: invalid samples)."""
    err = predict(params, batch.grid, norm(batch.past)) - norm(batch.target)
    per_sample = jnp.mean(err * err, axis=-1)
    return jnp.sum(per_sample * batch.weight) / jnp.maximum(jnp.sum(batch.weight), 1.0)


class AdamState(NamedTuple):
    step: jax.Array
    m: dict
    v: dict


def adam_init(params: dict) -> AdamState:
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    return AdamState(jnp.zeros((), jnp.int32), zeros, zeros)


def adam_update(params, grads, state: AdamState, lr: float, b1=0.9, b2=0.999, eps=1e-8):
    step = state.step + 1
    m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, state.m, grads)
    v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, state.v, grads)
    t = step.astype(jnp.float32)
    scale = lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    params = jax.tree_util.tree_map(lambda p, m, v: p - scale * m / (jnp.sqrt(v) + eps),
                                    params, m, v)
    return params, AdamState(step, m, v)


def adam_step(loss_fn, params, opt: AdamState, batch, aux, *, lr: float):
    """One training step on ``batch``: ``loss_fn(params, batch, aux)``, its gradient, Adam.
    Returns ``(params, opt, loss)``."""
    loss, grads = jax.value_and_grad(loss_fn)(params, batch, aux)
    params, opt = adam_update(params, grads, opt, lr)
    return params, opt, loss
