"""Supervisor: every fault kind is detected, recovered and counted exactly; nothing lost leaks in."""

import functools
import logging
import os
import re
import signal
import time
from types import SimpleNamespace

import numpy as np
import pytest

from firebreak.config import RolloutConfig
from firebreak.rollout import FaultyEnvFactory, RandomPolicy, RolloutError, RunnerSpec, Supervisor, read_injections
from firebreak.rollout.env_process import STARVED_GRACE
from firebreak.rollout.runner import Runner
from tests.rollout_fixtures import ConstantPolicy, counter_env, ray_local  # noqa: F401

pytestmark = [pytest.mark.timeout(90), pytest.mark.usefixtures("ray_local")]

LENGTH = 10  # fragment length
DEADLINE = 1.5  # seconds
# Ray needs up to ~2 s to report a dead process; a crash still unreported at the deadline is
# (correctly) handled as a hang, so crash tests use a longer deadline to count them as crashes.
CRASH_DEADLINE = 6.0
COUNTER_OF = {
    "exit": "crashes",
    "sigkill": "crashes",
    "sigsegv": "crashes",
    "hang": "hangs",
    "busy_hang": "hangs",
    "raise": "env_errors",
}


def _spec(factory, policy=None, **kwargs):
    return RunnerSpec(factory, policy or RandomPolicy(4), envs_per_runner=1, fragment_length=LENGTH, num_cpus=0.5, **kwargs)


def _fetch(fragment):
    """A delivered fragment's record and its arrays (fetched by ref, as the learner does) as one namespace."""
    arrays = fragment.arrays()
    names = ("obs", "actions", "rewards", "terminated", "truncated", "final_obs", "next_masks", "next_obs")
    return SimpleNamespace(**vars(fragment), num_steps=fragment.num_steps, **{n: getattr(arrays, n) for n in names})


