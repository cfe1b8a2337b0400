"""The training app end to end on a private Ray instance: smoke, resume, SIGTERM, scheduled and random
faults, checkpoints, config."""

import inspect
import math
import os
import signal
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import firebreak.rollout
import firebreak.train
from firebreak.config import ConfigError, RolloutConfig, load_config
from firebreak.dqn.checkpoint import CheckpointError, build_policy_network, load_checkpoint
from firebreak.env import FIRE_COUNT_LAYER, OBSERVATION_LAYERS
from firebreak.evaluate import checkpoint_policy, evaluate
from firebreak.landscape import synthetic_landscape
from firebreak.placement import BASELINES
from firebreak.rollout import read_injections
from firebreak.train import _check_cpus, _Run, train
from firebreak.viz import load_policy
from tests.rollout_fixtures import ray_local  # noqa: F401
from tests.scheduled_faults import ScheduledEnvFactory

CONFIGS = Path(__file__).parents[1] / "ray_configs"


def _cfg(name: str, tmp_path: Path, *overrides: str):
    return load_config(CONFIGS / f"{name}.yaml", [f"run.out_dir={tmp_path}", *overrides])


def _scalars(run_dir: Path) -> dict[str, list[float]]:
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


# the smoke run warm-starts from 2 expert episodes (Ray tasks) and 20 pre-training updates
DEMOS = ("demonstrations.episodes=2", "demonstrations.expert_scenarios=8", "demonstrations.pretrain_updates=20")


