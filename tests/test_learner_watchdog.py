"""The learner watchdog (issue 16): a dead or hung learner actor is restarted from the latest
checkpoint in every run, and the driver re-syncs its counters."""

import math
import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import ray
import torch

import firebreak.rollout
import firebreak.rollout.learner
import firebreak.train
from firebreak.config import load_config
from firebreak.demonstrations import collect_demonstrations
from firebreak.dqn.checkpoint import load_checkpoint
from firebreak.env import OBSERVATION_LAYERS
from firebreak.landscape import synthetic_landscape
from firebreak.rollout.fragment import Fragment, Transitions
from firebreak.rollout.learner import create_learner
from firebreak.rollout.restore_point import create_restore_point
from firebreak.train import _RemoteLearner, dqn_config, train
from tests.rollout_fixtures import ray_local  # noqa: F401

SMOKE = Path(__file__).parents[1] / "ray_configs" / "smoke.yaml"
SHAPE = (len(OBSERVATION_LAYERS), 24, 24)


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


@pytest.mark.timeout(180)
def test_a_learner_killed_in_a_fresh_run_continues_from_the_checkpoint(ray_local, tmp_path, monkeypatch):  # noqa: F811
    cfg = load_config(SMOKE, [f"run.out_dir={tmp_path}", "run.name=kill", "run.total_env_steps=320",
                              "run.checkpoint_every_env_steps=128", "run.eval_every_env_steps=100000",
                              "run.keep_step_checkpoints=false"])
    seen = {}
    real_init, real_recover, real_save = _RemoteLearner.__init__, _RemoteLearner._recover, firebreak.train.save_checkpoint

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        seen["learner"] = self

    def save(path, **kwargs):  # SIGKILL the learner right after the first mid-run latest.pt with updates in it
        out = real_save(path, **kwargs)
        updates = int(kwargs["learner_state"]["dqn"]["num_updates"])
        if Path(path).name == "latest.pt" and kwargs["counters"]["env_steps"] > 0 and updates > 0 and "ckpt" not in seen:
            seen["ckpt"] = load_checkpoint(path)
            os.kill(ray.get(seen["learner"].handle.info.remote())["pid"], signal.SIGKILL)
        return out

    def recover(self):
        real_recover(self)
        seen["reloaded"] = ray.get(self.handle.get_weights.remote())
        seen["reloaded_updates"] = self.updates

    monkeypatch.setattr(_RemoteLearner, "__init__", init)
    monkeypatch.setattr(_RemoteLearner, "_recover", recover)
    monkeypatch.setattr(firebreak.train, "save_checkpoint", save)
    summary = train(cfg, progress=False)

    ckpt_updates = int(seen["ckpt"]["learner"]["dqn"]["num_updates"])
    assert summary["learner_restarts"] == 1 and summary["learner_hangs"] == 0
    # the new incarnation holds the checkpoint's networks and count, not a random network at 0
    assert _equal(seen["reloaded"], seen["ckpt"]["learner"]["dqn"]["q_network"])
    assert seen["reloaded_updates"] == ckpt_updates > 0
    final = load_checkpoint(Path(summary["run_dir"]) / "checkpoints" / "latest.pt")
    assert int(final["learner"]["dqn"]["num_updates"]) == summary["updates"] > ckpt_updates  # training went on
    assert int(final["counters"]["updates"]) == summary["updates"]
    assert summary["env_steps"] >= 320


def random_fragment(rng, steps: int = 16) -> Fragment:
    """`steps` transitions of one env in one episode, random observations, every action allowed."""
    obs = rng.random((1, steps + 1, *SHAPE)).astype(np.float16)
    cells = SHAPE[1] * SHAPE[2]
    arrays = Transitions(obs[:, :-1], rng.integers(0, cells, (1, steps)), rng.random((1, steps)).astype(np.float32),
                         np.zeros((1, steps), bool), np.zeros((1, steps), bool), obs[:, -1:][0],
                         np.ones((1, steps, cells), bool))
    return Fragment(0, 0, 1, steps, [], 0.0, 0.0, 0.0, 0, transitions=[ray.put(arrays)])