def _check_delivered_steps(fragments, injections, salvaged):
    """A fault at step k of an env in process P: with ``salvaged``, P's steps before k all arrive
    (the last of them in a shorter fragment) and none from k on; else (a crash, one chunk per
    fragment) nothing of fragment k // LENGTH arrives. obs[3] counts the env instance's steps."""
    for inj in injections:
        first_lost = inj.step if salvaged else (inj.step // LENGTH) * LENGTH
        delivered = [frag.next_obs[..., 3].max() for frag in fragments if frag.pid == inj.pid]
        assert max(delivered) == first_lost  # next_obs[3] of step j is j + 1
    for frag in fragments:
        steps = frag.next_obs[0, :, 3]
        np.testing.assert_array_equal(steps, steps[0] + np.arange(frag.length))  # consecutive
        ends_before_a_fault = any(frag.pid == inj.pid and steps[-1] == inj.step for inj in injections)
        assert frag.length == LENGTH or (salvaged and ends_before_a_fault)


# exit and sigsegv end the process as sigkill does (test_rollout_faults.py): one crash kind here,
# exit in the chunk test below.
@pytest.mark.parametrize("kind", ["sigkill", "hang", "busy_hang", "raise"])
def test_each_fault_kind_is_recovered_and_counted(tmp_path, kind, caplog):
    log_dir = str(tmp_path)
    factory = FaultyEnvFactory(counter_env, {"schedule": [(13, kind), (35, kind)], "log_dir": log_dir})
    fragments = []
    with caplog.at_level(logging.ERROR, logger="firebreak.rollout.supervisor"):
        deadline = CRASH_DEADLINE if COUNTER_OF[kind] == "crashes" else DEADLINE
        with Supervisor(_spec(factory), 1, sample_timeout_s=deadline, restart_timeout_s=30) as sup:
            while len(fragments) < 6:
                fragments.append(_fetch(sup.next_fragment(timeout=60)))
            stats = sup.stats()
    injections = read_injections(log_dir)
    assert [i.kind for i in injections] == [kind, kind]
    counter = COUNTER_OF[kind]
    assert stats[counter] == 2
    assert sum(stats[c] for c in set(COUNTER_OF.values())) == 2  # nothing else counted
    # a hang or an env error loses its own step (the steps before it arrive); a dead process
    # loses the fragment it was filling (one chunk here): steps 10-19 and 30-39 of each incarnation
    salvaged = counter != "crashes"
    assert stats["lost_fragments"] == 2 and stats["lost_steps"] == (2 if salvaged else 2 * LENGTH)
    assert stats["salvaged_steps"] == (13 % LENGTH + 35 % LENGTH if salvaged else 0)
    assert stats["restarts"] == 2 and stats["replacements"] == 0
    assert stats["fragments"] == 6 and stats["env_steps"] == sum(f.num_steps for f in fragments)
    assert 0 < stats["restart_latency_mean_s"] <= stats["restart_latency_max_s"] < 30
    _check_delivered_steps(fragments, injections, salvaged)
    fault_lines = [r for r in caplog.records if "lost" in r.getMessage()]
    assert len(fault_lines) == 2
    if kind == "raise":
        assert "InjectedFault" in fault_lines[0].getMessage()  # the env's traceback is logged
    # detection latency, from the fault to the log line: a hang within the 0.5 s stall floor (toy
    # steps take microseconds) + a margin; a crash of a runner on this node at once, not after
    # Ray's ~1 s death notice
    for inj, record in zip(injections, fault_lines):
        if kind == "hang":  # asleep: at the floor
            assert "stalled" in record.getMessage() and record.created - inj.time <= 0.5 + 0.5
        elif kind == "busy_hang":  # once it has used the floor in CPU time: later if it must share a
            # core, when the 1.5 s deadline may come first
            assert re.search("stalled|deadline", record.getMessage())
            assert record.created - inj.time <= min(STARVED_GRACE * 0.5, DEADLINE) + 0.5
        elif counter == "crashes":
            assert "exited during sample" in record.getMessage() and record.created - inj.time <= 0.3


def _four_fragments_with_the_third_raising(monkeypatch, error):
    """Four fragments of one runner, the supervisor's ``ray.get`` raising ``error()`` on the 3rd
    fragment record it reads (after Ray called it ready). Returns (delivered, every record read, stats)."""
    import ray

    import firebreak.rollout.supervisor as supervisor_module
    from firebreak.rollout import Fragment

    fetched = []

    class FailingRay:  # the supervisor's view of Ray
        def __getattr__(self, name):
            return getattr(ray, name)

        def get(self, refs, *args, **kwargs):
            value = ray.get(refs, *args, **kwargs)
            if isinstance(value, Fragment):
                fetched.append(value)
                if len(fetched) == 3:
                    raise error(refs)
            return value

    monkeypatch.setattr(supervisor_module, "ray", FailingRay())
    with Supervisor(_spec(counter_env), 1, sample_timeout_s=CRASH_DEADLINE, restart_timeout_s=30) as sup:
        fragments = [_fetch(sup.next_fragment(timeout=60)) for _ in range(4)]
        stats = sup.stats()
    assert all(f is not fetched[2] for f in fragments)  # the lost fragment was never delivered
    return fragments, fetched, stats


def test_a_fragment_lost_with_its_object_store_is_counted_and_the_runner_restarted(monkeypatch):
    """A node can die between ray.wait calling a fragment ready and ray.get reading it: Ray then
    raises ObjectLostError (ObjectReconstructionFailedError)."""
    from ray.exceptions import ObjectReconstructionFailedError

    fragments, fetched, stats = _four_fragments_with_the_third_raising(
        monkeypatch, lambda ref: ObjectReconstructionFailedError(ref.hex()))
    assert stats["crashes"] == 1 and stats["lost_fragments"] == 1 and stats["lost_steps"] == LENGTH
    assert stats["restarts"] == 1 and stats["fragments"] == 4
    assert fetched[2].pid not in {f.pid for f in fragments[2:]}  # the runner was restarted, not reused


def test_an_unreachable_runner_loses_its_call_but_is_neither_counted_a_crash_nor_restarted(monkeypatch):
    """ActorUnavailableError (a RayActorError) says Ray could not reach a runner it does not know
    dead, e.g. a network blip. The call is lost and counted as such; the probe finds the same
    healthy process, which delivers the next fragments."""
    from ray.exceptions import ActorUnavailableError

    fragments, fetched, stats = _four_fragments_with_the_third_raising(
        monkeypatch, lambda ref: ActorUnavailableError("connection reset (injected)", None))
    assert stats["unavailable"] == 1 and stats["lost_fragments"] == 1 and stats["lost_steps"] == LENGTH
    assert stats["crashes"] == stats["hangs"] == stats["restarts"] == stats["replacements"] == 0
    assert {f.pid for f in fragments} == {fetched[0].pid}  # the same process throughout


def test_slow_steps_under_the_deadline_are_not_hangs_without_stall_detection(tmp_path):
    factory = FaultyEnvFactory(counter_env, {"schedule": [(3, "slow"), (12, "slow")], "slow_s": 0.6, "log_dir": str(tmp_path)})
    with Supervisor(_spec(factory), 1, sample_timeout_s=DEADLINE, stall_factor=None) as sup:
        fragments = [sup.next_fragment(timeout=30) for _ in range(3)]
        stats = sup.stats()
    assert len(read_injections(str(tmp_path))) == 2
    assert stats["hangs"] == stats["lost_fragments"] == stats["restarts"] == 0
    assert max(f.sample_seconds for f in fragments) >= 0.6


def test_restart_budget_exhausted_gives_a_fresh_actor_with_current_weights(tmp_path):
    factory = FaultyEnvFactory(counter_env, {"schedule": [(5, "sigkill"), (25, "sigkill")], "log_dir": str(tmp_path)})
    with Supervisor(_spec(factory, ConstantPolicy(0), max_restarts=1), 1, sample_timeout_s=5) as sup:
        sup.set_weights(2)
        fragments = [_fetch(sup.next_fragment(timeout=60)) for _ in range(4)]
        stats = sup.stats()
    assert stats["crashes"] == 2 and stats["restarts"] == 1 and stats["replacements"] == 1
    assert stats["lost_fragments"] == 2
    assert len({f.pid for f in fragments}) >= 2
    assert all(np.all(f.actions == 2) for f in fragments)  # restarted and fresh actors got the weights


def test_deterministic_construction_failure_raises_quickly():
    spec = _spec(lambda: counter_env(fail=True))
    start = time.monotonic()
    with Supervisor(spec, 1, sample_timeout_s=DEADLINE, max_consecutive_failures=3) as sup:
        with pytest.raises(RolloutError, match="deterministic construction failure") as info:
            _fetch(sup.next_fragment(timeout=60))
        assert sup.stats()["env_errors"] == 3 and sup.stats()["fragments"] == 0
    assert "failed 3 times in a row" in str(info.value)
    assert time.monotonic() - start < 30


def test_deterministic_env_error_in_sample_raises(tmp_path):
    factory = FaultyEnvFactory(counter_env, {"p_raise": 0.5, "seed": 1})
    with Supervisor(_spec(factory), 1, sample_timeout_s=DEADLINE, max_consecutive_failures=3) as sup:
        with pytest.raises(RolloutError, match="InjectedFault"):
            for _ in range(20):
                _fetch(sup.next_fragment(timeout=60))
        assert sup.stats()["env_errors"] >= 3


def test_memory_limit_recycles_runners_and_derived_deadline_and_per_runner_policy():
    spec = RunnerSpec(counter_env, policy_for_runner=lambda i: ConstantPolicy(i + 1), envs_per_runner=2, fragment_length=LENGTH, num_cpus=0.5)
    with Supervisor(spec, 2, memory_limit_bytes=1, min_timeout_s=3.0, first_timeout_s=30) as sup:
        fragments = [_fetch(sup.next_fragment(timeout=60)) for _ in range(4)]
        sup.set_weights(7)
        later = [_fetch(sup.next_fragment(timeout=60)) for _ in range(4)]
        stats = sup.stats()
    assert stats["recycled"] == stats["fragments"] == 8 and stats["restarts"] == 8
    assert all(np.all(f.actions == 7) for f in later[2:])  # recycled runners get the current weights
    assert stats["lost_fragments"] == 0 and stats["hangs"] == 0
    assert {f.runner_index for f in fragments} == {0, 1}
    assert all(np.all(f.actions == f.runner_index + 1) for f in fragments)
    assert stats["sample_timeout_s"] == 3.0  # derived: max(min_timeout_s, k * p95) once 5 fragments are seen


def test_stall_detection_kills_a_stuck_runner_before_its_deadline_but_spares_a_slow_one(tmp_path, caplog):
    log_dir = str(tmp_path)
    # fragment 1: three 1.2 s steps in a row (slow, progressing); fragment 2: a hang. Toy steps
    # take microseconds, so the stall limit is the 2 s floor; the deadline is 20 s.
    schedule = [(12, "slow"), (13, "slow"), (14, "slow"), (25, "hang")]
    factory = FaultyEnvFactory(counter_env, {"schedule": schedule, "slow_s": 1.2, "log_dir": log_dir})
    with caplog.at_level(logging.ERROR, logger="firebreak.rollout.supervisor"):
        with Supervisor(_spec(factory), 1, sample_timeout_s=20, stall_factor=20, stall_floor_s=2.0) as sup:
            fragments = [_fetch(sup.next_fragment(timeout=60)) for _ in range(3)]
            stats = sup.stats()
    assert fragments[1].sample_seconds > 3.5  # the slow fragment was not killed
    assert stats["hangs"] == 1 and stats["lost_fragments"] == 1
    hang = read_injections(log_dir)[-1]
    [record] = [r for r in caplog.records if "stalled" in r.getMessage()]
    assert "env.step() running for" in record.getMessage()  # told by the heartbeat, not by silence
    assert 2.0 <= record.created - hang.time <= 2.0 + 0.5  # far below the 20 s deadline


def test_rollout_config_defaults_detect_a_hang_in_a_training_like_loop(tmp_path, caplog):
    """Supervisor options as train.py passes them from `RolloutConfig()` defaults, two runners,
    a driver that spends time on each fragment (the learner's share): the hang is found within
    max(stall_factor x median step, stall_floor_s) + a margin, far before the 30 s deadline."""
    cfg = RolloutConfig()
    assert cfg.stall_factor == 20 and cfg.stall_floor_s == 0.5  # on by default
    log_dir = str(tmp_path)
    factory = FaultyEnvFactory(counter_env, {"schedule": [(57, "hang")], "log_dir": log_dir})
    spec = RunnerSpec(factory, RandomPolicy(4), envs_per_runner=cfg.envs_per_runner, fragment_length=LENGTH, num_cpus=0.5)
    fragments = []
    with caplog.at_level(logging.ERROR, logger="firebreak.rollout.supervisor"):
        with Supervisor(spec, 2, sample_timeout_s=cfg.sample_timeout_s, min_timeout_s=cfg.min_timeout_s,
                        first_timeout_s=cfg.first_timeout_s, max_consecutive_failures=cfg.max_consecutive_failures,
                        stall_factor=cfg.stall_factor, stall_floor_s=cfg.stall_floor_s,
                        spare_runners=cfg.spare_runners) as sup:
            while sup.stats()["hangs"] == 0 or len(fragments) < 14:
                fragments.append(_fetch(sup.next_fragment(timeout=60)))
                time.sleep(0.02)  # the driver's own work per fragment
            stats = sup.stats()
    [hang] = read_injections(log_dir)
    [record] = [r for r in caplog.records if "stalled" in r.getMessage()]
    # the toy env's steps take microseconds: 20 x median is far below the floor
    assert stats["stall_limit_s"] == 0.5 and stats["sample_timeout_s"] >= 30.0
    assert stats["hangs"] == 1 and stats["crashes"] == 0 and stats["restarts"] == 1
    assert stats["lost_steps"] == 1 and stats["salvaged_steps"] == hang.step % LENGTH
    assert 0.5 <= record.created - hang.time <= 0.5 + 0.5
    # the hung call's steps before the hang reached the driver, the hung one and later ones not
    assert max(f.next_obs[..., 3].max() for f in fragments if f.pid == hang.pid) == hang.step


BUILD_S = 2.0  # construction time of the envs in the hot-spare test (a real env loads rasters, caches)


def _after_a_crash(log_dir, spares, caplog):
    """One runner (+ ``spares``) whose env crashes at step 25, run until the crashed actor is
    back. Returns (seconds from the crash to the first fragment made after it, time.time() when
    the crashed actor was ready again, fragments, stats, the crash)."""
    factory = FaultyEnvFactory(functools.partial(counter_env, build_s=BUILD_S), {"schedule": [(25, "exit")], "log_dir": log_dir})
    fragments, arrived = [], []
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="firebreak.rollout.supervisor"):
        with Supervisor(_spec(factory), 1, sample_timeout_s=CRASH_DEADLINE, restart_timeout_s=30, spare_runners=spares) as sup:
            while len(fragments) < 5 or sup.stats()["restart_latency_max_s"] == 0:
                fragments.append(_fetch(sup.next_fragment(timeout=60)))
                arrived.append(time.time())
            stats = sup.stats()
    [crash] = read_injections(log_dir)
    [detected] = [r.created for r in caplog.records if "exited during sample" in r.getMessage()]
    # The first fragment made after the crash is the first from another process (a spare or the
    # restarted actor); a fragment of the crashed process can still arrive after the crash, late.
    gap = next(t for f, t in zip(fragments, arrived) if f.pid != crash.pid) - crash.time
    return gap, detected + stats["restart_latency_max_s"], fragments, stats, crash


