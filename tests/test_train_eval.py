"""Training's periodic evaluation (issue 16 item 3): a Ray task on a weights ref, overlapped with
sampling, logged at its launch step; best.pt holds the weights it evaluated; a failed or hung
evaluation is counted and training goes on (end to end: test_train.py's scheduled-fault run)."""

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import firebreak.rollout
import firebreak.train
from firebreak.config import ConfigError, load_config
from firebreak.dqn.checkpoint import load_checkpoint
from firebreak.evaluate import eval_landscapes
from firebreak.train import Evaluator, train
from tests.rollout_fixtures import ray_local  # noqa: F401

SMOKE = Path(__file__).parents[1] / "ray_configs" / "smoke.yaml"


def _cfg(tmp_path: Path, *overrides: str):
    """The smoke config with one runner: evaluations are what these runs test (a runner process less to start)."""
    return load_config(SMOKE, [f"run.out_dir={tmp_path}", "run.keep_step_checkpoints=false", "rollout.runners=1",
                               *overrides])


def _scalars(run_dir: Path, tag: str) -> dict[int, float]:
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    return {e.step: e.value for e in events.Scalars(tag)} if tag in events.Tags()["scalars"] else {}


@pytest.mark.timeout(180)
def test_evaluation_overlaps_training_and_best_pt_holds_the_weights_it_evaluated(ray_local, tmp_path,  # noqa: F811
                                                                                 monkeypatch):
    cfg = _cfg(tmp_path, "run.name=overlap", "run.total_env_steps=192", "run.eval_every_env_steps=48")
    ends_file = tmp_path / "eval_ends.txt"
    real_task = firebreak.train._evaluation_task

    def timed_task(evaluator, weights, baselines):  # runs in the Ray worker (pickled by value)
        out = real_task(evaluator, weights, baselines)
        with open(ends_file, "a") as f:
            f.write(f"{time.time()}\n")
        return out

    arrivals, launched, launch_times = [], {}, []
    next_fragment, launch = firebreak.rollout.Supervisor.next_fragment, firebreak.train._Evaluations.launch

    def spy_fragment(self, *args, **kwargs):
        fragment = next_fragment(self, *args, **kwargs)
        arrivals.append(time.time())
        return fragment

    def spy_launch(self, step, state, counters):
        started = launch(self, step, state, counters)
        if started:
            launched[step] = {k: v.clone() for k, v in state["dqn"]["q_network"].items()}
            launch_times.append(time.time())
        return started

    monkeypatch.setattr(firebreak.train, "_evaluation_task", timed_task)
    monkeypatch.setattr(firebreak.rollout.Supervisor, "next_fragment", spy_fragment)
    monkeypatch.setattr(firebreak.train._Evaluations, "launch", spy_launch)
    summary = train(cfg, progress=False)

    run_dir = Path(summary["run_dir"])
    ends = [float(line) for line in ends_file.read_text().splitlines()]
    evals = summary["evaluations"]
    assert evals["failed"] == 0 and evals["done"] == evals["launched"] == len(launched) == len(ends) >= 2
    # fragments kept arriving between an evaluation's launch and the end of its task: it did not block the loop
    assert any(launched_at < t < ended for launched_at, ended in zip(launch_times, ends) for t in arrivals)
    # each result is logged at the env step it was launched at; all but the final one came back later
    burned = _scalars(run_dir, "eval/burned_fraction_dqn")
    lag = _scalars(run_dir, "eval/lag_env_steps")
    assert sorted(burned) == sorted(lag) == sorted(launched)
    final = max(launched)
    assert final == summary["env_steps"] and lag[final] == 0
    assert all(lag[step] >= cfg.rollout.fragment_length for step in launched if step != final)

    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    step = int(best["counters"]["env_steps"])
    weights = best["learner"]["dqn"]["q_network"]
    assert step in launched and weights.keys() == launched[step].keys()
    assert all(torch.equal(weights[k], launched[step][k]) for k in weights)  # what was evaluated, not newer
    assert burned[step] == min(burned.values())
    assert best["counters"]["best_eval_burned"] == pytest.approx(burned[step], rel=1e-6)
    # and the score is those weights': replayed here, the evaluation gives it again
    metrics, _ = Evaluator(cfg)(weights)
    assert metrics["eval/burned_fraction_dqn"] == pytest.approx(best["counters"]["best_eval_burned"], rel=1e-9)


@pytest.mark.timeout(90)
def test_an_evaluation_due_while_one_runs_is_skipped_a_hung_one_ends_at_its_deadline_and_an_error_is_counted(
        ray_local, tmp_path, monkeypatch, caplog):  # noqa: F811
    def broken_task(evaluator, weights, baselines):  # runs in the Ray worker (pickled by value)
        if weights["w"].sum() == 0:  # the first launch hangs, the next one raises
            time.sleep(3600)
        raise RuntimeError("a bad policy")

    monkeypatch.setattr(firebreak.train, "_evaluation_task", broken_task)
    evals = firebreak.train._Evaluations(Evaluator(_cfg(tmp_path)), timeout_s=3.0, remote=True)
    hangs, raises = ({"dqn": {"q_network": {"w": torch.full((2,), float(v))}}} for v in (0, 1))
    began = time.monotonic()
    assert evals.launch(16, hangs, firebreak.train.Counters(env_steps=16))
    assert not evals.launch(32, hangs, firebreak.train.Counters(env_steps=32))  # one in flight: skipped
    assert evals.poll() is None and evals.pending.step == 16  # still running, not waited for
    assert evals.poll(timeout_s=30.0) is None  # waits only up to the task's deadline, then cancels it
    waited = time.monotonic() - began
    assert 3.0 <= waited < 3.0 + 5.0, waited
    assert evals.stats() == {"launched": 1, "done": 0, "failed": 1, "skipped": 1} and evals.pending is None
    assert "evaluation launched at env step 16 passed its deadline (run.eval_timeout_s=3 s)" in caplog.text
    evals.timeout_s = 60.0  # the error comes once a new worker has started (seconds here)
    assert evals.launch(48, raises, firebreak.train.Counters(env_steps=48))  # the next one starts again
    assert evals.poll(timeout_s=60.0) is None
    assert evals.stats() == {"launched": 2, "done": 0, "failed": 2, "skipped": 1} and evals.pending is None
    failed = [r.getMessage() for r in caplog.records if "env step 48" in r.getMessage()]
    assert len(failed) == 1 and "a bad policy" in failed[0] and "training goes on" in failed[0], failed
    evals.close()
    assert evals.pending is None


def test_the_evaluator_reads_its_source_as_firebreak_evaluate_does(tmp_path):
    cfg = _cfg(tmp_path, "run.eval_landscapes=synthetic:24", "run.eval_tiles=3")
    expected = eval_landscapes("synthetic:24", n=3)  # the kinds cycle: mixed, grass, grass_shrub
    landscapes = Evaluator(cfg).landscapes
    assert len(landscapes) == 3 and len({l.metadata["source"] for l in landscapes}) == 3
    assert all(np.array_equal(a.fuel_model, b.fuel_model) for a, b in zip(landscapes, expected))
    with pytest.raises(ConfigError, match=r"run\.eval_landscapes='synthetic:24:lava': .*kind one of mixed"):
        Evaluator(_cfg(tmp_path, "run.eval_landscapes=synthetic:24:lava"))
