"""The plain DQN (no Ray): replay fed by fragments, reward scaling, readiness, state round trip."""

import io

import numpy as np
import torch

from firebreak.dqn import DQN, DQNConfig


def _fragment(rng, envs=2, steps=8, shape=(3, 4, 4)):
    obs = rng.normal(size=(envs, steps + 1) + shape).astype(np.float32)
    terminated = np.zeros((envs, steps), bool)
    return (obs[:, :-1], rng.integers(16, size=(envs, steps)), rng.uniform(0, 1e-3, (envs, steps)).astype(np.float32),
            terminated, terminated.copy(), obs[:, 1:], np.ones((envs, steps, 16), bool))


def test_learner_scales_rewards_trains_when_ready_and_round_trips():
    config = DQNConfig(network="basic", network_kwargs={"hidden": 8, "num_layers": 1}, n_step=1, batch_size=4,
                       buffer_size=256, learning_starts=24, reward_scale=100.0, autocast="off")
    learner = DQN(config, (3, 4, 4), device="cpu", seed=0)
    rng = np.random.default_rng(0)
    fragment = _fragment(rng)
    learner.add_fragment(*fragment)
    stored = learner.replay.returns[learner.replay.is_transition]
    np.testing.assert_allclose(np.sort(stored), np.sort(fragment[2].ravel() * 100), rtol=1e-6)
    assert learner.env_steps == 16 and not learner.can_train  # 16 < learning_starts
    learner.add_fragment(*_fragment(rng))
    assert learner.can_train
    metrics = learner.train(3)
    assert metrics["updates"] == 3 and np.isfinite(metrics["loss"]) and metrics["replay_size"] == 32

    buffer = io.BytesIO()
    torch.save(learner.state_dict(), buffer)
    buffer.seek(0)
    twin = DQN(config, (3, 4, 4), device="cpu", seed=1)
    twin.load_state_dict(torch.load(buffer, weights_only=True))
    assert twin.dqn.num_updates == 3 and twin.env_steps == 32
    for name, tensor in learner.get_weights().items():
        assert torch.equal(tensor, twin.get_weights()[name]), name


def test_the_learner_actors_state_travels_as_cpu_tensors_and_loads_back():
    """`Learner.state_dict` (the actor's) maps every tensor to the CPU, through the optimizer's
    nested state, keeping keys, containers and plain values: a CPU-only driver can unpickle
    what a GPU learner sends. (On a CPU learner the mapping is the identity on devices.)"""
    from firebreak.rollout.learner import to_cpu

    config = DQNConfig(network="basic", network_kwargs={"hidden": 8, "num_layers": 1}, n_step=1, batch_size=4,
                       buffer_size=256, learning_starts=16, autocast="off")
    learner = DQN(config, (3, 4, 4), device="cpu", seed=0)
    learner.add_fragment(*_fragment(np.random.default_rng(0)))
    learner.train(2)
    state = learner.state_dict()
    moved = to_cpu(state)
    plain = to_cpu({"a": ("b", 1, None, [torch.ones(2)])})["a"]
    assert isinstance(plain, tuple) and plain[:3] == ("b", 1, None) and torch.equal(plain[3][0], torch.ones(2))
    leaves = []

    def collect(tree):
        if isinstance(tree, torch.Tensor):
            leaves.append(tree)
        elif isinstance(tree, dict):
            for value in tree.values():
                collect(value)
        elif isinstance(tree, (list, tuple)):
            for value in tree:
                collect(value)

    collect(moved)
    assert len(leaves) > 10 and all(t.device.type == "cpu" for t in leaves)
    assert moved["dqn"]["optimizer"]["state"].keys() == state["dqn"]["optimizer"]["state"].keys()  # int keys kept
    twin = DQN(config, (3, 4, 4), device="cpu", seed=1)
    twin.load_state_dict(moved)
    assert twin.dqn.num_updates == 2
    for name, tensor in learner.get_weights().items():
        assert torch.equal(tensor, twin.get_weights()[name]), name