def _replay(seed, n):
    """``n`` fragments of a fault-free in-process runner with ``seed``: what a runner seeded so must deliver."""
    runner = Runner(counter_env, RandomPolicy(4), 1, LENGTH, seed, 0)
    return [_fetch(runner.sample()) for _ in range(n)]


def test_a_hot_spare_takes_a_crashed_runners_slot_before_its_restart_and_delivers_only_real_steps(tmp_path, caplog):
    gap_alone, _, _, alone, _ = _after_a_crash(str(tmp_path / "alone"), 0, caplog)
    gap_spare, back_at, fragments, stats, crash = _after_a_crash(str(tmp_path / "spare"), 1, caplog)
    print(f"crash to next fragment: {gap_spare:.2f} s with a spare, {gap_alone:.2f} s without (envs build in {BUILD_S} s)")
    assert alone["crashes"] == 1 and alone["spare_takeovers"] == 0
    assert stats["crashes"] == 1 and stats["spare_takeovers"] == 1 and stats["restarts"] == 1
    assert stats["lost_fragments"] == 1 and stats["fragments"] == len(fragments)
    # The spare delivered before the crashed actor was even back, and much sooner than without one.
    assert crash.time + gap_spare < back_at
    assert gap_spare < gap_alone - 0.5 * BUILD_S
    # Every delivered transition is real: fragments 0-1 are runner 0's (seed 0) fault-free
    # fragments, then the spare's (seed 1, its own envs) from its first step; the crashed call's
    # steps 20-25 never arrive and nothing is duplicated.
    first, spare = _replay(0, 2), _replay(1, len(fragments) - 2)
    assert [f.pid for f in fragments[:2]] == [crash.pid] * 2 and crash.pid not in {f.pid for f in fragments[2:]}
    assert all(f.runner_index == 0 for f in fragments)  # the spare acts as runner 0
    for got, want in zip(fragments, first + spare):
        for name in ("obs", "actions", "rewards", "terminated", "truncated", "next_obs", "next_masks"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)


