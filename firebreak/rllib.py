"""RLlib interoperability: train RLlib's DQN (new API stack) on `FuelBreakEnv`.

Contract
--------
* ``import firebreak.rllib`` registers the env with ``ray.tune.register_env`` as
  ``"firebreak-fuelbreak"`` (`ENV_NAME`; `register` repeats it for a later Ray instance). Its
  ``env_config`` is the ``env:`` section of the yaml config: ``landscapes``, ``budget`` (share of
  cells, 0-1), ``n_scenarios`` (fires per episode), ``invalid_action``. The registered env is
  `FuelBreakEnv` wrapped in `RLlibObservation`.
* Observations for RLlib: ``Dict(observations=Box(H, W, C), action_mask=Box(H * W))``. RLlib's CNN
  encoders expect channels-last images, our env is channels-first (C, H, W), so the wrapper
  transposes (a copy of 17 x H x W float32 per step, ~0.3 MB at 64 x 64, negligible next to a
  fire step). ``action_mask`` is ``env.action_masks()`` as float32 (1 = the cell may be treated).
* Action masking: `MaskedDQNTorchRLModule` is RLlib's ``DefaultDQNTorchRLModule`` with Q-values of
  masked cells set to -inf, in the helper that both the online and the target network go through.
  RLlib's DQN is written for that: exploration draws its random actions among the finite
  Q-values only, and the learner's ``nan_to_num(neginf=0)`` turns the -inf max of a terminal next
  state (no cell left) into 0, which the terminal flag then zeroes. Greedy actions, random actions
  and the double-Q bootstrap therefore never pick a masked cell. The env keeps
  ``invalid_action="raise"`` by default, so a masking bug shows up as an `InvalidActionError` in
  the runner (and a failed sample call) rather than as silent penalties; ``env.invalid_action:
  penalty`` is there for modules that cannot mask.
* Network: RLlib's DQN head is dense (encoder output -> ``head_hiddens`` -> one Q-value per cell),
  so the default CNN encoder strides down to 8 x 8 x 32 on a 64 x 64 tile to keep that head at
  ~2 M weights (dueling value and advantage heads); firebreak's own Q-network is fully
  convolutional instead.
* `build_rllib_dqn(config)` returns the ``DQNConfig``; `train_rllib(config, run_dir)` trains it,
  writes TensorBoard scalars to ``run_dir/tb`` under the tags firebreak's own trainer uses
  (`TB_TAGS`), saves RLlib checkpoints under ``run_dir/checkpoints/`` and returns a summary dict;
  `rllib_policy(algorithm_or_module)` is a greedy, masked policy for `firebreak.evaluate`;
  `main(argv)` is the CLI behind ``train_ray.py --algo rllib-dqn``.
* Ray: `main` starts a private local instance by default (``--address local``, ``run.num_cpus``
  CPUs) and shuts down what it started. `train_rllib` expects Ray to be initialised by its caller.

Fault handling is RLlib's own (``rllib.restart_failed_env_runners``, ``rllib.sample_timeout_s``):
a crashed EnvRunner process is restarted; a hung one is not (its samples are dropped after
``sample_timeout_s`` each iteration, see ``benchmarks/bench_vs_rllib.py``).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
from pydantic import Field

import ray
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.dqn import DQNConfig
from ray.rllib.algorithms.dqn.default_dqn_rl_module import QF_PREDS
from ray.rllib.algorithms.dqn.torch.default_dqn_torch_rl_module import DefaultDQNTorchRLModule
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule, RLModuleSpec
from ray.tune.registry import register_env

from .config import EnvConfig, Section, config_from_dict
from .config import load_config as load_typed_config
from .env import FuelBreakEnv

ENV_NAME = "firebreak-fuelbreak"

#: TensorBoard tags shared with firebreak's own trainer.
TB_TAGS = ("rollout/env_steps_per_s", "episode/return", "episode/burned_fraction",
           "episode/relative_reduction", "learner/loss")

class RLlibSection(Section):
    """RLlib DQN settings (`build_rllib_dqn` maps them onto RLlib's ``DQNConfig``)."""

    lr: float = Field(5e-4, gt=0)
    gamma: float = Field(0.99, gt=0, le=1)
    n_step: int = Field(3, ge=1)
    train_batch_size: int = Field(32, ge=1, description="transitions per learner update")
    replay_capacity: int = Field(5000, ge=1, description="transitions; one costs ~(C + 1) * H * W * 4 bytes "
                                                         "(0.3 MB at 64 x 64)")
    prioritized_replay: bool = True
    num_env_runners: int = Field(1, ge=0, description="0: sample in the driver process")
    num_envs_per_env_runner: int = Field(1, ge=1)
    rollout_fragment_length: int = Field(16, ge=1, description="env steps per runner per sample call")
    min_sample_timesteps_per_iteration: int = Field(200, ge=1, description="env steps per train() iteration "
                                                                           "(at least)")
    num_steps_sampled_before_learning_starts: int = Field(500, ge=0)
    target_network_update_freq: int = Field(500, ge=1, description="env steps")
    epsilon_start: float = Field(1.0, ge=0, le=1)
    epsilon_end: float = Field(0.05, ge=0, le=1)
    epsilon_timesteps: int = Field(10000, ge=1, description="env steps of linear decay")
    double_q: bool = True
    dueling: bool = True
    conv_filters: list[list[int]] = Field([[16, 4, 2], [32, 4, 2], [32, 3, 2]],
                                          description="[out_channels, kernel, stride]; 'same' padding")
    head_hiddens: list[int] = [256]
    sample_timeout_s: float = Field(60.0, gt=0, description="a runner slower than this loses its samples of the "
                                                            "iteration")
    restart_failed_env_runners: bool = True
    seed: int = Field(0, ge=0)


class RLlibRunConfig(Section):
    """Length, checkpoints and evaluation of an RLlib run (written to ``<runs_dir>/<name>/``)."""

    name: str = "rllib_dqn"
    runs_dir: str = "runs"
    iterations: int | None = Field(20, ge=1, description="stop after this many train() iterations ...")
    time_budget_s: float | None = Field(None, gt=0, description="... or after this many seconds, whichever first")
    checkpoint_every: int = Field(10, ge=1, description="iterations; the last iteration is always saved")
    num_cpus: int = Field(2, ge=1, description="CPUs of the private Ray instance of `main` (address 'local')")
    eval_landscapes: int = Field(4, ge=0, description="held-out tiles evaluated by `main`; 0 skips evaluation")
    eval_scenarios: int = Field(16, ge=1)


class RLlibConfig(Section):
    """The ``--algo rllib-dqn`` config: the ``env:`` section of `firebreak.config` (the same
    `EnvConfig`), RLlib's settings and the run's."""

    env: EnvConfig = EnvConfig()
    rllib: RLlibSection = RLlibSection()
    run: RLlibRunConfig = RLlibRunConfig()


#: Every accepted config key with its default (`RLlibConfig`); a key not listed here is an error.
DEFAULT_CONFIG: dict[str, dict[str, Any]] = RLlibConfig().model_dump()


# --- config --------------------------------------------------------------------------------


def resolve_config(config: dict | None = None, source: str = "config") -> dict:
    """Defaults overlaid with `config`, validated by `RLlibConfig`, as a plain dict; raises
    `firebreak.config.ConfigError` (a ValueError) naming `source`, the key and what is allowed."""
    return config_from_dict(config or {}, source, RLlibConfig).model_dump()


def load_config(path: str | os.PathLike, overrides: list[str] = ()) -> dict:
    """Read a yaml config, apply ``section.key=value`` overrides (values parsed as yaml), validate."""
    return load_typed_config(path, list(overrides), RLlibConfig).model_dump()


# --- env -----------------------------------------------------------------------------------


class RLlibObservation(gym.ObservationWrapper):
    """`FuelBreakEnv` observations as RLlib wants them: ``{"observations": (H, W, C) float32,
    "action_mask": (H * W,) float32}`` (channels-last for RLlib's CNN encoders; mask 1 = valid)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        box = env.observation_space
        channels, rows, cols = box.shape
        self.observation_space = gym.spaces.Dict({
            "observations": gym.spaces.Box(float(box.low.min()), float(box.high.max()), (rows, cols, channels),
                                           np.float32),
            "action_mask": gym.spaces.Box(0.0, 1.0, (rows * cols,), np.float32),
        })

    def observation(self, observation: np.ndarray) -> dict[str, np.ndarray]:
        return {"observations": np.ascontiguousarray(np.moveaxis(observation, 0, -1)),
                "action_mask": self.env.unwrapped.action_masks().astype(np.float32)}


def make_env(env_config: dict) -> RLlibObservation:
    """The registered env creator: ``env_config`` holds the ``env:`` section's keys."""
    env = dict(env_config)  # RLlib passes an EnvContext; only its dict entries matter here
    return RLlibObservation(FuelBreakEnv(env["landscapes"], budget=env["budget"], n_scenarios=env["n_scenarios"],
                                         invalid_action=env["invalid_action"],
                                         fire_count_layer=env.get("fire_count_layer", False)))


def register() -> None:
    """Register `make_env` as `ENV_NAME` with Tune's registry. Done at import; call it again after
    starting another Ray instance in the same process: the registry copies its entries into a
    Ray instance only once, at the first ``ray.init``."""
    register_env(ENV_NAME, make_env)


register()


# --- module --------------------------------------------------------------------------------


class MaskedDQNTorchRLModule(DefaultDQNTorchRLModule):
    """RLlib's default DQN module (CNN encoder, optional dueling heads) on the ``observations``
    entry of a Dict observation, with the Q-values of cells whose ``action_mask`` is 0 set to -inf
    (see the module docstring for why that is enough for RLlib's DQN)."""

    def __init__(self, *, observation_space: gym.spaces.Dict | None = None, **kwargs):
        if not isinstance(observation_space, gym.spaces.Dict) or set(observation_space) != {"observations",
                                                                                              "action_mask"}:
            raise ValueError(f"MaskedDQNTorchRLModule needs Dict(observations=..., action_mask=...) observations "
                             f"(wrap the env in RLlibObservation), got {observation_space}")
        self._observation_space_with_mask = observation_space
        # The catalog builds the encoder for the image part only.
        super().__init__(observation_space=observation_space["observations"], **kwargs)

    def setup(self):
        super().setup()
        # Connectors and checkpoints must see the space the env really produces.
        self.observation_space = self._observation_space_with_mask

    def _qf_forward_helper(self, batch, encoder, head):
        observation = batch[Columns.OBS]
        output = super()._qf_forward_helper({**batch, Columns.OBS: observation["observations"]}, encoder, head)
        output[QF_PREDS] = output[QF_PREDS].masked_fill(observation["action_mask"] < 0.5, float("-inf"))
        return output


class _EpisodeMetrics(RLlibCallback):
    """Logs the final step's burned_fraction and relative_reduction of each finished episode
    (an episode lost to a crash never reaches here, so it is not averaged in)."""

    def on_episode_end(self, *, episode, metrics_logger=None, **kwargs):
        info = episode.get_infos(-1)
        for key in ("burned_fraction", "relative_reduction"):
            metrics_logger.log_value(key, float(info[key]), reduce="mean", window=100)


def build_rllib_dqn(config: dict) -> DQNConfig:
    """RLlib DQN config (new API stack, torch, one local learner) for a config dict with the
    sections of `RLlibConfig` (missing keys take the defaults, unknown keys raise)."""
    config = resolve_config(config)
    env, r = config["env"], config["rllib"]
    replay = {"type": "PrioritizedEpisodeReplayBuffer" if r["prioritized_replay"] else "EpisodeReplayBuffer",
              "capacity": r["replay_capacity"]}
    if r["prioritized_replay"]:
        replay.update(alpha=0.6, beta=0.4)
    model_config = {"conv_filters": r["conv_filters"], "head_fcnet_hiddens": r["head_hiddens"]}
    return (
        DQNConfig()
        .environment(ENV_NAME, env_config=dict(env))
        .framework("torch")
        .env_runners(num_env_runners=r["num_env_runners"], num_envs_per_env_runner=r["num_envs_per_env_runner"],
                     rollout_fragment_length=r["rollout_fragment_length"], sample_timeout_s=r["sample_timeout_s"])
        .learners(num_learners=0)
        .fault_tolerance(restart_failed_env_runners=r["restart_failed_env_runners"])
        .reporting(min_sample_timesteps_per_iteration=r["min_sample_timesteps_per_iteration"])
        .rl_module(rl_module_spec=RLModuleSpec(module_class=MaskedDQNTorchRLModule, model_config=model_config))
        .callbacks(_EpisodeMetrics)
        .debugging(seed=r["seed"])
        .training(
            lr=r["lr"], gamma=r["gamma"], n_step=r["n_step"], train_batch_size_per_learner=r["train_batch_size"],
            replay_buffer_config=replay, double_q=r["double_q"], dueling=r["dueling"],
            num_steps_sampled_before_learning_starts=r["num_steps_sampled_before_learning_starts"],
            target_network_update_freq=r["target_network_update_freq"],
            epsilon=[(0, r["epsilon_start"]), (r["epsilon_timesteps"], r["epsilon_end"])],
        )
    )


# --- training ------------------------------------------------------------------------------


def _scalars(result: dict, env_steps: int, seconds: float) -> dict[str, float]:
    """The `TB_TAGS` scalars after one ``Algorithm.train()``: env steps/s since training started
    (as firebreak's trainer logs it), RLlib's means over the last 100 finished episodes (firebreak
    logs each episode) and the iteration's mean loss. Tags RLlib has no value for yet (no finished
    episode, learning not started) are left out, not filled in."""
    runners = result.get("env_runners", {})
    learner = result.get("learners", {}).get("default_policy", {})
    values = {
        "rollout/env_steps_per_s": env_steps / seconds,
        "episode/return": runners.get("episode_return_mean"),
        "episode/burned_fraction": runners.get("burned_fraction"),
        "episode/relative_reduction": runners.get("relative_reduction"),
        "learner/loss": learner.get("qf_loss"),
    }
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(float(v))}


