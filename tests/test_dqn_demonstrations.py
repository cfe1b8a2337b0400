"""Demonstrations in the learner: the buffer's n-step windows, the expert-value loss, pre-training
and batches that mix expert and agent transitions."""

import numpy as np
import pytest
import torch

from firebreak.dqn import DQN, DQNConfig
from firebreak.dqn.demonstrations import DemonstrationBuffer
from firebreak.dqn.update import expert_value_loss

C, H, W = 2, 3, 3
A = H * W


def episode(steps: int = 4, seed: int = 0):
    """A made-up expert episode: observation t is filled with t (so windows are easy to check),
    every cell valid, the expert taking cells 0, 1, 2, ... and valuing cell a at a / 10."""
    obs = np.stack([np.full((C, H, W), t, np.float32) for t in range(steps + 1)])
    masks = np.ones((steps + 1, A), bool)
    for t in range(1, steps + 1):
        masks[t:, t - 1] = False  # a treated cell stays invalid
    actions = np.arange(steps)
    rewards = np.arange(1.0, steps + 1)  # 1, 2, 3, 4
    values = np.tile(np.arange(A) / 10.0, (steps, 1))
    return obs, masks, actions, rewards, values


def test_n_step_windows_by_hand():
    buffer = DemonstrationBuffer(gamma=0.5, n_step=3, seed=0)
    obs, masks, actions, rewards, values = episode()
    buffer.add_episode(obs, masks, actions, rewards, values, terminated=True)
    assert len(buffer) == 4 and buffer.episodes == 1
    batch = buffer.sample(200)
    t = batch.obs[:, 0, 0, 0].astype(int)
    assert set(t) == {0, 1, 2, 3}
    expected_returns = {0: 1 + 0.5 * 2 + 0.25 * 3, 1: 2 + 0.5 * 3 + 0.25 * 4, 2: 3 + 0.5 * 4, 3: 4.0}
    expected_steps = {0: 3, 1: 3, 2: 2, 3: 1}
    for row, step in enumerate(t):
        assert batch.returns[row] == pytest.approx(expected_returns[step])
        assert batch.n_steps[row] == expected_steps[step]
        assert batch.next_obs[row, 0, 0, 0] == step + expected_steps[step]  # obs[t + k]
        assert batch.terminated[row] == (step + expected_steps[step] == 4)  # only windows reaching the end
        assert batch.action[row] == step and batch.mask[row, step]  # the expert's cell is valid in obs[t]
        np.testing.assert_array_equal(batch.next_mask[row], masks[step + expected_steps[step]])
        np.testing.assert_allclose(batch.values[row], values[step])


def test_a_cut_episode_bootstraps_at_its_end():
    buffer = DemonstrationBuffer(gamma=0.5, n_step=3, seed=0)
    buffer.add_episode(*episode(), terminated=False)
    assert not buffer.sample(50).terminated.any()


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda e: (e[0][:-1], *e[1:]), "T \\+ 1 observations"),
        (lambda e: (e[0], e[1], e[2], e[3][:-1], e[4]), "rewards"),
        (lambda e: (e[0], e[1], e[2], e[3], e[4][:, :-1]), "values of shape \\(4, 9\\)"),
        (lambda e: (e[0], e[1], np.array([0, 0, 1, 2]), e[3], e[4]), "not valid under its observation's mask"),
    ],
)
def test_bad_episodes_are_refused_and_nothing_is_stored(change, message):
    buffer = DemonstrationBuffer(gamma=0.9, n_step=2)
    with pytest.raises(ValueError, match=message):
        buffer.add_episode(*change(episode()), terminated=True)
    assert len(buffer) == 0 and buffer.episodes == 0
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(1)


def test_expert_value_loss_ignores_the_level_and_invalid_cells():
    values = torch.tensor([[1.0, 2.0, 3.0, 50.0]])
    mask = torch.tensor([[True, True, True, False]])
    # Q = values + a constant on the valid cells, anything on the invalid one: nothing to learn
    assert expert_value_loss(torch.tensor([[8.0, 9.0, 10.0, -7.0]]), values, mask).item() == pytest.approx(0.0)
    # centred Q (-1, 0, 1) vs centred values (-1, 0, 1) -> a flat Q misses by 1, 0, 1
    assert expert_value_loss(torch.tensor([[5.0, 5.0, 5.0, 5.0]]), values, mask).item() == pytest.approx(2 / 3)


def _learner(**overrides) -> DQN:
    config = DQNConfig(network="basic", network_kwargs={"hidden": 8, "num_layers": 1}, batch_size=8, n_step=2,
                       lr=1e-2, learning_starts=8, buffer_size=64, **overrides)
    return DQN(config, (C, H, W), device="cpu", seed=0)


def test_pretraining_learns_the_experts_ranking():
    learner = _learner(demo_loss_weight=10.0)
    obs, masks, actions, rewards, values = episode()
    obs = np.random.default_rng(0).random(obs.shape).astype(np.float32)
    learner.add_demonstration(obs, masks, actions, rewards * 0, values, terminated=True)

    def error() -> float:
        q = learner.dqn.q_network(torch.as_tensor(obs[:-1]))
        return expert_value_loss(q, torch.as_tensor(values * learner.config.reward_scale, dtype=torch.float32),
                                 torch.as_tensor(masks[:-1])).item()

    before = error()
    metrics = learner.pretrain(200)
    assert metrics["updates"] == 200 and "expert_loss" in metrics and len(learner.replay) == 0
    assert error() < 0.1 * before


def test_pretraining_needs_demonstrations():
    with pytest.raises(ValueError, match="no demonstrations loaded"):
        _learner().pretrain(1)


def _fragment(rng, steps: int = 16):
    """One env's `steps` consecutive agent steps, as `DQN.add_fragment` takes them."""
    states = rng.random((1, steps + 1, C, H, W)).astype(np.float32)
    no = np.zeros((1, steps), bool)
    return (states[:, :-1], rng.integers(0, A, (1, steps)), rng.random((1, steps)), no, no, states[:, 1:],
            np.ones((1, steps, A), bool))


def test_training_mixes_demonstrations_into_every_batch():
    learner = _learner(demo_batch_fraction=0.25)
    learner.add_demonstration(*episode(), terminated=True)
    fragment = _fragment(np.random.default_rng(1))
    learner.add_fragment(*fragment)
    sampled = []
    original = learner.replay.sample
    learner.replay.sample = lambda n, beta: sampled.append(n) or original(n, beta)
    metrics = learner.train(3)
    assert sampled == [6, 6, 6]  # 8 rows: 2 from the demonstrations, 6 from the replay
    assert "expert_loss" in metrics and np.isfinite(metrics["loss"])
    without = _learner()
    without.add_fragment(*fragment)
    assert "expert_loss" not in without.train(1)
