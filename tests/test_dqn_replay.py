"""Prioritized n-step replay: sum tree, IS weights, n-step returns over fragments, storage."""

import numpy as np
import pytest

from firebreak.dqn import PrioritizedReplayBuffer, SumTree


def test_sum_tree_samples_leaves_in_proportion_to_their_values():
    values = np.array([1.0, 2.0, 0.0, 3.0, 4.0])  # 5 leaves: the tree pads to 8
    tree = SumTree(len(values))
    tree.update(np.arange(5), values)
    assert tree.total == 10.0 and tree.min == 1.0
    rng = np.random.default_rng(0)
    draws = 200_000
    counts = np.bincount(tree.find(rng.random(draws) * tree.total), minlength=8)
    assert counts[2] == 0 and counts[5:].sum() == 0  # zero and padding leaves never drawn
    # Each frequency is a binomial mean with std <= sqrt(0.25 / 200_000) = 0.0011, so a
    # 0.006 tolerance is over 5 standard deviations: a correct tree fails with odds below
    # 1e-6, a tree off by one leaf (frequencies off by >= 0.1) always fails.
    np.testing.assert_allclose(counts[:5] / draws, values / values.sum(), atol=0.006)


def test_sum_tree_batched_updates_keep_sums_and_minimum_exact():
    rng = np.random.default_rng(1)
    tree = SumTree(1000)
    leaves = np.zeros(1000)
    for _ in range(20):
        idx = rng.integers(0, 1000, 64)
        val = rng.random(64) * (rng.random(64) > 0.2)
        tree.update(idx, val)
        leaves[idx] = val  # numpy keeps the last of duplicate indices, as the tree does
    np.testing.assert_allclose(tree.total, leaves.sum(), rtol=1e-12)
    assert tree.min == leaves[leaves > 0].min()
    found = tree.find(rng.random(10_000) * tree.total)
    assert (leaves[found] > 0).all()


def one_episode_fragment(start: int, length: int, cells: int = 4):
    """`length` steps of one long episode; obs of step g is filled with g."""
    steps = np.arange(start, start + length, dtype=np.float32)
    obs = np.broadcast_to(steps[:, None, None, None], (length, 1, 1, cells)).copy()
    return dict(
        obs=obs,
        action=np.zeros(length, np.int64),
        reward=np.ones(length, np.float32),
        terminated=np.zeros(length, bool),
        truncated=np.zeros(length, bool),
        next_obs=obs + 1,
        next_mask=np.ones((length, cells), bool),
    )


def test_sampling_follows_priorities_and_weights_correct_for_it():
    buffer = PrioritizedReplayBuffer(16, (1, 1, 4), gamma=0.9, n_step=1, alpha=0.5, seed=0)
    buffer.add_fragment(**one_episode_fragment(0, 4))
    slots = buffer.sample(4, beta=0.4).indices  # stratified over 4 equal priorities: each once
    assert sorted(slots.tolist()) == [0, 1, 2, 3]
    td_errors = np.array([0.0, 1.0, 3.0, 8.0])
    buffer.update_priorities(np.arange(4), td_errors)

    draws = 4000
    batch = buffer.sample(draws, beta=0.4)
    priority = (td_errors + 1e-6) ** 0.5  # p_i = (|td| + eps) ** alpha
    probability = priority / priority.sum()
    # Stratified sampling draws one point in each of `draws` equal segments of the total:
    # leaf i's interval (length P(i) of the total) holds draws * P(i) segments up to the two
    # it shares at its ends, so its count is within 2 of draws * P(i), whatever the seed.
    frequency = np.bincount(buffer.obs[batch.indices, 0, 0, 0].astype(int), minlength=4) / draws
    np.testing.assert_allclose(frequency, probability, atol=2 / draws)
    assert frequency[0] < 1e-3  # |td| = 0 keeps only the eps priority

    # Schaul et al.: w_i = (N P(i)) ** -beta normalised by the largest weight, N = 4.
    weight = (4 * probability) ** -0.4 / ((4 * probability) ** -0.4).max()
    np.testing.assert_allclose(batch.weights, weight[batch.indices], rtol=1e-5)


