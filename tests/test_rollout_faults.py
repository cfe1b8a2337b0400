"""FaultInjector without Ray: each kind does what it says, schedules fire once, logs are exact."""

import faulthandler
import multiprocessing
import os
import signal
import time

import pytest

from firebreak.rollout.faults import FaultInjector, FaultyEnvFactory, InjectedFault, read_injections
from tests.rollout_fixtures import CounterEnv, counter_env

pytestmark = pytest.mark.timeout(60)


def _step_until_fault(log_dir, kind):
    faulthandler.disable()  # pytest's handler would print a traceback for the intended segfault
    env = FaultInjector(CounterEnv(), schedule=[(2, kind)], log_dir=log_dir)
    env.reset(seed=0)
    for _ in range(5):
        env.step(1)


@pytest.mark.parametrize(
    "kind, exitcode", [("exit", 3), ("sigkill", -signal.SIGKILL), ("sigsegv", -signal.SIGSEGV)]
)
def test_crash_kinds_end_the_process(tmp_path, kind, exitcode):
    proc = multiprocessing.get_context("fork").Process(target=_step_until_fault, args=(str(tmp_path), kind))
    proc.start()
    proc.join(20)
    assert proc.exitcode == exitcode
    [(logged_kind, pid, step, _)] = read_injections(str(tmp_path))
    assert (logged_kind, pid, step) == (kind, proc.pid, 2)


@pytest.mark.parametrize("kind", ["hang", "busy_hang"])
def test_hang_kinds_never_return(tmp_path, kind):
    proc = multiprocessing.get_context("fork").Process(target=_step_until_fault, args=(str(tmp_path), kind))
    proc.start()
    proc.join(1.0)
    alive = proc.is_alive()
    os.kill(proc.pid, signal.SIGKILL)  # the process we started, by pid
    proc.join()
    assert alive
    assert [i.kind for i in read_injections(str(tmp_path))] == [kind]


def test_raise_and_slow_and_schedule_fires_once(tmp_path):
    log_dir = str(tmp_path)
    schedule = [(1, "slow"), (3, "raise")]
    env = FaultInjector(CounterEnv(), schedule=schedule, slow_s=0.2, log_dir=log_dir)
    env.reset(seed=0)
    env.step(0)
    t = time.monotonic()
    env.step(0)
    assert time.monotonic() - t >= 0.2
    env.step(0)
    with pytest.raises(InjectedFault):
        env.step(0)
    # A second instance (a restarted runner) does not fire the claimed entries again.
    again = FaultInjector(CounterEnv(), schedule=schedule, slow_s=0.2, log_dir=log_dir)
    again.reset(seed=0)
    for _ in range(5):
        again.step(0)
    assert [(i.kind, i.step) for i in read_injections(log_dir)] == [("slow", 1), ("raise", 3)]


def test_probabilities_are_seeded_and_forward_masks(tmp_path):
    env = FaultyEnvFactory(counter_env, {"seed": 3, "p_raise": 0.2, "log_dir": str(tmp_path)})()
    env.reset(seed=0)
    assert env.get_wrapper_attr("action_masks")().dtype == bool
    raised = 0
    for _ in range(200):
        try:
            env.step(0)
        except InjectedFault:
            raised += 1
    assert 20 <= raised <= 60
    assert len(read_injections(str(tmp_path))) == raised


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultInjector(CounterEnv(), schedule=[(1, "explode")], log_dir="/tmp")
    with pytest.raises(ValueError, match="log_dir"):
        FaultInjector(CounterEnv(), schedule=[(1, "raise")])
    with pytest.raises(ValueError, match="probabilities"):
        FaultInjector(CounterEnv(), p_hang=0.7, p_exit=0.7)
    with pytest.raises(TypeError):
        FaultInjector.from_config(CounterEnv(), {"p_explode": 0.1})


def test_metrics_dict_without_ray():
    from firebreak.rollout import RolloutMetrics

    metrics = RolloutMetrics(export_to_ray=False)
    metrics.add("hangs")
    metrics.add("lost_steps", 16)
    metrics.restart_latency(1.0)
    metrics.restart_latency(3.0)
    stats = metrics.as_dict()
    assert stats["hangs"] == 1 and stats["lost_steps"] == 16 and stats["crashes"] == 0
    assert stats["restart_latency_mean_s"] == 2.0 and stats["restart_latency_max_s"] == 3.0
