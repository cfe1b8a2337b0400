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


def test_the_config_names_the_dpv_priors_layer_and_scale():
    from firebreak.env import OBSERVATION_LAYERS

    kwargs = load_config(overrides=["learner.network_kwargs={dpv_prior: true}"]).learner.network_kwargs
    assert kwargs == {"dpv_prior": True, "prior_channel": OBSERVATION_LAYERS.index("downstream_protection"),
                      "prior_scale": 100.0}
    scaled = load_config(overrides=["learner.network_kwargs={dpv_prior: true}", "learner.reward_scale=10"])
    assert scaled.learner.network_kwargs["prior_scale"] == 10.0
    assert "prior_channel" not in load_config().learner.network_kwargs


def test_a_checkpoint_from_before_the_prior_took_kwargs_loads_as_it_was_trained(tmp_path):
    import torch

    from firebreak.config import config_from_dict
    from firebreak.dqn import build_q_network
    from firebreak.dqn.checkpoint import CheckpointError, build_policy_network, load_checkpoint, save_checkpoint
    from firebreak.env import OBSERVATION_LAYERS

    old_kwargs = {"channels": 4, "dilations": [1, 2], "dpv_prior": True}  # as written before: no channel, no scale
    torch.manual_seed(0)
    dpv = OBSERVATION_LAYERS.index("downstream_protection")
    trained = build_q_network("residual", len(OBSERVATION_LAYERS), **old_kwargs, prior_channel=dpv).eval()
    config = load_config(overrides=["learner.network_kwargs={channels: 4, dilations: [1, 2], dpv_prior: true}",
                                    "learner.reward_scale=50"]).model_dump()
    config["learner"]["network_kwargs"] = dict(old_kwargs)
    model = {"kind": "residual", "kwargs": dict(old_kwargs), "obs_shape": [len(OBSERVATION_LAYERS), 8, 8],
             "obs_layers": list(OBSERVATION_LAYERS)}
    state = {"dqn": {"q_network": trained.state_dict()}, "env_steps": torch.tensor(0)}
    path = save_checkpoint(tmp_path / "old.pt", learner_state=state, model=model, config=config, counters={})

    payload = load_checkpoint(path)
    assert payload["model"]["kwargs"] == {**old_kwargs, "prior_channel": dpv, "prior_scale": 100.0}
    # --resume compares the checkpoint's network with its config's: the same (scale 100, not reward_scale 50)
    assert config_from_dict(payload["config"]).learner.network_kwargs == payload["model"]["kwargs"]
    obs = torch.rand(2, len(OBSERVATION_LAYERS), 8, 8)
    obs[:, dpv] *= 0.5
    with torch.no_grad():
        torch.testing.assert_close(build_policy_network(payload)(obs), trained(obs))

    model["obs_layers"] = [name for name in OBSERVATION_LAYERS if name != "downstream_protection"]
    save_checkpoint(tmp_path / "foreign.pt", learner_state=state, model=model, config=config, counters={})
    with pytest.raises(CheckpointError, match="foreign.pt: its network has a DPV prior but .* no 'downstream_protection'"):
        load_checkpoint(tmp_path / "foreign.pt")
