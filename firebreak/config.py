"""The training configuration: one typed, validated schema, read from ``ray_configs/*.yaml``.

`load_config(path, overrides)` returns a `Config`; an unknown key, a wrong type or an
impossible value raises one `ConfigError` naming the key, the value and what is allowed.
Overrides are ``section.key=value`` strings (``--set learner.lr=3e-4``), values parsed as YAML.
`Config.model_dump()` is the resolved config saved with every run and checkpoint.
"""

from __future__ import annotations

from dataclasses import MISSING
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .dqn.networks import DPV_LAYER
from .dqn.update import DQNConfig


class ConfigError(ValueError):
    """A bad configuration: the message names the file, the key, the value and what is allowed."""


class Section(BaseModel):
    """A config section: unknown keys are errors, assignments are validated too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EnvConfig(Section):
    """`firebreak.env.FuelBreakEnv` arguments."""

    landscapes: list[str] = ["sample:64:train", "synthetic:64"]
    budget: float = Field(0.05, gt=0, lt=1, description="share of cells treated per episode")
    n_scenarios: int | list[int] = Field(16, description="fires per episode, or a list of counts (one drawn per episode)")
    invalid_action: Literal["raise", "penalty"] = "raise"
    fire_count_layer: bool = Field(False, description="observe the planning-fire count (a last layer): for a policy "
                                   "trained across counts, n_scenarios a list")

    @field_validator("n_scenarios")
    @classmethod
    def _fire_counts(cls, value):
        counts = [value] if isinstance(value, int) else value
        if not counts or min(counts) < 1:
            raise ValueError("give a positive number of fires per episode, or a non-empty list of them, e.g. [64, 256]")
        return value


class RolloutConfig(Section):
    """Env runners and their supervisor (`firebreak.rollout`). ``runners: 0`` steps the envs in
    the driver process, without actors: the debugging mode."""

    runners: int = Field(2, ge=0)
    envs_per_runner: int = Field(1, ge=1)
    fragment_length: int = Field(32, ge=1, description="steps per env per sample call")
    sample_timeout_s: float | None = Field(None, gt=0, description="None: derived from fragment times")
    min_timeout_s: float = Field(30.0, gt=0)
    first_timeout_s: float = Field(180.0, gt=0, description="deadline until fragment times are known (JIT)")
    restart_timeout_s: float = Field(60.0, gt=0, description="how long a (re)starting runner may take to answer, "
                                     "seconds; past it the runner is replaced by a fresh actor")
    max_restarts: int = Field(-1, ge=-1, description="Ray restarts per actor before a fresh one; -1 unlimited")
    max_consecutive_failures: int = Field(5, ge=1)
    num_cpus_per_runner: float = Field(1.0, gt=0)
    runner_resources: dict[str, float] = {}
    memory_limit_mb: float | None = Field(None, gt=0, description="recycle a runner above this RSS")
    stall_factor: float | None = Field(20.0, gt=0, description="an env step running longer than this x the recent "
                                       "median step time (and stall_floor_s) is a hang; null: deadline only")
    stall_floor_s: float = Field(0.5, ge=0, description="the least time a step may take before it is a hang, seconds")
    chunk_length: int | None = Field(8, ge=1, description="a runner streams each fragment in chunks of this many "
                                     "steps per env, so a crash loses at most one chunk; null: one chunk")
    spare_runners: int = Field(0, ge=0, description="idle started runners that take a failed runner's slot at once "
                                                    "(each reserves num_cpus_per_runner)")
    isolate_envs: bool = Field(False, description="each env in a process of its own, forked from a warm template: the "
                               "runner respawns a crashed or hung env in milliseconds instead of being restarted "
                               "(one template plus one process per env, ~0.3 GB + ~35 MB each for FuelBreakEnv; memory_limit_mb then "
                               "counts them too)")


class ExplorationConfig(Section):
    """Epsilon: a base value that decays linearly, spread over runners Ape-X style
    (runner i: base ** (1 + apex_alpha * i / (N - 1)))."""

    epsilon_start: float = Field(1.0, ge=0, le=1)
    epsilon_end: float = Field(0.05, ge=0, le=1)
    decay_env_steps: int = Field(20_000, ge=1)
    apex_alpha: float = Field(3.0, ge=0)


def _dqn(name: str, **constraints: Any) -> Any:
    """A `LearnerConfig` field with `DQNConfig`'s default for `name`: the defaults live in one table."""
    spec = DQNConfig.__dataclass_fields__[name]
    if spec.default_factory is not MISSING:
        return Field(default_factory=spec.default_factory, **constraints)
    return Field(spec.default, **constraints)