def test_n_step_returns_stop_at_episode_ends_and_bootstrap_only_on_truncation():
    # Six steps: an episode terminating at t=2, one truncated at t=4, one cut by the fragment at t=5.
    gamma, cells = 0.5, 9
    obs = np.arange(6, dtype=np.float32)[:, None, None, None] * np.ones((1, 1, 3, 3), np.float32)
    next_obs = obs + 1
    next_obs[2] = 100.0  # final obs of the terminated episode (obs[3] is a reset)
    next_obs[4] = 104.0  # final obs of the truncated episode
    next_obs[5] = 105.0
    next_mask = np.eye(cells, dtype=bool)[1:7]  # distinct mask per step: cell t + 1 valid
    buffer = PrioritizedReplayBuffer(32, (1, 3, 3), gamma=gamma, n_step=2, seed=0)
    buffer.add_fragment(
        obs=obs,
        action=np.arange(6),
        reward=np.array([1, 2, 4, 8, 16, 32], np.float32),
        terminated=np.array([0, 0, 1, 0, 0, 0], bool),
        truncated=np.array([0, 0, 0, 0, 1, 0], bool),
        next_obs=next_obs,
        next_mask=next_mask,
    )
    assert len(buffer) == 6

    # t: (n-step return, steps summed, terminated, bootstrap obs value, mask of that obs)
    expected = {
        0: (1 + 0.5 * 2, 2, False, 2.0, next_mask[1]),  # mid-episode: bootstraps from obs[2]
        1: (2 + 0.5 * 4, 2, True, 100.0, None),
        2: (4, 1, True, 100.0, None),
        3: (8 + 0.5 * 16, 2, False, 104.0, next_mask[4]),  # truncation: bootstraps from final obs
        4: (16, 1, False, 104.0, next_mask[4]),
        5: (32, 1, False, 105.0, next_mask[5]),  # fragment end: a 1-step return
    }
    batch = buffer.sample(600, beta=1.0)
    seen = set()
    for i in range(600):
        t = int(batch.obs[i, 0, 0, 0])
        ret, k, term, boot, mask = expected[t]
        assert batch.action[i] == t
        assert batch.returns[i] == pytest.approx(ret)
        assert batch.n_steps[i] == k and batch.terminated[i] == term
        assert batch.next_obs[i, 0, 0, 0] == boot
        if mask is not None:
            assert np.array_equal(batch.next_mask[i], mask)
        seen.add(t)
    assert seen == set(range(6))


def test_ring_overwrites_oldest_fragment_without_breaking_bootstrap_links():
    # Capacity 12, fragments of 4 steps take 5 slots: the ring wraps mid-fragment and
    # overwrites older fragments partially.
    buffer = PrioritizedReplayBuffer(12, (1, 1, 4), gamma=1.0, n_step=3, seed=0)
    for fragment in range(7):
        buffer.add_fragment(**one_episode_fragment(4 * fragment, 4))
    # Slots hold, oldest first: the tail of fragment 4 (step 19 and its final obs), then
    # fragments 5 and 6 whole.
    assert len(buffer) == 1 + 4 + 4
    batch = buffer.sample(900, beta=1.0)
    step = batch.obs[:, 0, 0, 0].astype(int)
    assert set(step.tolist()) == {19, *range(20, 28)}
    np.testing.assert_array_equal(batch.n_steps, np.minimum(3, 4 - step % 4))
    np.testing.assert_array_equal(batch.next_obs[:, 0, 0, 0], step + batch.n_steps)
    np.testing.assert_array_equal(batch.returns, batch.n_steps)  # gamma 1, rewards 1


def test_fragment_must_hold_consecutive_steps():
    fragment = one_episode_fragment(0, 4)
    fragment["next_obs"][1] += 0.5  # inside an episode, next_obs[1] must be obs[2]
    buffer = PrioritizedReplayBuffer(16, (1, 1, 4), gamma=0.9, n_step=1)
    with pytest.raises(ValueError, match=r"next_obs\[t\] differs from obs\[t \+ 1\]"):
        buffer.add_fragment(**fragment)


def test_observations_stored_as_float16_by_default():
    buffer = PrioritizedReplayBuffer(1000, (16, 64, 64), gamma=0.99)
    assert buffer.obs.dtype == np.float16
    per_slot = 16 * 64 * 64 * 2 + 64 * 64  # float16 obs + bool mask
    assert buffer.obs.nbytes + buffer.mask.nbytes == 1000 * per_slot
    # Small per-slot arrays and the tree stay under 1 % of the total.
    assert buffer.nbytes < 1.01 * 1000 * per_slot
    wide = PrioritizedReplayBuffer(1000, (16, 64, 64), gamma=0.99, obs_dtype=np.float32)
    assert wide.obs.nbytes == 2 * buffer.obs.nbytes