@pytest.mark.parametrize("kind", ["hang", "raise", "exit"])
def test_a_fault_loses_only_its_step_or_unfinished_chunk_and_every_delivered_transition_is_real(tmp_path, kind):
    """Fragments of 10 steps streamed in chunks of 4; the fault at step 13 (row 3 of the second
    fragment, the last row of its chunk [10, 14)). A hang (asked through the heartbeat group) and
    an env error hand over steps 10-12 and lose step 13; a dead process loses its unfinished
    chunk, steps 10-13. What arrives is exactly the fault-free replay of the same seed, cut there."""
    log_dir = str(tmp_path)
    factory = FaultyEnvFactory(counter_env, {"schedule": [(13, kind)], "log_dir": log_dir})
    deadline = CRASH_DEADLINE if kind == "exit" else DEADLINE
    with Supervisor(_spec(factory), 1, sample_timeout_s=deadline, restart_timeout_s=30, chunk_length=4) as sup:
        fragments = [_fetch(sup.next_fragment(timeout=60)) for _ in range(3 if kind == "exit" else 4)]
        stats = sup.stats()
    [fault] = read_injections(log_dir)
    first = [f for f in fragments if f.pid == fault.pid]
    assert [f.length for f in first] == ([10] if kind == "exit" else [10, 3])
    assert stats["lost_fragments"] == 1
    assert stats["lost_steps"] == (4 if kind == "exit" else 1)
    assert stats["salvaged_steps"] == (0 if kind == "exit" else 3)
    assert stats["env_steps"] == sum(f.num_steps for f in fragments)
    replay = _replay(0, 2)
    got = {name: np.concatenate([getattr(f, name) for f in first], axis=1) for name in ("obs", "actions", "rewards", "next_obs", "next_masks", "terminated")}
    for name, value in got.items():
        want = np.concatenate([getattr(r, name) for r in replay], axis=1)[:, : value.shape[1]]
        np.testing.assert_array_equal(value, want, err_msg=name)
    later = [f for f in fragments if f.pid != fault.pid]
    assert later and all(f.length == LENGTH for f in later)  # the restarted runner: whole fragments again