def _save_checkpoint(algorithm: Algorithm, checkpoints: Path, iteration: int) -> Path:
    """Save to a temp folder, then rename: a crash mid-save never leaves a half checkpoint
    under the final name."""
    checkpoints.mkdir(parents=True, exist_ok=True)
    final = checkpoints / f"iter_{iteration:06d}"
    partial = Path(tempfile.mkdtemp(prefix=".partial_", dir=checkpoints))
    algorithm.save_to_path(str(partial))
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)
    return final


def train_rllib(config: dict, run_dir: str | os.PathLike, *, iterations: int | None = None,
                time_budget_s: float | None = None, keep_algorithm: bool = False) -> dict:
    """Train RLlib's DQN; Ray must already be initialised (see `main`).

    Stops after ``iterations`` train() iterations or ``time_budget_s`` seconds of wall time
    (checked between iterations), whichever comes first; both default to ``config["run"]``.
    Writes `TB_TAGS` to ``run_dir/tb`` (x axis: env steps sampled so far) and checkpoints to
    ``run_dir/checkpoints/iter_NNNNNN`` (every ``run.checkpoint_every`` iterations and at the end).

    Returns: iterations, env_steps, wall_s, checkpoint (path of the last one), scalars (the last
    value of each tag), history (scalars per iteration) and, with ``keep_algorithm``, algorithm
    (the caller then owns it and must call ``algorithm.stop()``).
    """
    from torch.utils.tensorboard import SummaryWriter

    config = resolve_config(config)
    run = config["run"]
    iterations = run["iterations"] if iterations is None else iterations
    time_budget_s = run["time_budget_s"] if time_budget_s is None else time_budget_s
    if iterations is None and time_budget_s is None:
        raise ValueError("train_rllib: give run.iterations or run.time_budget_s, or it never stops")
    run_dir = Path(run_dir)
    register()  # this process may have started Ray more than once (tests, benchmarks)
    algorithm = build_rllib_dqn(config).build_algo()
    writer = SummaryWriter(str(run_dir / "tb"))
    history, env_steps, checkpoint, iteration = [], 0, None, 0
    started = time.perf_counter()
    try:
        while (iterations is None or iteration < iterations) and (
                time_budget_s is None or time.perf_counter() - started < time_budget_s):
            result = algorithm.train()
            iteration += 1
            env_steps = int(result["env_runners"]["num_env_steps_sampled_lifetime"])
            scalars = _scalars(result, env_steps, time.perf_counter() - started)
            for tag, value in scalars.items():
                writer.add_scalar(tag, value, env_steps)
            history.append(scalars)
            if iteration % run["checkpoint_every"] == 0:
                checkpoint = _save_checkpoint(algorithm, run_dir / "checkpoints", iteration)
        if checkpoint is None or checkpoint.name != f"iter_{iteration:06d}":
            checkpoint = _save_checkpoint(algorithm, run_dir / "checkpoints", iteration)
    finally:
        writer.close()
        if not keep_algorithm:
            algorithm.stop()
    summary = {"iterations": iteration, "env_steps": env_steps, "wall_s": time.perf_counter() - started,
               "checkpoint": checkpoint, "scalars": history[-1] if history else {}, "history": history}
    if keep_algorithm:
        summary["algorithm"] = algorithm
    return summary


