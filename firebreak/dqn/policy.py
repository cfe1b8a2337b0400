"""`QPolicy`: masked epsilon-greedy actions from a CPU copy of the learner's Q-network.

It follows the rollout layer's policy protocol: ``policy(obs_batch, masks, rng) -> actions``
and ``set_weights(payload)``, where the payload the driver broadcasts is
``{"weights": state_dict, "epsilon": base}``. Runner ``i`` of ``N`` explores with the Ape-X
epsilon ``base ** (1 + apex_alpha * i / (N - 1))`` (Horgan et al. 2018): a spread of explorers
from the decaying base value down to almost greedy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .exploration import act, apex_epsilons
from .networks import build_q_network


class QPolicy:
    """Args: network kind and kwargs (as in the checkpoint), in_channels, this runner's index
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
