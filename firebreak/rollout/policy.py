"""Policies the runners step their envs with.

A policy is any picklable object with

* ``__call__(obs_batch, masks, rng) -> actions``: ``obs_batch`` is ``(B, *obs_shape)``,
  ``masks`` a ``(B, n_actions)`` bool array of allowed actions or ``None``, ``rng`` a
  ``numpy.random.Generator`` owned by the runner; returns ``(B,)`` actions;
* ``set_weights(weights)``: load new weights (whatever ``Supervisor.set_weights`` was given).

`firebreak.dqn.QPolicy` (epsilon-greedy on a CPU copy of the Q-network) is the one training
uses; `RandomPolicy` serves tests and benchmarks. The placement layer's policies
(`firebreak.placement.Policy`: one env in, one action out) are what evaluation compares; they
do not run in runners.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class Policy(Protocol):
    def __call__(self, obs_batch: np.ndarray, masks: np.ndarray | None, rng: np.random.Generator) -> np.ndarray: ...

    def set_weights(self, weights: Any) -> None: ...


class RandomPolicy:
    """Uniform over the allowed actions of a ``Discrete(n_actions)`` space; it has no weights."""

    def __init__(self, n_actions: int):
        self.n_actions = int(n_actions)

    def __call__(self, obs_batch: np.ndarray, masks: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
        if masks is None:
            return rng.integers(self.n_actions, size=len(obs_batch))
        return np.array([rng.choice(np.flatnonzero(mask)) for mask in masks], dtype=np.int64)

    def set_weights(self, weights: Any) -> None:
        pass