@pytest.fixture(scope="module")
def smoke_run(ray_local, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("runs")
    summary = train(_cfg("smoke", out, "run.total_env_steps=320", "run.eval_every_env_steps=160",
                         "run.checkpoint_every_env_steps=160", *DEMOS), progress=False)
    return out, summary


@pytest.mark.timeout(300)
def test_smoke_training_runs_logs_and_writes_its_checkpoints(smoke_run):
    """The app's plumbing, not learning: 320 steps teach nothing measurable. Learning is tested
    where it can be: test_dqn_update.py (the loss falls on a fixed batch), test_dqn_demonstrations.py
    (pre-training learns the expert's ranking)."""
    out, summary = smoke_run
    run_dir = Path(summary["run_dir"])
    assert summary["env_steps"] >= 320 and summary["updates"] > 50 and summary["episodes"] > 0
    assert summary["pretrain_updates"] == 20 and summary["updates"] > 20
    scalars = _scalars(run_dir)
    assert scalars["pretrain/expert_loss"][0] > 0 and all(v > 0 for v in scalars["learner/expert_loss"])
    loss = scalars["learner/loss"]
    assert all(math.isfinite(v) for v in loss)
    for tag in ("rollout/env_steps_per_s", "episode/return", "episode/burned_fraction", "learner/q_mean",
                "explore/epsilon", "faults/hangs", "eval/ratio_vs_random", "eval/reduction_dpv"):
        assert tag in scalars, tag
    assert scalars["explore/epsilon"][-1] < scalars["explore/epsilon"][0]
    for name in ("latest.pt", "best.pt", "step_160.pt"):
        payload = load_checkpoint(run_dir / "checkpoints" / name)
        assert payload["model"]["kind"] == "basic" and payload["config"]["run"]["name"] == "smoke"
    network = build_policy_network(load_checkpoint(run_dir / "checkpoints" / "latest.pt"))
    q = network(torch.zeros(1, *load_checkpoint(run_dir / "checkpoints" / "latest.pt")["model"]["obs_shape"]))
    assert q.shape == (1, 24 * 24)
    assert (run_dir / "config.yaml").is_file()


@pytest.mark.timeout(120)
def test_evaluate_plays_a_trained_checkpoint(smoke_run):
    _, summary = smoke_run
    policy = checkpoint_policy(str(Path(summary["run_dir"]) / "checkpoints" / "best.pt"))
    tiles = [synthetic_landscape((24, 24), 2**31 + i, kind="grass_shrub") for i in range(2)]
    results = evaluate({"random": BASELINES["random"], "dqn": policy}, tiles, budget=0.03, n_scenarios=4,
                       progress=False)
    burned = results["dqn"]["burned"]
    assert burned.shape == (2,) and ((0 <= burned) & (burned <= results["dqn"]["untreated"])).all()


@pytest.mark.timeout(300)
def test_resume_continues_the_counters_and_sigterm_ends_it_with_a_loadable_checkpoint(smoke_run, monkeypatch):
    out, first = smoke_run
    before = load_checkpoint(Path(first["run_dir"]) / "checkpoints" / "latest.pt")
    previous = signal.getsignal(signal.SIGTERM)
    next_fragment = firebreak.rollout.Supervisor.next_fragment
    fragments = []

    def signalled(self, *args, **kwargs):  # SIGTERM mid-run, 64 env steps past learning_starts (the replay refills)
        fragments.append(next_fragment(self, *args, **kwargs))
        if len(fragments) == 8:
            os.kill(os.getpid(), signal.SIGTERM)
        return fragments[-1]

    monkeypatch.setattr(firebreak.rollout.Supervisor, "next_fragment", signalled)
    cfg = _cfg("smoke", out, "run.total_env_steps=100000", *DEMOS)
    summary = train(cfg, resume="latest", progress=False)
    assert summary["stopped_by"] == "SIGTERM" and signal.getsignal(signal.SIGTERM) is previous  # handler restored
    assert summary["pretrain_updates"] == first["pretrain_updates"]  # no second warm start
    assert int(before["counters"]["env_steps"]) == first["env_steps"]
    # the env steps go on from the checkpoint's: exactly the resumed run's fragments are added
    assert summary["env_steps"] == first["env_steps"] + sum(f.num_steps for f in fragments) < 100000
    after = load_checkpoint(Path(summary["run_dir"]) / "checkpoints" / "latest.pt")  # SIGTERM's final checkpoint
    assert int(after["counters"]["env_steps"]) == summary["env_steps"]
    assert int(after["learner"]["dqn"]["num_updates"]) > int(before["learner"]["dqn"]["num_updates"])
    # The optimizer state carried over: Adam's step count keeps growing from the checkpoint's.
    steps = lambda p: max(int(s["step"]) for s in p["learner"]["dqn"]["optimizer"]["state"].values())
    assert steps(after) > steps(before)


# Instance steps of the scheduled faults: the raise and the hang inside a fragment (steps 5 and
# 37 % 16 = 5 before them), the SIGKILL in the first chunk of the second fragment (steps 16-23).
SCHEDULE = [(5, "raise"), (21, "sigkill"), (37, "hang")]


@pytest.mark.timeout(300)
def test_a_training_run_loses_exactly_what_each_scheduled_fault_cost_and_counts_its_hung_evaluations(
        ray_local, tmp_path, monkeypatch, caplog):  # noqa: F811
    """Each runner fault is compared with what its env process delivered, counted from the
    fragments themselves: a hang or an env error at instance step k hands over its k steps, a
    killed process its completed chunks; the supervisor's counters agree, nothing else arrives.
    Every evaluation task hangs: each is cancelled at its deadline, counted, and training goes on
    (each way an evaluation fails is checked on `_Evaluations` in test_train_eval.py)."""
    def hung_evaluation(evaluator, weights, baselines):  # runs in the Ray worker (a closure: pickled by value)
        time.sleep(3600)

    monkeypatch.setattr(firebreak.train, "EnvFactory", lambda env, faults: ScheduledEnvFactory(env, faults, SCHEDULE))
    monkeypatch.setattr(firebreak.train, "_evaluation_task", hung_evaluation)
    delivered = Counter()  # env steps per runner process
    next_fragment = firebreak.rollout.Supervisor.next_fragment

    def counted(self, *args, **kwargs):
        fragment = next_fragment(self, *args, **kwargs)
        delivered[fragment.pid] += fragment.num_steps
        return fragment

    monkeypatch.setattr(firebreak.rollout.Supervisor, "next_fragment", counted)
    cfg = _cfg("smoke", tmp_path, "run.name=scheduled", "run.total_env_steps=320", "run.eval_every_env_steps=64",
               "run.eval_timeout_s=4", "faults.enabled=true")
    summary = train(cfg, progress=False)
    injected = read_injections(str(Path(summary["run_dir"]) / "faults"))
    assert sorted((i.step, i.kind) for i in injected) == SCHEDULE  # each fired once
    chunk = cfg.rollout.chunk_length
    for inj in injected:
        expected = (inj.step // chunk) * chunk if inj.kind == "sigkill" else inj.step
        assert delivered[inj.pid] == expected, (inj, dict(delivered))
    assert summary["stopped_by"] is None and summary["env_steps"] == sum(delivered.values()) >= 320
    faults = summary["faults"]
    assert faults["env_errors"] == 1 and faults["crashes"] + faults["hangs"] == 2, faults
    assert faults["lost_fragments"] == 3 and faults["restarts"] + faults["replacements"] == 3, faults
    assert faults["salvaged_steps"] == 5 + 5, faults  # the steps before the raise and the hang in their fragments
    assert faults["lost_steps"] == 1 + 1 + chunk, faults  # their own steps; the killed process's unfinished chunk

    # every launched evaluation failed and was counted, the final one included (awaited to its deadline)
    evals = summary["evaluations"]
    assert evals["done"] == 0 and evals["failed"] == evals["launched"] >= 2 and summary["eval"] == {}
    errors = [r.getMessage() for r in caplog.records if r.name == "firebreak.train" and "evaluation" in r.getMessage()
              and r.levelname == "ERROR"]
    why = "passed its deadline (run.eval_timeout_s=4 s) and was cancelled"
    assert len(errors) == evals["failed"] and all(why in e and "training goes on" in e for e in errors), errors
    checkpoints = Path(summary["run_dir"]) / "checkpoints"
    assert not (checkpoints / "best.pt").exists()  # nothing was evaluated
    assert int(load_checkpoint(checkpoints / "latest.pt")["counters"]["env_steps"]) == summary["env_steps"]
    assert summary["updates"] > 0


@pytest.mark.slow  # ~135 s of random faults; the scheduled-fault run above covers it
@pytest.mark.timeout(420)
def test_chaos_run_finishes_with_every_fault_counted(ray_local, tmp_path):  # noqa: F811
    """ray_configs/chaos.yaml end to end: every kind at random, envs isolated. The default suite
    covers it by parts: a training run with one of each process fault on a schedule (above), every
    kind counted exactly by the supervisor (test_rollout_supervisor.py) and in isolated env
    processes (test_env_process.py)."""
    cfg = _cfg("chaos", tmp_path, "run.total_env_steps=640")
    summary = train(cfg, progress=False)
    faults = summary["faults"]
    injected = read_injections(str(Path(summary["run_dir"]) / "faults"))
    fatal = [i for i in injected if i.kind != "slow"]
    assert summary["env_steps"] >= 640 and len(fatal) > 0
    counted = faults["hangs"] + faults["crashes"] + faults["env_errors"]
    # Every counted fault lost its own step, or (a dead process) at most its unfinished chunk;
    # nothing made up.
    assert faults["lost_fragments"] == counted
    assert counted <= faults["lost_steps"] <= cfg.rollout.chunk_length * counted
    # Every injection is counted, except at most one per runner in the calls still in flight when
    # the run reached its step budget (the driver stops waiting for them). A crash that Ray had
    # not reported by the deadline is counted as a hang, so crashes and hangs are compared together.
    runners = cfg.rollout.runners
    raises = sum(i.kind == "raise" for i in fatal)
    assert counted <= len(fatal) <= counted + runners
    assert faults["env_errors"] <= raises <= faults["env_errors"] + runners
    assert faults["crashes"] + faults["hangs"] <= len(fatal) - raises <= faults["crashes"] + faults["hangs"] + runners
    # chaos.yaml isolates its envs: every fault cost a respawned env process, no runner restart
    assert cfg.rollout.isolate_envs and faults["restarts"] == 0 and faults["env_respawns"] == counted


@pytest.mark.timeout(120)
def test_a_warm_start_without_actors(ray_local, tmp_path):  # noqa: F811
    # rollout.runners 0: the demonstrations play in this process even with Ray initialised
    # and across fire counts with the count observed: its checkpoint reads that layer wherever it plays
    cfg = _cfg("smoke", tmp_path, "rollout.runners=0", "run.total_env_steps=160", "learner.learning_starts=32",
               "run.name=local", "env.n_scenarios=[3,6]", "env.fire_count_layer=true", *DEMOS)
    summary = train(cfg, progress=False)
    assert summary["pretrain_updates"] == 20 and summary["updates"] > 20 and summary["env_steps"] >= 160
    scalars = _scalars(Path(summary["run_dir"]))
    assert len(scalars["eval/ratio_vs_random"]) >= 2  # right after pre-training, and at the end
    best = Path(summary["run_dir"]) / "checkpoints" / "best.pt"
    model = load_checkpoint(best)["model"]
    assert model["obs_layers"] == [*OBSERVATION_LAYERS, FIRE_COUNT_LAYER] and model["obs_shape"][0] == 19
    assert load_policy(best).layers[-1] == FIRE_COUNT_LAYER
    tiles = [synthetic_landscape((24, 24), 2**31, kind="grass_shrub")]
    burned = evaluate({"dqn": checkpoint_policy(str(best))}, tiles, budget=0.03, n_scenarios=4, progress=False)
    assert 0 <= burned["dqn"]["burned"][0] <= burned["dqn"]["untreated"][0]


@pytest.mark.timeout(120)
def test_epsilon_reaches_the_runners_as_it_decays_before_any_update(tmp_path, monkeypatch):
    """Weights go out every weights_every updates; epsilon decays by env steps and must reach the
    runners even while no update runs (here: learning_starts is never reached)."""
    published, set_weights = [], firebreak.train._LocalSampler.set_weights

    def spy(self, weights):
        published.append(weights["epsilon"])
        set_weights(self, weights)

    monkeypatch.setattr(firebreak.train._LocalSampler, "set_weights", spy)
    cfg = _cfg("smoke", tmp_path, "rollout.runners=0", "run.total_env_steps=160", "learner.learning_starts=100000",
               "exploration.decay_env_steps=128", "run.eval_every_env_steps=100000", "run.name=eps")
    summary = train(cfg, progress=False)
    assert summary["updates"] == 0
    x = cfg.exploration
    assert published[0] == x.epsilon_start and published[-1] == pytest.approx(x.epsilon_end)
    assert len(published) >= 8 and all(a > b for a, b in zip(published, published[1:]))  # every fragment's


def test_bad_checkpoints_are_refused_clearly(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"garbage\.pt: not a readable firebreak checkpoint"):
        load_checkpoint(tmp_path / "garbage.pt")
    torch.save({"state_dict": {"w": torch.zeros(2)}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match=r"foreign\.pt: not a firebreak DQN checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    # A pickle that would run code is refused by weights_only loading, not executed.
    torch.save({"format": "firebreak-dqn", "x": np.random.default_rng(0)}, tmp_path / "pickled.pt")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(tmp_path / "pickled.pt")


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["learner.lrr=0.1"], r"learner\.lrr: unknown key \(value 0\.1\); allowed keys here: network, "),
        (["rollout.runners=two"], r"rollout\.runners: Input should be a valid integer.*'two'"),
        (["env.budget=1.5"], r"env\.budget: Input should be less than 1 \(got 1\.5\)"),
        (["learner.network=transformer"], r"learner\.network: Input should be 'basic', 'residual' or 'dueling'"),
        (["exploration.epsilon_end=0.9", "exploration.epsilon_start=0.5"], r"epsilon_end must not exceed"),
        (["learner"], r"expected section\.key=value"),
        (["demonstrations.episodes=-2"], r"demonstrations\.episodes: Input should be greater than or equal to 0"),
        (["learner.demo_batch_fraction=2"], r"learner\.demo_batch_fraction: Input should be less than or equal to 1"),
    ],
)
def test_bad_configs_name_the_key_the_value_and_what_is_allowed(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIGS / "smoke.yaml", overrides)


def test_actors_that_cannot_fit_a_local_instance_are_a_config_error(tmp_path):
    cfg = _cfg("smoke", tmp_path, "rollout.runners=4", "rollout.num_cpus_per_runner=1")
    with pytest.raises(ConfigError, match=r"rollout\.runners=4 x rollout\.num_cpus_per_runner=1 \+ learner\.num_cpus=1 "
                                          r"= 5 CPUs, but this Ray cluster has 2: lower rollout\.runners"):
        _check_cpus(cfg, 2.0, strict=True)
    _check_cpus(cfg, 2.0, strict=False)  # an autoscaling cluster may add nodes: a warning only
    _check_cpus(_cfg("smoke", tmp_path), 2.0, strict=True)  # the shipped 2-core configs fit


def test_every_shipped_config_is_valid():
    for path in CONFIGS.glob("*.yaml"):
        if path.name != "rllib_dqn.yaml":  # RLlib's own schema, tested in test_rllib.py
            load_config(path)


def test_every_supervisor_setting_of_the_rollout_section_reaches_the_supervisor(tmp_path, monkeypatch):
    """A `rollout:` key named like a `Supervisor` parameter is passed to it by the driver, with
    the config's value (restart_timeout_s once was not)."""
    shared = set(inspect.signature(firebreak.rollout.Supervisor).parameters) & set(RolloutConfig.model_fields)
    assert {"restart_timeout_s", "stall_factor", "stall_floor_s", "spare_runners", "chunk_length"} <= shared
    overrides = {"sample_timeout_s": 77.0, "min_timeout_s": 11.0, "first_timeout_s": 99.0, "restart_timeout_s": 42.0,
                 "max_consecutive_failures": 7, "stall_factor": 9.0, "stall_floor_s": 0.25, "spare_runners": 1,
                 "chunk_length": 4}
    assert set(overrides) == shared
    cfg = load_config(overrides=[f"run.out_dir={tmp_path}", *(f"rollout.{k}={v}" for k, v in overrides.items())])
    passed = {}
    monkeypatch.setattr(firebreak.rollout, "Supervisor", lambda spec, runners, **kwargs: passed.update(kwargs))
    _Run(cfg, None).start_sampler()  # builds the runner spec and the Supervisor; no actor starts here
    assert {key: passed.get(key) for key in shared} == overrides
