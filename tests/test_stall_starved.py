"""Stall detection tells a step starved of CPU (an overloaded machine) from a stuck one."""

import threading
import time

import gymnasium as gym
import numpy as np
import pytest

from firebreak.rollout import RandomPolicy
from firebreak.rollout.env_process import STARVED_GRACE
from firebreak.rollout.runner import Runner
from firebreak.rollout.supervisor import _starved

pytestmark = pytest.mark.timeout(60)


class _StepEnv(gym.Env):
    """One-cell env whose step sleeps or spins (CPU) for ``seconds``."""

    def __init__(self, spin: bool, seconds: float = 0.6):
        self.observation_space = gym.spaces.Box(0, 1, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.spin, self.seconds = spin, seconds

    def reset(self, *, seed=None, options=None):
        return np.zeros(1, np.float32), {}

    def step(self, action):
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            if not self.spin:
                time.sleep(0.01)
        return np.zeros(1, np.float32), 0.0, False, False, {}


@pytest.mark.parametrize("spin", [False, True])
def test_the_heartbeat_reports_the_ops_cpu_time_and_whether_it_is_runnable(spin):
    runner = Runner(lambda: _StepEnv(spin), RandomPolicy(2), 1, 1, seed=0)
    worker = threading.Thread(target=runner.sample)
    worker.start()
    time.sleep(0.4)
    beat = runner.heartbeat()
    worker.join()
    assert beat["op"] == "step" and beat["op_seconds"] >= 0.3
    if spin:  # spinning: runnable, using CPU (its share of a loaded machine)
        assert beat["op_runnable"] and beat["op_cpu_seconds"] >= 0.02
    else:  # asleep: not runnable, no CPU used
        assert not beat["op_runnable"] and beat["op_cpu_seconds"] < 0.015


def test_only_a_runnable_op_short_of_cpu_time_is_starved():
    limit = 0.5
    beat = {"op_seconds": 2.0, "op_runnable": True, "op_cpu_seconds": 0.1}
    assert _starved(beat, limit)
    assert not _starved({**beat, "op_runnable": False}, limit)  # asleep or blocked: stuck
    assert not _starved({**beat, "op_cpu_seconds": 0.6}, limit)  # a busy loop: it had its CPU
    assert not _starved({**beat, "op_seconds": STARVED_GRACE * limit}, limit)  # waited long enough
    assert not _starved({"op_seconds": 2.0}, limit)  # no thread state (not Linux): the limit holds
