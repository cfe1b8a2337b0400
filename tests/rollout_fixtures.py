"""Toy envs, policies and a private Ray instance for the rollout tests.

Kept out of ``conftest.py`` so other layers' fixtures don't collide; test modules import the
``ray_local`` fixture from here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import gymnasium as gym
import numpy as np
import pytest
import ray


class PlainCounterEnv(gym.Env):
    """Deterministic toy env without action masks (see `CounterEnv`).

    obs = [t in episode, last action, seed-derived offset, total steps of this instance];
    reward = action; terminates after ``length`` steps, truncates at ``truncate_at`` if set.
    ``fail=True`` raises in construction; ``build_s`` seconds of construction time stand for a
    real env's (rasters, caches).
    """

    metadata: dict = {}

    def __init__(self, n_actions: int = 4, length: int = 5, truncate_at: int | None = None, fail: bool = False,
                 build_s: float = 0.0):
        if fail:
            raise ValueError("CounterEnv(fail=True): deterministic construction failure")
        time.sleep(build_s)
        self.observation_space = gym.spaces.Box(-1e9, 1e9, (4,), np.float32)
        self.action_space = gym.spaces.Discrete(n_actions)
        self.n_actions, self.length, self.truncate_at = n_actions, length, truncate_at
        self._t, self._total, self._offset = 0, 0, 0.0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        self._offset = float(self.np_random.integers(100))
        return self._obs(0), {"offset": self._offset, "phase": "reset"}

    def _obs(self, action):
        return np.array([self._t, action, self._offset, self._total], np.float32)

    def step(self, action):
        self._t += 1
        self._total += 1
        terminated = self._t >= self.length
        truncated = self.truncate_at is not None and self._t >= self.truncate_at and not terminated
        return self._obs(int(action)), float(action), terminated, truncated, {"t": self._t, "vec": np.arange(2) + self._t}


class CounterEnv(PlainCounterEnv):
    """`PlainCounterEnv` whose ``action_masks()`` forbids action ``t % n_actions``."""

    def action_masks(self):
        mask = np.ones(self.n_actions, bool)
        mask[self._t % self.n_actions] = False
        return mask


def counter_env(**kwargs) -> CounterEnv:
    return CounterEnv(**kwargs)


class ConstantPolicy:
    """Always plays the action given as weights (``default`` before any ``set_weights``)."""

    def __init__(self, default: int = 0):
        self.action = default

    def __call__(self, obs_batch, masks, rng):
        return np.full(len(obs_batch), self.action, dtype=np.int64)

    def set_weights(self, weights):
        self.action = int(weights)


@pytest.fixture(scope="session")
def ray_local():
    """A private local Ray instance (never attaches to another cluster on this machine).

    Each test module imports this fixture, which makes one session fixture per module: the
    first one starts Ray, the others reuse it.
    """
    if ray.is_initialized():
        yield
        return
    # Workers unpickle the toy envs by reference: they must import `tests.rollout_fixtures`.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    temp_dir = tempfile.mkdtemp(prefix="rfb_", dir="/tmp")
    ray.init(address="local", num_cpus=2, include_dashboard=False, _temp_dir=temp_dir, log_to_driver=False)
    yield
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


class LayeredEnv(gym.Env):
    """Cheap env with FuelBreakEnv-like observations: ``(channels, side, side)`` float32 in
    [-5, 5], the first ``channels - 4`` layers fixed per episode (``static_channels``), the last
    four changing every step (the step count, the treated cells, random noise, the mask); an
    ``action_masks()`` that forbids treated cells; episodes of ``length`` steps."""

    metadata: dict = {}

    def __init__(self, channels: int = 18, side: int = 24, length: int = 7):
        self.observation_space = gym.spaces.Box(-5.0, 5.0, (channels, side, side), np.float32)
        self.action_space = gym.spaces.Discrete(side * side)
        self.static_channels = tuple(range(channels - 4))
        self.length, self.side = length, side

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        c = self.observation_space.shape[0]
        self._obs = np.zeros(self.observation_space.shape, np.float32)
        self._obs[: c - 4] = self.np_random.uniform(-5, 5, (c - 4, self.side, self.side))
        self._obs[-1] = 1.0
        self._t = 0
        return self._obs.copy(), {}

    def action_masks(self):
        return self._obs[-1].ravel() > 0

    def step(self, action):
        self._t += 1
        self._obs[-4] = self._t / self.length
        self._obs[-3].flat[int(action)] = 1.0
        self._obs[-2] = self.np_random.standard_normal((self.side, self.side))
        self._obs[-1].flat[int(action)] = 0.0
        return self._obs.copy(), float(self._t), self._t >= self.length, False, {}
