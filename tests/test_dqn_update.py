"""Double-DQN update: masked n-step targets by hand, loss, target network, checkpoints."""

import numpy as np
import pytest
import torch
from torch import nn

from firebreak.dqn import DQNConfig, DQNUpdate, ReplayBatch, build_q_network

# A 2 x 2 grid with 2 channels. The "networks" are 1x1 convs without bias: the online one
# reads Q from channel 0, the target one from channel 1, so every Q-value is known.
NEXT_CH0 = [0.1, 0.9, 0.5, 0.3]  # online Q(next): its best cell, 1, is masked out
NEXT_CH1 = [2.0, 9.0, 1.0, 3.0]  # target Q(next)
NEXT_MASK = [True, False, True, True]


def linear_update(double: bool = True) -> DQNUpdate:
    net = nn.Sequential(nn.Conv2d(2, 1, 1, bias=False), nn.Flatten(1))
    update = DQNUpdate(net, DQNConfig(gamma=0.5, double=double, huber_delta=1.0, lr=1e-3), device="cpu")
    with torch.no_grad():
        update.q_network[0].weight.copy_(torch.tensor([1.0, 0.0]).view(1, 2, 1, 1))
        update.target_network[0].weight.copy_(torch.tensor([0.0, 1.0]).view(1, 2, 1, 1))
    return update


def hand_batch() -> ReplayBatch:
    next_obs = np.array([NEXT_CH0, NEXT_CH1], np.float16).reshape(1, 2, 2, 2).repeat(3, axis=0)
    next_mask = np.array([NEXT_MASK, [False] * 4, NEXT_MASK])  # row 1 ends with no valid cell
    obs = np.zeros((3, 2, 2, 2), np.float16)
    obs[:, 0] = np.array([[1.0, 2.0], [3.0, 4.0]])  # online Q(obs) = 1, 2, 3, 4
    return ReplayBatch(
        obs=obs,
        action=np.array([0, 3, 1]),
        returns=np.array([1.0, 2.0, 0.5], np.float32),
        n_steps=np.array([2, 1, 3]),
        terminated=np.array([False, True, False]),
        next_obs=next_obs,
        next_mask=next_mask,
        weights=np.array([1.0, 0.5, 0.25], np.float32),
        indices=np.arange(3),
    )


def targets(update: DQNUpdate, batch: ReplayBatch) -> list[float]:
    b = {name: torch.as_tensor(value) for name, value in batch._asdict().items()}
    return update.td_target(b["returns"], b["n_steps"], b["terminated"], b["next_obs"].float(), b["next_mask"]).tolist()


def test_double_dqn_target_uses_online_masked_argmax_evaluated_by_target():
    # Online picks cell 2 (0.5, cell 1 is invalid); the target values it at 1.
    # row 0: 1 + 0.5**2 * 1 ; row 1 terminated: 2 ; row 2: 0.5 + 0.5**3 * 1
    assert targets(linear_update(double=True), hand_batch()) == pytest.approx([1.25, 2.0, 0.625])


def test_plain_dqn_target_takes_the_target_max_over_valid_cells():
    # Best valid target value is 3 (cell 3); the invalid cell's 9 must be ignored.
    assert targets(linear_update(double=False), hand_batch()) == pytest.approx([1.75, 2.0, 0.875])


def test_a_non_terminal_bootstrap_state_without_valid_cells_is_an_error():
    batch = hand_batch()._replace(terminated=np.array([False, False, False]))
    with pytest.raises(ValueError, match=r"rows \[1\] have no valid action"):
        targets(linear_update(), batch)