# --- evaluation ----------------------------------------------------------------------------


def load_module(checkpoint: str | os.PathLike) -> RLModule:
    """The trained RLModule of an algorithm checkpoint written by `train_rllib` (no Ray needed)."""
    path = Path(checkpoint) / "learner_group" / "learner" / "rl_module" / "default_policy"
    if not path.is_dir():
        raise ValueError(f"{checkpoint}: not an RLlib DQN checkpoint of firebreak.rllib (no {path})")
    return RLModule.from_checkpoint(path)


def rllib_policy(algorithm: Algorithm | RLModule) -> Callable[[FuelBreakEnv], int]:
    """A greedy, masked policy ``policy(env) -> action`` for `firebreak.evaluate.evaluate`, from a
    trained Algorithm (its current module) or an RLModule (e.g. `load_module`). ``env`` is a plain
    `FuelBreakEnv` (channels-first); the observation is rebuilt the way `RLlibObservation` does."""
    import torch

    module = algorithm.get_module() if isinstance(algorithm, Algorithm) else algorithm
    module.eval()

    def policy(env: FuelBreakEnv) -> int:
        # FuelBreakEnv has no public accessor for its current observation; evaluate() hands us the env.
        observation = np.moveaxis(env._obs, 0, -1)
        batch = {Columns.OBS: {"observations": torch.from_numpy(np.ascontiguousarray(observation))[None],
                               "action_mask": torch.from_numpy(env.action_masks().astype(np.float32))[None]}}
        with torch.no_grad():
            return int(module.forward_inference(batch)[Columns.ACTIONS][0])

    return policy


