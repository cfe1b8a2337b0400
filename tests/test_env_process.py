"""Envs in their own processes (``isolate_envs``): a crash, hang or error of env code costs a
respawned env process, not the runner; every delivered transition is real and every loss counted."""

import time

import numpy as np
import psutil
import pytest

from firebreak.rollout import FaultyEnvFactory, RandomPolicy, RunnerSpec, Supervisor, read_injections
from firebreak.rollout.env_process import STARVED_GRACE, EnvHost, EnvProcessFault, ProcessEnv
from firebreak.rollout.runner import Runner
from tests.rollout_fixtures import PlainCounterEnv, counter_env, ray_local  # noqa: F401

pytestmark = pytest.mark.timeout(120)

LENGTH = 10
LIMITS = {"step": 0.5, "reset": 5.0}
KIND = {"exit": "crashes", "sigkill": "crashes", "sigsegv": "crashes", "hang": "hangs", "busy_hang": "hangs",
        "raise": "env_errors"}
FIELDS = ("obs", "actions", "rewards", "terminated", "truncated", "next_obs", "next_masks")


def _joined(fragments, name):
    return np.concatenate([getattr(f.arrays(), name) for f in fragments], axis=1)


def _paired(items):
    """`Runner.sample_chunks` items (each chunk's arrays, then its record) as records holding their arrays."""
    for arrays, record in zip(items[0::2], items[1::2]):
        record.transitions = [arrays]
    return items[1::2]


def test_isolated_runner_delivers_what_an_in_process_runner_does():
    isolated = Runner(counter_env, RandomPolicy(4), 2, LENGTH, seed=3, isolate_envs=True)
    plain = Runner(counter_env, RandomPolicy(4), 2, LENGTH, seed=3)
    for _ in range(2):
        got, want = isolated.sample(), plain.sample()
        for name in FIELDS:
            np.testing.assert_array_equal(getattr(got.arrays(), name), getattr(want.arrays(), name), err_msg=name)
        assert [(e.env_index, e.step, e.return_) for e in got.episodes] == [(e.env_index, e.step, e.return_) for e in want.episodes]
        assert got.fault is None


@pytest.mark.parametrize("kind", list(KIND))
def test_a_fault_in_an_env_process_loses_its_step_and_the_runner_goes_on(tmp_path, kind):
    """Fault at step 13 (row 3 of the second fragment): the call ends with rows 10-12 and an
    `EnvFault`; steps 0-12 equal the fault-free replay; the runner process is the same and its
    next call delivers a whole fragment from a fresh env instance (obs[3] counts its steps)."""
    factory = FaultyEnvFactory(counter_env, {"schedule": [(13, kind)], "log_dir": str(tmp_path)})
    runner = Runner(factory, RandomPolicy(4), 1, LENGTH, seed=0, isolate_envs=True)
    calls = []
    for _ in range(3):
        started = time.monotonic()
        calls.append((_paired(list(runner.sample_chunks(chunk_length=4, stall_limits=LIMITS))), time.monotonic() - started))
    [fault] = read_injections(str(tmp_path))
    (first, _), (second, fault_s), (third, _) = calls
    assert [c.length for c in first] == [4, 4, 2] and first[-1].fault is None
    assert [c.length for c in second] == [3]
    assert (second[0].fault.kind, second[0].fault.lost_steps, second[0].fault.env_index) == (KIND[kind], 1, 0)
    assert str(fault.pid) in second[0].fault.message and fault.pid != second[0].pid
    if kind == "hang":  # asleep: found at the limit
        assert LIMITS["step"] <= fault_s < LIMITS["step"] + 1.0
    if kind == "busy_hang":  # found once it has used the limit in CPU time (later on a loaded machine)
        assert LIMITS["step"] <= fault_s < STARVED_GRACE * LIMITS["step"] + 1.0
    replay = Runner(counter_env, RandomPolicy(4), 1, LENGTH, seed=0)
    want = [replay.sample(), replay.sample()]
    for name in FIELDS:
        np.testing.assert_array_equal(_joined(first + second, name), _joined(want, name)[:, :13], err_msg=name)
    assert sum(c.length for c in third) == LENGTH and {c.pid for c in first + second + third} == {second[0].pid}
    np.testing.assert_array_equal(_joined(third, "next_obs")[0, :, 3], np.arange(1, LENGTH + 1))


