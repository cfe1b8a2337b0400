"""firebreak.rllib: RLlib's DQN trains on FuelBreakEnv, masks invalid cells, logs our TensorBoard tags,
checkpoints, and rejects unknown config keys."""

from pathlib import Path

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from firebreak.config import EnvConfig
from firebreak.env import FuelBreakEnv
from firebreak.rllib import TB_TAGS, build_rllib_dqn, load_config, load_module, make_env, resolve_config, \
    rllib_policy, train_rllib
from tests.rollout_fixtures import ray_local  # noqa: F401  (a private local Ray instance)

# Small enough for ~1 minute on 2 shared cores: 16 x 16 synthetic tiles (13 breaks per episode), 2 fires.
TINY = {
    "env": {"landscapes": ["synthetic:16"], "n_scenarios": 2},
    "rllib": {"num_env_runners": 1, "train_batch_size": 8, "replay_capacity": 500, "rollout_fragment_length": 4,
              "min_sample_timesteps_per_iteration": 24, "num_steps_sampled_before_learning_starts": 16,
              "conv_filters": [[4, 3, 1]], "head_hiddens": [32]},
    "run": {"iterations": 2, "checkpoint_every": 1},
}


def test_unknown_config_key_fails_clearly(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("env:\n  budget: 0.05\nrllib:\n  lr: 0.001\n  replay_capacty: 100\n")
    with pytest.raises(ValueError, match=r"bad.yaml: invalid configuration\n  rllib.replay_capacty: unknown key "
                                         r"\(value 100\); allowed keys here: lr, gamma"):
        load_config(path)
    with pytest.raises(ValueError, match=r"learner: unknown key \(value \{\}\); allowed keys here: env, rllib, run"):
        resolve_config({"learner": {}})
    with pytest.raises(ValueError, match=r"rllib.num_env_runners: Input should be a valid integer.*got 'two'"):
        load_config(_write(tmp_path, "rllib:\n  num_env_runners: two\n"))
    # the env: section is the training config's: the same checks
    with pytest.raises(ValueError, match=r"env.budget: Input should be less than 1"):
        resolve_config({"env": {"budget": 5}})
    assert load_config(_write(tmp_path, "rllib:\n  lr: 0.001\n"), ["run.time_budget_s=30"])["run"]["time_budget_s"] == 30
    assert resolve_config()["env"] == EnvConfig().model_dump()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_masked_module_never_picks_an_invalid_cell():
    """Greedy and fully random (epsilon 1) actions stay inside the action mask."""
    config = resolve_config({**TINY, "rllib": {**TINY["rllib"], "epsilon_start": 1.0, "epsilon_end": 1.0}})
    env = make_env(config["env"])
    module = build_rllib_dqn(config).get_rl_module_spec(env=env).build()
    observation, _ = env.reset(seed=0)
    mask = np.zeros_like(observation["action_mask"])
    valid = np.flatnonzero(observation["action_mask"])[:3]
    mask[valid] = 1.0
    batch = {Columns.OBS: {"observations": torch.from_numpy(observation["observations"]).repeat(64, 1, 1, 1),
                           "action_mask": torch.from_numpy(mask).repeat(64, 1)}}
    with torch.no_grad():
        explored = module.forward_exploration(batch, t=0)[Columns.ACTIONS].numpy()
        greedy = module.forward_inference(batch)[Columns.ACTIONS].numpy()
    assert set(explored) <= set(valid) and set(greedy) <= set(valid)
    assert len(set(explored)) > 1  # really random among the valid cells


@pytest.mark.timeout(300)
def test_rllib_dqn_trains_two_iterations_and_logs_our_tags(ray_local, tmp_path):  # noqa: F811
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    summary = train_rllib(TINY, tmp_path)
    assert summary["iterations"] == 2 and summary["env_steps"] >= 48
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert set(TB_TAGS) <= set(events.Tags()["scalars"])  # learning starts after 16 steps, episodes last 13
    assert np.isfinite(events.Scalars("learner/loss")[-1].value)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["iter_000001", "iter_000002"]

    # The checkpointed module is a greedy, masked policy for firebreak.evaluate (16 x 16 real tile).
    policy = rllib_policy(load_module(summary["checkpoint"]))
    env = FuelBreakEnv(["sample:16:holdout"], n_scenarios=2)  # invalid_action="raise"
    env.reset(seed=1)
    done = False
    while not done:
        done = env.step(policy(env))[2]
    assert env.simulator.breaks.sum() == env._budget_cells
