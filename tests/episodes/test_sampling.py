"""Anchor sampling: uniform over (episode, sample) pairs, complete windows only, per-episode
weights, determinism per key, epochs visiting every eligible anchor once, inside jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from references import sample_windows as reference_windows
from jax_robocache import EpisodeStore, Window, sample_windows

LENGTHS = [6, 0, 1, 9, 4]


@pytest.fixture
def store():
    rng = np.random.default_rng(2024)
    print("numpy seed 2024")
    times = [np.sort(rng.uniform(0, 1, n)).astype(np.float32) for n in LENGTHS]
    valid = [rng.random(n) > 0.25 for n in LENGTHS]
    valid[3][:] = True
    values = [rng.normal(size=(n, 2)).astype(np.float32) for n in LENGTHS]
    st = EpisodeStore.from_episodes({"action": values, "state": values}, {"action": times,
                                    "state": times}, valid={"action": valid})
    st.test_data = dict(times=times, valid=valid, values=values)
    return st


def flat_index(store, episode, anchor):
    """(episode, anchor) -> flat reference row (anchors are sample times; times distinct)."""
    o = np.asarray(store["action"].offsets)
    t = np.asarray(store["action"].times)
    rows = []
    for e, a in zip(np.asarray(episode), np.asarray(anchor)):
        hits = np.flatnonzero(t[o[e]:o[e + 1]] == a)
        assert hits.size == 1, (e, a)
        rows.append(o[e] + hits[0])
    return np.asarray(rows)


def eligible_rows(store):
    return np.flatnonzero(np.concatenate(store.test_data["valid"]))


def test_uniform_over_unmasked_pairs(store):
    B = 20000
    draws = jax.jit(lambda s, k: s.sample_anchors(k, B))(store, jax.random.key(0))
    assert draws.episode.shape == (B,) and draws.episode.dtype == jnp.int32
    rows = flat_index(store, draws.episode, draws.anchor)
    counts = np.bincount(rows, minlength=sum(LENGTHS))
    ok = eligible_rows(store)
    assert set(np.flatnonzero(counts)) == set(ok)  # every eligible pair, nothing else
    expected = B / len(ok)
    chi2 = ((counts[ok] - expected) ** 2 / expected).sum()
    # df = len(ok) - 1 (~14); chi2 above 60 has p < 1e-6 under uniformity
    assert chi2 < 60, chi2


def test_deterministic_per_key(store):
    a = store.sample_anchors(jax.random.key(3), 64)
    b = jax.jit(lambda s, k: s.sample_anchors(k, 64))(store, jax.random.key(3))
    c = store.sample_anchors(jax.random.key(4), 64)
    np.testing.assert_array_equal(np.asarray(a.episode), np.asarray(b.episode))
    np.testing.assert_array_equal(np.asarray(a.anchor), np.asarray(b.anchor))
    assert not np.array_equal(np.asarray(a.anchor), np.asarray(c.anchor))


def test_require_complete_windows(store):
    require = {"action": Window(steps=(-1, 0, 1, 2)),
               "state": Window(seconds=(-0.05, 0.0), method="previous")}
    table = store.anchor_table("action", require=require)
    # brute force: every reference sample as an anchor, with the independent reference
    d = store.test_data
    E = len(LENGTHS)
    episode = np.concatenate([np.full(n, e, np.int32) for e, n in enumerate(LENGTHS)])
    anchor = np.concatenate(d["times"])
    eps = {"action": dict(values=d["values"], times=d["times"], valid=d["valid"]),
           "state": dict(values=d["values"], times=d["times"], valid=None)}
    spec = {"action": dict(steps=(-1, 0, 1, 2), out_of_range="clamp"),
            "state": dict(seconds=(-0.05, 0.0), method="previous", out_of_range="clamp")}
    ref = reference_windows.sample_windows(eps, episode, anchor, spec)
    want = np.concatenate(d["valid"]) & ref["action"][1].all(1) & ref["state"][1].all(1)
    assert want.any() and not want.all()
    np.testing.assert_array_equal(np.asarray(table.eligible), want)
    draws = store.sample_anchors(jax.random.key(1), 2000, require=require)
    rows = flat_index(store, draws.episode, draws.anchor)
    assert set(rows) == set(np.flatnonzero(want))
    out = sample_windows(store, draws.episode, draws.anchor, require)
    assert all(bool(out[n].valid.all()) for n in require)
    del E


def test_weighted_per_episode(store):
    weights = np.array([1.0, 5.0, 0.0, 3.0, 1.0])  # episode 1 is empty, episode 2 weight 0
    B = 30000
    draws = store.sample_anchors(jax.random.key(2), B, weights=weights)
    freq = np.bincount(np.asarray(draws.episode), minlength=5) / B
    eff = weights * (np.array([v.sum() for v in store.test_data["valid"]]) > 0)
    eff[1] = 0
    np.testing.assert_allclose(freq, eff / eff.sum(), atol=0.01)
    assert freq[1] == 0 and freq[2] == 0
    # within an episode: uniform over its eligible anchors
    rows = flat_index(store, draws.episode, draws.anchor)
    o = np.asarray(store["action"].offsets)
    in3 = rows[(rows >= o[3]) & (rows < o[4])]
    counts = np.bincount(in3 - o[3], minlength=LENGTHS[3])
    assert counts.min() > 0.7 * counts.mean()


def test_nothing_eligible_gives_invalid_anchors(store):
    draws = store.sample_anchors(jax.random.key(0), 8,
                                 require={"action": Window(steps=(-100, 100))})
    assert (np.asarray(draws.episode) == -1).all() and np.isnan(np.asarray(draws.anchor)).all()
    out = sample_windows(store, draws.episode, draws.anchor, {"action": Window(steps=(0,))})
    assert not np.asarray(out["action"].valid).any()


def test_epoch_visits_every_anchor_once(store):
    ok = eligible_rows(store)
    orders = []
    for seed in (0, 1):
        it = store.epoch(jax.random.key(seed), 4)
        assert len(it) == -(-len(ok) // 4)
        rows, flags = [], []
        for anchors, mask in it:
            m = np.asarray(mask)
            flags.append(m)
            rows.extend(flat_index(store, np.asarray(anchors.episode)[m],
                                   np.asarray(anchors.anchor)[m]))
        assert sorted(rows) == sorted(ok)
        assert np.concatenate(flags).sum() == len(ok)
        orders.append(rows)
    assert orders[0] != orders[1]
    assert len(store.epoch(jax.random.key(0), 4, drop_last=True)) == len(ok) // 4


def test_epoch_inside_jit(store):
    table = store.anchor_table("action")
    B = 3

    @jax.jit
    def whole_epoch(table, key):
        order, count = table.epoch_order(key)
        steps = -(-table.size // B)
        def body(carry, step):
            anchors, m = table.epoch_batch(order, count, step, B)
            return carry, (anchors.episode, anchors.anchor, m)
        return jax.lax.scan(body, 0, jnp.arange(steps))[1]

    episode, anchor, m = whole_epoch(table, jax.random.key(7))
    m = np.asarray(m).reshape(-1)
    rows = flat_index(store, np.asarray(episode).reshape(-1)[m], np.asarray(anchor).reshape(-1)[m])
    assert sorted(rows) == sorted(eligible_rows(store))


def test_bad_sampling_arguments(store):
    with pytest.raises(KeyError, match="'nope'"):
        store.sample_anchors(jax.random.key(0), 4, reference="nope")
    with pytest.raises(ValueError, match=r"weights must be \[E\] = \[5\]"):
        store.sample_anchors(jax.random.key(0), 4, weights=np.ones(3))
    with pytest.raises(ValueError, match="finite and >= 0"):
        store.sample_anchors(jax.random.key(0), 4, weights=-np.ones(5))
    with pytest.raises(ValueError, match="batch_size"):
        store.sample_anchors(jax.random.key(0), 0)
    with pytest.raises(TypeError, match="require must be a spec"):
        store.sample_anchors(jax.random.key(0), 4, require=["action"])
