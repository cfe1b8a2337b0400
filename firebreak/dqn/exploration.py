"""Exploration: Ape-X per-runner epsilons, decaying schedules, masked epsilon-greedy actions,
and `QPolicy`, the acting side of the DQN (a CPU copy of the learner's Q-network).

`QPolicy` has the shape of the rollout layer's policy protocol (`firebreak.rollout.Policy`):
``policy(obs_batch, masks, rng) -> actions`` and ``set_weights(payload)``, where the payload
the driver broadcasts is ``{"weights": state_dict, "epsilon": base}``. Runner ``i`` of ``N``
explores with the Ape-X epsilon ``base ** (1 + apex_alpha * i / (N - 1))`` (Horgan et al.
2018): a spread of explorers from the decaying base value down to almost greedy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .networks import build_q_network, masked_argmax


def apex_epsilons(num_runners: int, epsilon: float = 0.4, alpha: float = 7.0) -> np.ndarray:
    """Ape-X (Horgan et al. 2018) fixed epsilons, eps_i = epsilon ** (1 + alpha * i / (N - 1)).

    Runner 0 explores most (eps_0 = epsilon), runner N-1 least (epsilon ** (1 + alpha)).
    A single runner gets epsilon. Returns (N,) float64.
    """
    fraction = np.arange(num_runners) / max(num_runners - 1, 1)
    return epsilon ** (1.0 + alpha * fraction)


def linear_schedule(start: float, end: float, duration: int, step: int) -> float:
    """start at step 0, straight line to end at `duration` steps, end afterwards."""
    return end + (start - end) * max(1.0 - step / duration, 0.0)


def exponential_schedule(start: float, end: float, duration: int, step: int) -> float:
    """start at step 0, geometric decay to end at `duration` steps, end afterwards (start, end > 0)."""
    return start * (end / start) ** min(step / duration, 1.0)


def act(
    q_network: nn.Module,
    obs: np.ndarray,
    mask: np.ndarray,
    epsilon: float | np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Masked epsilon-greedy actions for a batch of states.

    obs: (B, C, H, W) float; mask: (B, H*W) bool, True where the cell may be treated;
    epsilon: probability of a random action, a scalar or one per row (B,).
    With probability epsilon a row takes a uniformly random valid cell, otherwise the
    valid cell with the largest Q. Returns (B,) int64 actions, always valid; raises
    ValueError if a row has no valid cell. The network runs only on the greedy rows.
    """
    if not mask.any(axis=1).all():
        raise ValueError(f"act: rows {np.flatnonzero(~mask.any(axis=1)).tolist()} have no valid action")
    explore = rng.random(len(obs)) < epsilon
    actions = np.empty(len(obs), np.int64)
    random_rows, greedy = np.flatnonzero(explore), np.flatnonzero(~explore)
    # The argmax of uniform noise over the valid cells is a uniform draw among them.
    noise = rng.random((len(random_rows), mask.shape[1]))
    actions[random_rows] = np.where(mask[random_rows], noise, -1.0).argmax(axis=1)
    if len(greedy):
        device = next(q_network.parameters()).device
        with torch.no_grad():
            q = q_network(torch.as_tensor(obs[greedy], dtype=torch.float32, device=device))
            actions[greedy] = masked_argmax(q, torch.as_tensor(mask[greedy], device=device)).cpu().numpy()
    return actions


class QPolicy:
    """Masked epsilon-greedy actions from a CPU copy of the learner's Q-network.

    Args: network kind and kwargs (as in the checkpoint), in_channels, this runner's index
    and the number of runners, apex_alpha, and torch_threads (1 in runner processes, so N
    runners on N cores do not oversubscribe them; None leaves torch's setting alone)."""

    def __init__(self, kind: str, kwargs: dict[str, Any], in_channels: int, *, runner_index: int = 0,
                 num_runners: int = 1, apex_alpha: float = 0.0, epsilon: float = 1.0,
                 torch_threads: int | None = 1):
        self.kind, self.kwargs, self.in_channels = kind, dict(kwargs), in_channels
        self.runner_index, self.num_runners, self.apex_alpha = runner_index, num_runners, apex_alpha
        self.torch_threads = torch_threads
        self.network: torch.nn.Module | None = None  # built lazily, in the process that acts
        self.epsilon = self._runner_epsilon(epsilon)

    def _runner_epsilon(self, base: float) -> float:
        return float(apex_epsilons(self.num_runners, base, self.apex_alpha)[self.runner_index])

    def set_weights(self, payload: dict) -> None:
        if self.network is None:
            if self.torch_threads is not None:
                torch.set_num_threads(self.torch_threads)
            self.network = build_q_network(self.kind, self.in_channels, **self.kwargs).eval()
        self.network.load_state_dict(payload["weights"])
        self.epsilon = self._runner_epsilon(payload["epsilon"])

    def __call__(self, obs_batch: np.ndarray, masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.network is None:
            raise RuntimeError("QPolicy: no weights yet; the driver must broadcast weights before sampling")
        return act(self.network, obs_batch, masks, self.epsilon, rng)

    def greedy(self, obs: np.ndarray, mask: np.ndarray) -> int:
        """The valid cell with the highest Q for one observation (C, H, W)."""
        return int(act(self.network, obs[None], mask[None], 0.0, np.random.default_rng(0))[0])

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q of every cell, (H*W,), for one observation (C, H, W); invalid cells included."""
        with torch.no_grad():
            return self.network(torch.as_tensor(obs[None], dtype=torch.float32)).numpy()[0]
