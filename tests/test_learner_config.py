"""One table of DQN hyperparameters: `DQNConfig` holds the defaults, the YAML's ``learner:``
section exposes every one of them under the same name and default."""

import dataclasses
import typing

import pytest

from firebreak.config import ConfigError, LearnerConfig, load_config
from firebreak.dqn import DQNConfig, Q_NETWORKS
from firebreak.dqn.update import AUTOCAST_DTYPES
from firebreak.train import dqn_config

DQN_FIELDS = [f.name for f in dataclasses.fields(DQNConfig)]
# learner: keys that schedule or place the learner actor; they are no DQN hyperparameters
DRIVER_FIELDS = {"save_replay", "replay_ratio", "weights_every", "num_gpus", "num_cpus", "resources", "max_restarts",
                 "call_timeout_s", "restart_timeout_s"}


def test_every_dqn_hyperparameter_is_a_learner_key_with_the_same_default():
    learner = LearnerConfig()
    missing = [name for name in DQN_FIELDS if name not in LearnerConfig.model_fields]
    assert not missing, f"DQNConfig fields unreachable from YAML: {missing}"
    differ = {name: (getattr(learner, name), getattr(DQNConfig(), name)) for name in DQN_FIELDS
              if getattr(learner, name) != getattr(DQNConfig(), name)}
    assert not differ, f"learner: default vs DQNConfig default: {differ}"
    assert dqn_config(load_config()) == DQNConfig()


def test_every_learner_key_is_a_dqn_hyperparameter_or_a_driver_setting():
    assert set(LearnerConfig.model_fields) == set(DQN_FIELDS) | DRIVER_FIELDS


def test_the_choices_of_the_schema_are_the_dqn_cores():
    annotations = typing.get_type_hints(LearnerConfig)
    assert set(typing.get_args(annotations["network"])) == set(Q_NETWORKS)
    assert set(typing.get_args(annotations["autocast"])) == set(AUTOCAST_DTYPES)


@pytest.mark.parametrize("key, value", [("adam_eps", 1e-8), ("beta_end", 0.9), ("priority_eps", 1e-3),
                                        ("reward_scale", 1.0), ("target_update_every", 7)])
def test_a_yaml_value_reaches_the_dqn_config(tmp_path, key, value):
    path = tmp_path / "c.yaml"
    path.write_text(f"learner:\n  {key}: {value}\n")
    assert getattr(dqn_config(load_config(path)), key) == value


def test_a_bad_hyperparameter_names_its_key():
    with pytest.raises(ConfigError, match=r"learner\.priority_eps: Input should be greater than 0"):
        load_config(overrides=["learner.priority_eps=0"])