def test_update_loss_metrics_and_priorities_by_hand():
    metrics, priorities = linear_update().update(hand_batch())
    # Q(obs, action) = 1, 4, 2 ; targets 1.25, 2, 0.625 ; TD = 0.25, -2, -1.375
    np.testing.assert_allclose(priorities, [0.25, 2.0, 1.375], rtol=1e-6)
    # Huber (delta 1): 0.5 * 0.25**2, 2 - 0.5, 1.375 - 0.5 ; weighted by 1, 0.5, 0.25 ; mean
    assert metrics["loss"] == pytest.approx((0.03125 + 0.75 + 0.21875) / 3)
    assert metrics["q_mean"] == pytest.approx(7 / 3)
    assert metrics["td_error"] == pytest.approx(3.625 / 3)
    assert metrics["grad_norm"] > 0


def random_batch(seed: int, batch_size: int = 16, channels: int = 3, side: int = 4) -> ReplayBatch:
    rng = np.random.default_rng(seed)
    cells = side * side
    return ReplayBatch(
        obs=rng.standard_normal((batch_size, channels, side, side)).astype(np.float16),
        action=rng.integers(0, cells, batch_size),
        returns=rng.standard_normal(batch_size).astype(np.float32),
        n_steps=rng.integers(1, 4, batch_size),
        terminated=rng.random(batch_size) < 0.2,
        next_obs=rng.standard_normal((batch_size, channels, side, side)).astype(np.float16),
        next_mask=rng.random((batch_size, cells)) < 0.7,
        weights=rng.uniform(0.2, 1.0, batch_size).astype(np.float32),
        indices=np.arange(batch_size),
    )


def basic_update(seed: int, **config) -> DQNUpdate:
    torch.manual_seed(seed)
    return DQNUpdate(build_q_network("basic", 3, hidden=8), DQNConfig(**config), device="cpu")


def test_loss_is_finite_and_falls_on_a_fixed_batch():
    update = basic_update(0, lr=3e-3, target_update_every=10**6)  # fixed targets: a regression
    batch = random_batch(0)
    losses = [update.update(batch)[0]["loss"] for _ in range(50)]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.1 * losses[0]


@pytest.mark.parametrize("tau", [1.0, 0.25])
def test_target_network_moves_every_k_updates(tau):
    update = basic_update(0, target_update_every=3, tau=tau)
    batch = random_batch(1)
    before = [p.clone() for p in update.target_network.parameters()]
    update.update(batch)
    update.update(batch)
    assert all(torch.equal(a, b) for a, b in zip(before, update.target_network.parameters()))
    update.update(batch)
    for old, new, online in zip(before, update.target_network.parameters(), update.q_network.parameters()):
        torch.testing.assert_close(new, old + tau * (online - old))


def test_state_dict_round_trip_through_weights_only_load_continues_identically(tmp_path):
    original = basic_update(0, target_update_every=3, lr=1e-2)
    for seed in range(4):
        original.update(random_batch(seed))
    torch.save(original.state_dict(), tmp_path / "learner.pt")

    resumed = basic_update(1, target_update_every=3, lr=1e-2)  # different initial weights
    resumed.load_state_dict(torch.load(tmp_path / "learner.pt", weights_only=True))
    assert resumed.num_updates == 4
    for seed in range(4, 8):  # crosses a target update (at 6) and uses Adam's moments
        assert original.update(random_batch(seed))[0] == resumed.update(random_batch(seed))[0]
    for a, b in zip(original.state_dict()["target_network"].values(), resumed.state_dict()["target_network"].values()):
        assert torch.equal(a, b)


def test_weights_travel_to_an_actor_network():
    learner = basic_update(0)
    learner.update(random_batch(0))
    weights = learner.get_weights()
    assert all(t.device.type == "cpu" for t in weights.values())
    actor = build_q_network("basic", 3, hidden=8)
    actor.load_state_dict(weights)
    obs = torch.randn(2, 3, 4, 4)
    assert torch.equal(actor(obs), learner.q_network(obs))

    fresh = basic_update(5)
    fresh.set_weights(weights)
    assert torch.equal(fresh.q_network(obs), actor(obs))
    assert torch.equal(fresh.target_network(obs), actor(obs))


def test_config_rejects_unknown_autocast():
    with pytest.raises(ValueError, match="autocast"):
        DQNConfig(autocast="fp8")
