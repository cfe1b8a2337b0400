"""Toy envs and a private Ray instance for the rollout tests.

Kept out of ``conftest.py`` so other layers' fixtures don't collide; test modules import the
fixture ``ray_local`` from here.
"""

from __future__ import annotations

import shutil
import tempfile

import gymnasium as gym
import numpy as np
import pytest
import ray


class CounterEnv(gym.Env):
    """Deterministic: obs = [step count, last action, seed-derived offset]; reward = action;
    terminates after ``length`` steps, truncation after ``truncate_at`` when set.
    ``action_masks()`` (when ``masked``) forbids action ``step % n_actions``."""

    metadata: dict = {}

    def __init__(self, n_actions: int = 4, length: int = 5, truncate_at: int | None = None, masked: bool = True, fail: bool = False):
        if fail:
            raise ValueError("CounterEnv(fail=True): deterministic construction failure")
        self.observation_space = gym.spaces.Box(-1e6, 1e6, (3,), np.float32)
        self.action_space = gym.spaces.Discrete(n_actions)
        self.n_actions, self.length, self.truncate_at, self.masked = n_actions, length, truncate_at, masked
        self._t, self._offset = 0, 0.0
        if not masked:
            self.action_masks = None  # the runner must see "no masks"
            del self.action_masks

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        self._offset = float(self.np_random.integers(100))
        return self._obs(0), {"offset": self._offset, "kind": "reset"}

    def _obs(self, action):
        return np.array([self._t, action, self._offset], np.float32)

    def step(self, action):
        self._t += 1
        terminated = self._t >= self.length
        truncated = self.truncate_at is not None and self._t >= self.truncate_at and not terminated
        return self._obs(int(action)), float(action), terminated, truncated, {"t": self._t, "vec": np.arange(2)}

    def action_masks(self):
        mask = np.ones(self.n_actions, bool)
        mask[self._t % self.n_actions] = False
        return mask


def counter_env(**kwargs):
    return CounterEnv(**kwargs)


@pytest.fixture(scope="session")
def ray_local():
    """A private local Ray instance (never attaches to another cluster on this machine)."""
    temp_dir = tempfile.mkdtemp(prefix="rfb_", dir="/tmp")
    ray.init(address="local", num_cpus=2, include_dashboard=False, _temp_dir=temp_dir, log_to_driver=False)
    yield
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)