class LearnerConfig(Section):
    """The DQN learner: every `firebreak.dqn.DQNConfig` field, with its default (the first block),
    plus scheduling and placement of the learner actor."""

    network: Literal["basic", "residual", "dueling"] = _dqn("network")
    network_kwargs: dict[str, Any] = _dqn("network_kwargs", description="keyword arguments of the network class "
                                          "(firebreak/dqn/networks.py)")
    gamma: float = _dqn("gamma", gt=0, le=1)
    n_step: int = _dqn("n_step", ge=1)
    double: bool = _dqn("double", description="Double DQN: the online network picks the bootstrap action")
    lr: float = _dqn("lr", gt=0)
    adam_eps: float = _dqn("adam_eps", gt=0, description="Adam's epsilon")
    batch_size: int = _dqn("batch_size", ge=1)
    huber_delta: float = _dqn("huber_delta", gt=0)
    max_grad_norm: float = _dqn("max_grad_norm", gt=0)
    target_update_every: int = _dqn("target_update_every", ge=1, description="updates between target syncs")
    tau: float = _dqn("tau", gt=0, le=1, description="1 = hard copy, < 1 = Polyak")
    buffer_size: int = _dqn("buffer_size", ge=1, description="replay capacity in transitions")
    learning_starts: int = _dqn("learning_starts", ge=0, description="transitions in the replay before the first "
                                "update; a resumed run whose replay was not saved refills that many first")
    alpha: float = _dqn("alpha", ge=0, description="priority exponent (0: uniform replay)")
    beta_start: float = _dqn("beta_start", ge=0, le=1, description="importance-sampling exponent at update 0")
    beta_end: float = _dqn("beta_end", ge=0, le=1, description="... reached after beta_anneal_updates updates")
    beta_anneal_updates: int = _dqn("beta_anneal_updates", ge=1)
    priority_eps: float = _dqn("priority_eps", gt=0, description="added to |TD error|: no transition gets priority 0")
    autocast: Literal["bf16", "fp16", "off"] = _dqn("autocast", description="CUDA autocast dtype (ignored on CPU)")
    reward_scale: float = _dqn("reward_scale", gt=0, description="rewards x this in the replay: Q in % of burnable "
                               "cells at 100")
    demo_loss_weight: float = _dqn("demo_loss_weight", ge=0, description="weight of the expert-value loss on "
                                   "demonstrations")
    demo_batch_fraction: float = _dqn("demo_batch_fraction", ge=0, le=1, description="share of each batch from "
                                      "demonstrations")
    # scheduling and placement (the driver's, not DQNConfig's)
    save_replay: bool = Field(False, description="write the replay next to every latest.pt "
                              "(checkpoints/latest.replay.npz): --resume and a restarted learner continue with it")
    replay_ratio: float = Field(0.25, gt=0, description="gradient updates per env step")
    weights_every: int = Field(50, ge=1, description="updates between weight broadcasts")
    num_gpus: float | Literal["auto"] = Field("auto", description="'auto': 1 when the cluster has a GPU")
    num_cpus: float = Field(1.0, ge=0, description="CPUs reserved for the learner actor")
    resources: dict[str, float] = Field({}, description="custom resources, e.g. {learner: 1} on a cluster")
    max_restarts: int = Field(3, ge=-1, description="Ray restarts of the learner actor; -1 unlimited")
    call_timeout_s: float = Field(300.0, gt=0, description="deadline of every driver->learner call, seconds: "
                                  "past it the learner is hung, killed and restarted from the latest checkpoint")
    restart_timeout_s: float = Field(900.0, gt=0, description="wait for a restarted learner, seconds (a lost GPU "
                                     "node takes the autoscaler minutes)")

    @model_validator(mode="after")
    def _prior_inputs(self) -> "LearnerConfig":
        # The DPV prior reads one env layer in reward units; the DQN core knows neither, so the
        # resolved config (saved in every checkpoint) names both. In place: no re-validation.
        if self.network_kwargs.get("dpv_prior"):
            from .env import OBSERVATION_LAYERS

            self.network_kwargs.setdefault("prior_channel", OBSERVATION_LAYERS.index(DPV_LAYER))
            self.network_kwargs.setdefault("prior_scale", self.reward_scale)
        return self


class DemonstrationsConfig(Section):
    """Warm start from the DPV heuristic (`firebreak.demonstrations`): play `episodes` expert
    episodes, pre-train the learner on them for `pretrain_updates` updates, and keep them in
    every later batch (learner.demo_batch_fraction). ``episodes: 0`` turns it off."""

    episodes: int = Field(0, ge=0, description="expert episodes (0: no warm start)")
    expert_scenarios: int | str = Field(256, description="fires the expert plans on: a count, '<k>x' (k times the "
                                                         "agent's fires of that episode), or 0 (the agent's own)")
    pretrain_updates: int = Field(1000, ge=0, description="updates on demonstrations alone before sampling")

    @field_validator("expert_scenarios")
    @classmethod
    def _expert_fires(cls, value):
        from .demonstrations import expert_fire_count

        expert_fire_count(value, 1)  # raises ValueError with the accepted forms
        return value