@pytest.mark.parametrize("looks_starved, slow_s, answers", [(False, 1.0, False), (True, 1.0, True), (True, 3.0, False)])
def test_a_step_past_its_limit_is_waited_for_only_while_starved_of_cpu(tmp_path, monkeypatch, looks_starved, slow_s, answers):
    """A 1 s step (asleep) with a 0.2 s limit is a hang; the same step while the child looks
    runnable without having used the limit in CPU time (what an overloaded machine shows) is
    waited for, up to STARVED_GRACE x the limit (2 s): a 3 s one is a hang even then."""
    limit = 0.2
    if looks_starved:
        monkeypatch.setattr(ProcessEnv, "_starved", lambda self, limit: True)
    host = EnvHost(FaultyEnvFactory(counter_env, {"schedule": [(1, "slow")], "slow_s": slow_s, "log_dir": str(tmp_path)}))
    env = host.spawn({"step": limit, "reset": None})
    env.reset(seed=0)
    env.step(0)
    started = time.monotonic()
    if answers:
        env.step(1)
        assert time.monotonic() - started >= slow_s
    else:
        with pytest.raises(EnvProcessFault, match="ran past its limit") as err:
            env.step(1)
        assert err.value.kind == "hang"
        waited = time.monotonic() - started
        expected = STARVED_GRACE * limit if looks_starved else limit
        assert expected <= waited < expected + 0.5
    host.close()


def test_env_construction_errors_fail_with_the_envs_traceback():
    with pytest.raises(RuntimeError, match="deterministic construction failure"):
        EnvHost(lambda: PlainCounterEnv(fail=True))


def test_env_processes_end_with_their_runner():
    host = EnvHost(counter_env)
    env = host.spawn(dict(LIMITS))
    env.reset(seed=0)
    processes = [psutil.Process(host._proc.pid), psutil.Process(env.pid)]
    host._conn.close()  # what the runner's death does to the template's socket
    gone, alive = psutil.wait_procs(processes, timeout=10)
    assert not alive
    with pytest.raises(EnvProcessFault) as err:
        env.step(0)
    assert err.value.kind == "crash"


def test_a_fault_of_a_later_env_loses_the_step_of_every_env_that_had_stepped(tmp_path):
    """Two envs: env 0 crashes at its step 3 (row 3: lost 1 step); later env 1 crashes at its
    step 7 (row 4 of the next call, after env 0 had stepped: lost 2); env 1 goes on from its
    current obs between the calls, env 0 from a fresh instance."""
    factory = FaultyEnvFactory(counter_env, {"schedule": [(3, "exit"), (7, "exit")], "log_dir": str(tmp_path)})
    runner = Runner(factory, RandomPolicy(4), 2, LENGTH, seed=0, isolate_envs=True)
    first, second = runner.sample(stall_limits=LIMITS), runner.sample(stall_limits=LIMITS)
    assert (first.length, first.fault.env_index, first.fault.lost_steps) == (3, 0, 1)
    assert (second.length, second.fault.env_index, second.fault.lost_steps) == (4, 1, 2)
    next_obs = second.arrays().next_obs
    np.testing.assert_array_equal(next_obs[1, :, 3], [4, 5, 6, 7])  # env 1: its steps 3-6
    np.testing.assert_array_equal(next_obs[0, :, 3], [1, 2, 3, 4])  # env 0: a new instance


@pytest.mark.usefixtures("ray_local")
def test_supervisor_counts_every_env_process_fault_exactly_without_restarting_a_runner(tmp_path):
    """Scheduled crashes (exit, SIGSEGV), hangs and errors in 2 runners: each is counted as its
    kind and loses exactly its step; no runner restarts (one pid per slot throughout); every
    delivered fragment is consecutive steps of one env instance."""
    schedule = [(7, "exit"), (12, "hang"), (18, "raise"), (23, "sigsegv"), (29, "busy_hang"), (34, "raise")]
    spec = RunnerSpec(FaultyEnvFactory(counter_env, {"schedule": schedule, "log_dir": str(tmp_path)}), RandomPolicy(4),
                      fragment_length=LENGTH, num_cpus=0.5, isolate_envs=True)
    fragments = []
    with Supervisor(spec, 2, chunk_length=4, stall_factor=20, stall_floor_s=0.5, max_consecutive_failures=3) as sup:
        deadline = time.monotonic() + 90
        while sup.stats()["env_respawns"] < len(schedule) or len(fragments) < 20:
            assert time.monotonic() < deadline, sup.stats()
            fragments.append(sup.next_fragment(timeout=60))
        stats = sup.stats()
    want = {"crashes": 0, "hangs": 0, "env_errors": 0}
    for inj in read_injections(str(tmp_path)):
        want[KIND[inj.kind]] += 1
    assert {kind: stats[kind] for kind in want} == want
    assert stats["lost_steps"] == stats["lost_fragments"] == stats["env_respawns"] == len(schedule)
    assert stats["restarts"] == stats["replacements"] == stats["spare_takeovers"] == 0
    assert len({f.pid for f in fragments}) == 2
    assert stats["env_steps"] == sum(f.num_steps for f in fragments)
    for frag in fragments:
        steps = frag.arrays().next_obs[0, :, 3]
        np.testing.assert_array_equal(steps, steps[0] + np.arange(frag.length))
