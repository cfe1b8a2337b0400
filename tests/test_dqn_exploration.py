"""Exploration: Ape-X epsilons, schedules, masked epsilon-greedy actions."""

import numpy as np
import pytest
import torch
from torch import nn

from firebreak.dqn import act, apex_epsilons, build_q_network, exponential_schedule, linear_schedule, masked_argmax


def test_apex_epsilons_follow_the_power_law():
    eps = apex_epsilons(8, epsilon=0.4, alpha=7.0)
    np.testing.assert_allclose(eps, [0.4 ** (1 + 7 * i / 7) for i in range(8)])
    assert eps[0] == pytest.approx(0.4) and eps[-1] == pytest.approx(0.4**8)
    assert (np.diff(eps) < 0).all()
    np.testing.assert_allclose(apex_epsilons(1, epsilon=0.4), [0.4])


def test_schedules_reach_their_end_and_stay():
    assert linear_schedule(1.0, 0.1, 100, 0) == 1.0
    assert linear_schedule(1.0, 0.1, 100, 50) == pytest.approx(0.55)
    assert linear_schedule(1.0, 0.1, 100, 100) == pytest.approx(0.1)
    assert linear_schedule(1.0, 0.1, 100, 10_000) == pytest.approx(0.1)
    assert exponential_schedule(1.0, 0.01, 100, 50) == pytest.approx(0.1)
    assert exponential_schedule(1.0, 0.01, 100, 10_000) == pytest.approx(0.01)


def batch(seed: int, rows: int = 200, side: int = 5):
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((rows, 3, side, side)).astype(np.float32)
    mask = rng.random((rows, side * side)) < 0.2
    mask[np.arange(rows), rng.integers(0, side * side, rows)] = True  # at least one valid cell
    return obs, mask


@pytest.mark.parametrize("epsilon", [0.0, 0.3, 1.0])
def test_actions_are_always_valid(epsilon):
    torch.manual_seed(0)
    net = build_q_network("basic", 3, hidden=8)
    obs, mask = batch(0)
    actions = act(net, obs, mask, epsilon, np.random.default_rng(1))
    assert actions.shape == (200,) and actions.dtype == np.int64
    assert mask[np.arange(200), actions].all()


def test_greedy_actions_are_the_masked_argmax():
    torch.manual_seed(0)
    net = build_q_network("dueling", 3, hidden=8)
    obs, mask = batch(1)
    with torch.no_grad():
        expected = masked_argmax(net(torch.from_numpy(obs)), torch.from_numpy(mask)).numpy()
    np.testing.assert_array_equal(act(net, obs, mask, 0.0, np.random.default_rng(0)), expected)


class Unusable(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, obs):
        raise AssertionError("epsilon = 1 must not run the network")


def test_random_actions_are_uniform_over_valid_cells():
    rows = 20_000
    mask = np.zeros((rows, 16), bool)
    mask[:, [0, 3, 7, 8, 15]] = True
    obs = np.zeros((rows, 1, 4, 4), np.float32)
    actions = act(Unusable(), obs, mask, 1.0, np.random.default_rng(0))
    frequency = np.bincount(actions, minlength=16) / rows
    assert frequency[~mask[0]].sum() == 0
    # Each frequency has binomial std sqrt(0.2 * 0.8 / 20_000) = 0.0028; 0.015 is over 5 std,
    # while a draw that favoured one valid cell (e.g. always the first) misses by 0.8.
    np.testing.assert_allclose(frequency[mask[0]], 0.2, atol=0.015)


def test_a_row_without_valid_cells_is_an_error():
    mask = np.ones((3, 4), bool)
    mask[2] = False
    with pytest.raises(ValueError, match=r"rows \[2\] have no valid action"):
        act(Unusable(), np.zeros((3, 1, 2, 2), np.float32), mask, 1.0, np.random.default_rng(0))