class FaultsConfig(Section):
    """Fault injection into every env (`firebreak.rollout.FaultInjector`), per-step probabilities."""

    enabled: bool = False
    seed: int = 0
    p_exit: float = Field(0.0, ge=0, le=1)
    p_sigkill: float = Field(0.0, ge=0, le=1)
    p_sigsegv: float = Field(0.0, ge=0, le=1)
    p_hang: float = Field(0.0, ge=0, le=1)
    p_busy_hang: float = Field(0.0, ge=0, le=1)
    p_raise: float = Field(0.0, ge=0, le=1)
    p_slow: float = Field(0.0, ge=0, le=1)
    slow_s: float = Field(1.0, ge=0)


class RunConfig(Section):
    """Length, evaluation, checkpoints and where the run is written (``<out_dir>/<name>/``)."""

    name: str = "local"
    out_dir: str = "runs"
    total_env_steps: int = Field(20_000, ge=1)
    time_budget_s: float | None = Field(None, gt=0, description="also stop after this much wall time, seconds")
    seed: int = Field(0, ge=0, lt=2**31, description="training seeds stay below 2**31 (evaluation uses 2**40+)")
    eval_every_env_steps: int = Field(5_000, ge=1)
    # best.pt is picked by this evaluation: on training tiles (with fires never trained on), so
    # that the held-out tiles stay unseen until `python -m firebreak.evaluate` reports on them.
    eval_landscapes: str = "sample:64:train"
    eval_tiles: int = Field(4, ge=1, description="tiles used by the periodic evaluation (it selects best.pt)")
    eval_scenarios: int = Field(16, ge=1)
    eval_timeout_s: float = Field(1800.0, gt=0, description="deadline of one evaluation task, seconds (the first "
                                  "also plays every baseline); past it the task is cancelled and training goes on")
    checkpoint_every_env_steps: int = Field(5_000, ge=1)
    keep_step_checkpoints: bool = True
    num_cpus: int | None = Field(None, ge=1, description="CPUs of a local Ray instance (None: all)")


class Config(Section):
    env: EnvConfig = EnvConfig()
    rollout: RolloutConfig = RolloutConfig()
    exploration: ExplorationConfig = ExplorationConfig()
    learner: LearnerConfig = LearnerConfig()
    demonstrations: DemonstrationsConfig = DemonstrationsConfig()
    faults: FaultsConfig = FaultsConfig()
    run: RunConfig = RunConfig()

    @model_validator(mode="after")
    def _consistent(self) -> "Config":
        if self.exploration.epsilon_end > self.exploration.epsilon_start:
            raise ValueError("exploration.epsilon_end must not exceed exploration.epsilon_start")
        if self.rollout.chunk_length is not None and self.rollout.chunk_length > self.rollout.fragment_length:
            raise ValueError(f"rollout.chunk_length ({self.rollout.chunk_length}) must not exceed rollout.fragment_length "
                             f"({self.rollout.fragment_length}); null streams one chunk per fragment")
        if self.learner.buffer_size < self.rollout.envs_per_runner * self.rollout.fragment_length * 2:
            raise ValueError("learner.buffer_size must hold at least two fragments "
                             "(2 x rollout.envs_per_runner x rollout.fragment_length)")
        return self


Schema = TypeVar("Schema", bound=BaseModel)


def _explain(error: ValidationError, source: str, schema: type[BaseModel]) -> str:
    lines = [f"{source}: invalid configuration"]
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        value = item.get("input")
        if item["type"] == "extra_forbidden":
            section = item["loc"][:-1]
            model = schema
            for part in section:
                model = model.model_fields[str(part)].annotation
            allowed = ", ".join(model.model_fields)
            lines.append(f"  {key}: unknown key (value {value!r}); allowed keys here: {allowed}")
        else:
            lines.append(f"  {key}: {item['msg']} (got {value!r})")
    return "\n".join(lines)


def _set(tree: dict, dotted: str, value: Any, source: str) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: --set {dotted}: '{part}' is not a section")
    node[leaf] = value


def parse_overrides(overrides: list[str]) -> dict:
    """``["learner.lr=3e-4", "run.name=x"]`` -> nested dict; values are parsed as YAML."""
    tree: dict = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. --set learner.lr=3e-4")
        _set(tree, key.strip(), yaml.safe_load(raw), "--set")
    return tree


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def config_from_dict(data: dict, source: str = "<config>", schema: type[Schema] = Config) -> Schema:
    """Validate a nested dict against `schema` (a model of `Section`s: `Config`, or e.g.
    `firebreak.rllib.RLlibConfig`); errors become one `ConfigError` naming keys, values and what is allowed."""
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_explain(err, source, schema)) from None


def apply_overrides(data: dict, overrides: list[str], source: str) -> Config:
    """Validate a config dict (e.g. a checkpoint's) after applying ``section.key=value`` overrides."""
    return config_from_dict(_merge(data, parse_overrides(overrides)), source)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                schema: type[Schema] = Config) -> Schema:
    """Read a YAML config (None: all defaults) and apply ``section.key=value`` overrides;
    validated against `schema` (default: the training `Config`)."""
    data: dict = {}
    source = "<defaults>"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file (see ray_configs/ for examples)")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({err})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections "
                              f"({', '.join(schema.model_fields)})")
    return config_from_dict(_merge(data, parse_overrides(overrides or [])), source, schema)