def test_a_spare_that_dies_while_idle_is_restarted_without_losing_a_call():
    with Supervisor(_spec(counter_env), 1, sample_timeout_s=CRASH_DEADLINE, restart_timeout_s=30, spare_runners=1) as sup:
        _fetch(sup.next_fragment(timeout=60))
        spare = sup._spares[0]
        end = time.monotonic() + 30
        while spare.kind != "idle" and time.monotonic() < end:
            _fetch(sup.next_fragment(timeout=60))
        pid = spare.pid
        os.kill(pid, signal.SIGKILL)  # the spare's worker process, by pid
        while not (sup.stats()["crashes"] == 1 and spare.kind == "idle") and time.monotonic() < end:
            _fetch(sup.next_fragment(timeout=60))
        stats = sup.stats()
    assert stats["crashes"] == 1 and stats["restarts"] == 1 and stats["lost_fragments"] == stats["lost_steps"] == 0, stats
    assert spare.kind == "idle" and spare.pid != pid and stats["spare_takeovers"] == 0


def test_rollout_config_stall_and_spare_fields_are_validated():
    from firebreak.config import ConfigError, config_from_dict

    assert RolloutConfig(stall_factor=None).stall_factor is None  # deadline only
    for bad, field in (({"stall_factor": 0}, "rollout.stall_factor"), ({"stall_floor_s": -1}, "rollout.stall_floor_s"),
                       ({"spare_runners": -1}, "rollout.spare_runners"), ({"spare_runner": 1}, "rollout.spare_runner"),
                       ({"chunk_length": 0}, "rollout.chunk_length"),
                       ({"chunk_length": 64, "fragment_length": 32}, "rollout.chunk_length (64) must not exceed")):
        with pytest.raises(ConfigError, match=re.escape(field)):
            config_from_dict({"rollout": bad}, "x.yaml")
