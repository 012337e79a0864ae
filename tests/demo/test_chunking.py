"""The action-chunking demo: the per-sample host loader against sample_windows, the masked
loss, anchor eligibility, and a small end-to-end run."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_robocache.demo import main
from jax_robocache.demo.chunk_model import Scales, hold_baseline, init_params, loss_fn
from jax_robocache.demo.chunk_train import windows_batch
from jax_robocache.demo.chunking import CHUNK, HostLoader, make_episodes, require, spec
from jax_robocache.episodes import sample_windows

SEED = 3


@pytest.fixture(scope="module")
def data():
    episodes = make_episodes(5, 3.0, camera_dim=8, seed=SEED)
    store = episodes.store()
    return episodes, store, HostLoader(episodes, wrench=True)


def _anchors(loader: HostLoader, frames):
    e = np.searchsorted(loader.start, frames, side="right") - 1
    t = np.array([loader.ep.times["action"][k][f - loader.start[k]] for k, f in zip(e, frames)],
                 np.float32)
    return e.astype(np.int32), t


def test_host_loader_equals_sample_windows(data):
    """LeRobot's per-sample indexing (clamp + is_pad) and align's time-window rules, written
    in numpy, give the windows sample_windows cuts on the device (seed printed on failure)."""
    episodes, store, loader = data
    frames = loader.eligible  # every anchor, including the chunks that run past the end
    host = loader.batch(frames)
    e, t = _anchors(loader, frames)
    out = sample_windows(store, jnp.asarray(e), jnp.asarray(t), spec(wrench=True))
    for name in ("state", "action", "camera", "wrench"):
        values, valid = np.asarray(out[name].values), np.asarray(out[name].valid)
        if name in ("camera", "wrench"):
            values, valid = values[:, 0], valid[:, 0]
        np.testing.assert_array_equal(valid, ~host[f"{name}_is_pad"], err_msg=f"{name} seed "
                                      f"{SEED}")
        # the wrench is a float32 mean of ~20 samples (float64 on the host): summation order
        tol = 1e-4 if name == "wrench" else 1e-6
        np.testing.assert_allclose(values[valid], host[name][valid], rtol=tol, atol=tol,
                                   err_msg=f"{name} seed {SEED}")
        if name in ("state", "action"):  # LeRobot pads with the clamped sample's value
            np.testing.assert_array_equal(values, host[name], err_msg=name)
    # the edges are exercised: chunks past the episode end, stale camera, empty wrench window
    assert 0.05 < host["action_is_pad"].mean() < 0.5
    assert host["action_is_pad"][:, 0].sum() == 0  # the anchor's own action always exists
    assert not host["state_is_pad"].any()  # required by the anchor table
    assert host["camera_is_pad"].any() and not host["camera_is_pad"].all()


def test_anchor_table_matches_host_eligibility(data):
    episodes, store, loader = data
    table = store.anchor_table("action", require=require())
    assert int(table.count()) == len(loader)
    # the anchors drawn in the step are eligible ones: the state history is never padded
    batch = jax.jit(windows_batch, static_argnums=(3, 4, 5))(
        store, table, jax.random.PRNGKey(SEED), 512, CHUNK, True)
    assert not np.asarray(batch["state_is_pad"]).any()
    assert set(batch) == set(loader.batch(loader.eligible[:2]))  # same keys as the host loader
    e_pad = np.asarray(batch["action_is_pad"]).mean()
    host_pad = loader.batch(loader.eligible)["action_is_pad"].mean()
    assert abs(e_pad - host_pad) < 0.05  # same distribution of anchors (uniform, eligible)


def test_loss_ignores_padding_and_baseline(data):
    episodes, store, loader = data
    batch = loader.batch(loader.eligible[::3])
    scales = Scales.fit(batch)
    params = init_params(jax.random.PRNGKey(SEED), 14, 8, 6, CHUNK)
    loss = float(loss_fn(params, batch, scales))
    noisy = dict(batch, action=np.where(batch["action_is_pad"][..., None],
                                        np.float32(1e3), batch["action"]))
    assert float(loss_fn(params, noisy, scales)) == pytest.approx(loss, rel=1e-6)
    zero = jax.tree_util.tree_map(jnp.zeros_like, params)
    # a zero network predicts "hold the current state": exactly the baseline
    assert float(loss_fn(zero, batch, scales)) == pytest.approx(hold_baseline(batch, scales),
                                                                 rel=1e-5)
    assert hold_baseline(batch, scales) > 0.3


def test_chunking_demo_smoke(tmp_path, capsys):
    out = tmp_path / "numbers.json"
    summary = main(["--steps", "5", "--batch-size", "8", "--episodes", "4", "--duration", "3",
                    "--wrench", "--json", str(out), "--no-plot"])
    printed = capsys.readouterr().out
    if jax.default_backend() == "cpu":
        assert "n/a (CPU)" in printed
    for text in ("action chunking", "samples/s", "steps/s", "loader ms/step",
                 "device utilisation", "final train loss", "eval loss", "compile s",
                 "in-graph (EpisodeStore)", "host per-sample loader", "hold the current state"):
        assert text in printed, text
    assert json.loads(out.read_text())["task"] == "chunking"
    runs = summary["results"]
    assert [r["name"] for r in runs] == ["in-graph (EpisodeStore)", "host per-sample loader"]
    for r in runs:
        assert len(r["losses"]) == 5 and np.all(np.isfinite(r["losses"]))
        assert r["samples_per_s"] == pytest.approx(8 * r["steps_per_s"])
        assert r["preprocess_ms_per_step"] > 0 and np.isfinite(r["eval_loss"])
    # same initial weights, batches from the same distribution: the first losses agree
    assert runs[0]["losses"][0] == pytest.approx(runs[1]["losses"][0], rel=0.3)


def test_chunking_demo_learns():
    """More steps lower the eval loss below the hold-the-state baseline."""
    summary = main(["--steps", "150", "--batch-size", "32", "--episodes", "16", "--duration",
                    "3", "--variants", "in-graph", "--no-plot"])
    (run,) = summary["results"]
    assert run["eval_loss"] < 0.95 * summary["eval_baseline_hold"]
    assert run["final_train_loss"] < run["losses"][0]


def test_cli_checks():
    with pytest.raises(SystemExit):
        main(["--task", "chunking", "--bag", "x"])
    with pytest.raises(SystemExit):
        main(["--episodes", "1"])
