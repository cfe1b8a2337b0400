"""Exploration: Ape-X per-runner epsilons, decaying schedules, masked epsilon-greedy actions."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .networks import masked_argmax


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