# --- CLI -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python train_ray.py --algo rllib-dqn --config ray_configs/rllib_dqn.yaml [--set k.s=v]``."""
    parser = argparse.ArgumentParser(prog="train_ray.py --algo rllib-dqn",
                                     description="Train RLlib's DQN on FuelBreakEnv, then evaluate on held-out tiles.")
    parser.add_argument("--config", required=True, help="yaml config (see ray_configs/rllib_dqn.yaml)")
    parser.add_argument("--address", default="local",
                        help="Ray address: 'local' (default) starts a private instance with run.num_cpus CPUs; "
                             "'auto' or host:port joins a running cluster")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value (repeatable), e.g. --set rllib.lr=0.001")
    args = parser.parse_args(argv)
    config = load_config(args.config, args.set)
    run = config["run"]
    run_dir = Path(run["runs_dir"]) / run["name"]
    if args.address == "local":
        # Short private temp dir: Ray's socket paths must stay under 107 characters.
        temp_dir = tempfile.mkdtemp(prefix="rl_", dir="/tmp")
        ray.init(address="local", num_cpus=run["num_cpus"], include_dashboard=False, _temp_dir=temp_dir)
    else:
        ray.init(address=args.address)
    try:
        summary = train_rllib(config, run_dir)
    finally:
        ray.shutdown()
    print(f"{summary['iterations']} iterations, {summary['env_steps']} env steps in {summary['wall_s']:.0f} s; "
          f"checkpoint {summary['checkpoint']}; TensorBoard: tensorboard --logdir {run_dir / 'tb'}")
    if run["eval_landscapes"] > 0:
        from .evaluate import evaluate, format_table
        from .landscape import sample_tiles
        from .placement import BASELINES

        # The Q-head has one output per cell: evaluate on held-out tiles of the trained size.
        rows, cols = make_env(config["env"]).unwrapped.shape
        tiles = sample_tiles(rows, "holdout")[: run["eval_landscapes"]]
        module = load_module(summary["checkpoint"])
        results = evaluate({"random": BASELINES["random"], "rllib-dqn": lambda seed: rllib_policy(module)}, tiles,
                           budget=config["env"]["budget"], n_scenarios=run["eval_scenarios"])
        print(f"{len(tiles)} held-out {rows}x{cols} tiles, budget {config['env']['budget']:.0%}, "
              f"{run['eval_scenarios']} scoring fires each")
        print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
