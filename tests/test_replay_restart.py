"""A learner actor restarted by Ray reloads the replay saved with the latest checkpoint."""


import numpy as np
import pytest
import ray

from firebreak.config import load_config
from firebreak.rollout.fragment import Fragment, Transitions
from firebreak.rollout.learner import create_learner
from firebreak.rollout.restore_point import create_restore_point, update_restore_point
from firebreak.train import dqn_config
from tests.rollout_fixtures import ray_local, restart_learner  # noqa: F401
from tests.test_replay_persistence import CONFIGS

SHAPE = (18, 24, 24)


def random_fragment(rng, steps: int = 16) -> Fragment:
    obs = rng.random((1, steps + 1, *SHAPE)).astype(np.float16)  # one env, one episode
    cells = SHAPE[1] * SHAPE[2]
    arrays = Transitions(obs[:, :-1], rng.integers(0, cells, (1, steps)), rng.random((1, steps)).astype(np.float32),
                         np.zeros((1, steps), bool), np.zeros((1, steps), bool), obs[:, -1:][0],
                         np.ones((1, steps, cells), bool))
    return Fragment(0, 0, 1, steps, [], 0.0, 0.0, 0.0, 0, transitions=[ray.put(arrays)])


@pytest.mark.timeout(120)
def test_a_restarted_learner_continues_with_the_saved_replay(ray_local, tmp_path):  # noqa: F811
    config = dqn_config(load_config(CONFIGS / "smoke.yaml", ["learner.learning_starts=32"]))
    restore_point = create_restore_point()
    learner = create_learner(config, SHAPE, restore_point, 0, num_gpus="auto", max_restarts=2)
    rng = np.random.default_rng(0)
    for _ in range(2):
        ray.get(learner.add_fragment.remote(random_fragment(rng)))
    ray.get(learner.save_replay.remote(str(tmp_path / "latest.replay.npz")))
    ray.get(update_restore_point(restore_point, ray.get(learner.state_dict.remote())))  # what checkpoint("latest.pt") does
    info = restart_learner(learner)
    assert info["restored"]
    result = ray.get(learner.train.remote(1))
    assert result["replay_size"] == 32 and "loss" in result  # past learning_starts at once: no refill
    ray.kill(learner)
    ray.kill(restore_point)