@pytest.mark.timeout(180)
def test_a_hung_learner_is_killed_at_its_deadline_and_its_restart_reloads_what_the_checkpoint_held(
        ray_local, tmp_path):  # noqa: F811
    """One hang, one restart, and everything the new incarnation must bring back by itself: the
    restore point's networks and update count (not a random network at 0), the replay saved with
    that checkpoint (training goes on at once, no refill), the expert demonstrations (creation
    arguments); on the CPU here, where num_gpus 'auto' finds no GPU."""
    env_kwargs = {"landscapes": [synthetic_landscape((24, 24), 0, kind="grass_shrub")], "budget": 0.03,
                  "n_scenarios": 4}
    demonstrations = list(collect_demonstrations(env_kwargs, 2, expert_scenarios=8, progress=False))
    assert all(isinstance(ref, ray.ObjectRef) for ref in demonstrations)  # Ray tasks: the driver never holds the arrays
    cfg = load_config(SMOKE, [f"run.out_dir={tmp_path}", "learner.learning_starts=32"])
    restore_point = create_restore_point()
    handle = create_learner(dqn_config(cfg), SHAPE, restore_point, 0, num_gpus="auto", max_restarts=2,
                            demonstrations=demonstrations)
    learner = _RemoteLearner(handle, restore_point, max_restarts=2, call_timeout_s=3.0, restart_timeout_s=60.0)
    old = learner.info()
    assert not old["restored"] and old["updates"] == 0 and old["demonstrations"] == 2
    rng = np.random.default_rng(0)
    for _ in range(2):
        ray.get(handle.add_fragment.remote(random_fragment(rng)))
    learner.save_replay(tmp_path / "latest.replay.npz")
    state = learner.state_dict()  # what checkpoint("latest.pt") does: the state names the replay file
    assert "replay" in state
    state["dqn"]["num_updates"] = torch.tensor(7)
    learner.set_restore_point(state)
    learner.updates = 9  # as if 2 updates had run since that checkpoint
    killed_at = []
    kill_hung = learner._kill_hung
    learner._kill_hung = lambda what: (killed_at.append(time.monotonic()), kill_hung(what))
    os.kill(old["pid"], signal.SIGSTOP)  # a hang: the process is alive and never answers
    try:
        began = time.monotonic()
        learner.start_train(1)
        while not learner.finished_train()[0]:  # the driver loop polls like this between fragments
            time.sleep(0.1)
    finally:
        try:
            os.kill(old["pid"], signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert learner.hangs == 1 and learner.restarts == 1 and learner.restarted
    (killed,) = killed_at
    assert 3.0 <= killed - began < 3.0 + 2.0, killed - began  # at the deadline (the restart comes after)
    assert learner.updates == 7 and learner.lost_updates == 2

    info = learner.info()
    assert info["pid"] != old["pid"] and info["restored"] and info["device"] == "cpu"
    assert _equal(learner.get_weights(), state["dqn"]["q_network"])
    assert info["replay_size"] == 32 and info["demonstrations"] == 2
    learner.start_train(1)
    done, result = learner.finished_train(wait=True)
    assert done and "loss" in result and result["replay_size"] == 32 and learner.updates == 8  # past learning_starts
    metrics = learner.pretrain(5)
    assert metrics["updates"] == 13 and math.isfinite(metrics["expert_loss"])  # trained on the demonstrations
    # the restore point holds the state's ref, never its tensors: its process never loads torch
    maps = Path(f"/proc/{ray._private.state.actors(restore_point._actor_id.hex())['Pid']}/maps")
    if maps.exists():  # Linux
        assert "libtorch" not in maps.read_text(), "the RestorePoint process loaded torch"
    ray.kill(handle)
    ray.kill(restore_point)


def _alive_firebreak_actors() -> list[str]:
    names = ("Learner", "RestorePoint", "EnvRunner")
    return [a["ActorClassName"] for a in ray._private.state.actors().values()
            if a["State"] != "DEAD" and a["ActorClassName"] in names]


@pytest.mark.timeout(180)
def test_an_error_mid_run_releases_actors_and_signal_handlers(ray_local, tmp_path, monkeypatch):  # noqa: F811
    cfg = load_config(SMOKE, [f"run.out_dir={tmp_path}", "run.name=error", "run.eval_every_env_steps=64"])
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    assert not _alive_firebreak_actors()
    next_fragment, fragments = firebreak.rollout.Supervisor.next_fragment, []

    def broken(self, *args, **kwargs):  # a driver-side error after a few fragments (an evaluation in flight)
        fragments.append(next_fragment(self, *args, **kwargs))
        if len(fragments) == 6:
            raise RuntimeError("sampling failed")
        return fragments[-1]

    monkeypatch.setattr(firebreak.rollout.Supervisor, "next_fragment", broken)
    with pytest.raises(RuntimeError, match="sampling failed") as error:
        train(cfg, progress=False)
    # error.tb keeps train()'s frames, and so its actor handles, alive: only an explicit kill ends the actors
    assert {sig: signal.getsignal(sig) for sig in before} == before
    for _ in range(150):  # ray.kill is asynchronous
        if not _alive_firebreak_actors():
            break
        time.sleep(0.2)
    assert not _alive_firebreak_actors()


def test_a_bad_eval_source_fails_before_set_up(ray_local, tmp_path, monkeypatch):  # noqa: F811
    cfg = load_config(SMOKE, [f"run.out_dir={tmp_path}", f"run.eval_landscapes={tmp_path}/missing.tif"])
    before = signal.getsignal(signal.SIGTERM)
    started = []
    monkeypatch.setattr(firebreak.rollout.learner, "create_learner", lambda *a, **k: started.append(a))
    with pytest.raises(Exception, match="missing.tif"):
        train(cfg, progress=False)
    assert not started and signal.getsignal(signal.SIGTERM) is before


def test_resuming_with_another_network_names_the_keys_that_differ(tmp_path):
    cfg = load_config(SMOKE, [f"run.out_dir={tmp_path}"])
    path = tmp_path / "other.pt"
    model = {"kind": "basic", "kwargs": {"hidden": 32, "num_layers": 2}, "obs_shape": [len(OBSERVATION_LAYERS), 24, 24],
             "obs_layers": list(OBSERVATION_LAYERS)}
    firebreak.train.save_checkpoint(path, learner_state={}, model=model, config=cfg.model_dump(), counters={})
    with pytest.raises(firebreak.train.ConfigError, match=r"other\.pt: cannot resume, the network differs: "
                       r"learner\.network_kwargs \(checkpoint \{'hidden': 32, 'num_layers': 2\}, config "
                       r"\{'hidden': 16, 'num_layers': 2\}\)\. Resume without --config"):
        train(cfg, resume=str(path), progress=False)


class _Handle:
    """A learner actor handle whose ``method.remote(...)`` returns the method's name as its "ref"
    (with ray.get and ray.wait monkeypatched to answer such refs)."""

    def __getattr__(self, name):
        return SimpleNamespace(remote=lambda *args: name)


def _fake_ray(monkeypatch, answer):
    """``ray.get`` answers each ref (a method name) with ``answer(ref)``; every ref is ready."""
    def get(ref, timeout=None):
        return [get(r) for r in ref] if isinstance(ref, list) else answer(ref)

    monkeypatch.setattr(ray, "get", get)
    monkeypatch.setattr(ray, "wait", lambda refs, num_returns=1, timeout=None: (refs, []))


def test_an_unreachable_learner_is_not_counted_as_a_restart(monkeypatch):
    """ActorUnavailableError is transient: the same incarnation answers again, nothing reloaded."""
    from ray.exceptions import ActorUnavailableError

    failures = ["train"]  # the first train call meets a network blip

    def answer(ref):
        if ref in failures:
            failures.remove(ref)
            raise ActorUnavailableError("connection reset", None)
        if ref == "info":
            return {"pid": 1, "incarnation": "a", "updates": 5, "restored": True}
        return {"updates": 6, "incarnation": "a", "loss": 0.1, "lost_steps": 0}

    _fake_ray(monkeypatch, answer)
    learner = _RemoteLearner(_Handle(), max_restarts=0, call_timeout_s=1.0, restart_timeout_s=5.0)
    learner.start_train(1)
    assert learner.finished_train() == (True, None)  # that call's result is lost, not made up
    assert learner.restarts == 0 and not learner.restarted and learner.updates == 5
    learner.start_train(1)
    done, result = learner.finished_train()
    assert done and result["loss"] == 0.1 and learner.updates == 6


def test_a_learner_that_dies_taking_fragments_before_learning_starts_is_seen_and_restarted(monkeypatch):
    """Before learning_starts no training call is made: a failed add_fragment must still surface."""
    from ray.exceptions import RayActorError

    incarnations = iter(["a", "b"])  # the first info call meets "a", the next ones its restart "b"

    def answer(ref):
        if ref == "add_fragment":
            raise RayActorError()  # the learner process died with the fragment
        return {"pid": 1, "incarnation": next(incarnations, "b"), "updates": 0, "restored": True}

    _fake_ray(monkeypatch, answer)
    learner = _RemoteLearner(_Handle(), max_restarts=1, call_timeout_s=1.0, restart_timeout_s=5.0)
    learner.add_fragment("fragment")
    assert learner.finished_train() == (True, None)
    assert learner.restarts == 1 and learner.restarted and learner.incarnation == "b"
