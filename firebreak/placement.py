"""Non-learned fuel-break placement policies: the baselines a learned policy must beat.

Every policy has one interface: ``policy(env) -> action``, reading the state of a
`FuelBreakEnv` after `reset` (its landscape, scenarios' current fires and action mask) and
returning the next cell to treat. `run_episode` plays one whole episode with any of them.

- `RandomPolicy`: a uniformly random treatable cell (seeded).
- `BurnProbabilityPolicy`: greedy on the current burn probability over the episode's scenarios.
- `DownstreamProtectionPolicy`: greedy on the downstream protection value (Pais et al. 2021):
  per scenario, how many burned cells' fastest fire path runs through the cell (ignition cells
  excepted), averaged over scenarios, recomputed after every break.
- `DomiRankPolicy`: DomiRank centrality (Engsig et al. 2024) of the landscape's spread-rate
  network under the episode's weather, ranked once per episode (as the old tool's expert).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .centrality import domirank, spread_adjacency
from .env import FuelBreakEnv
from .fire import rate_toward

Policy = Callable[[FuelBreakEnv], int]

# Azimuths (degrees clockwise from north) of the neighbours N, NE, E, SE, S, SW, W, NW.
_NEIGHBOUR_AZIMUTHS = (0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0)


def _greedy(score: np.ndarray, mask: np.ndarray) -> int:
    """The valid cell with the highest score (ties: the lowest index)."""
    return int(np.where(mask, score.ravel(), -np.inf).argmax())


class RandomPolicy:
    """A uniformly random treatable cell."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def __call__(self, env: FuelBreakEnv) -> int:
        return int(self.rng.choice(np.flatnonzero(env.action_masks())))


class BurnProbabilityPolicy:
    """Treat the cell burned by the most scenarios now."""

    name = "burnprob"

    def __call__(self, env: FuelBreakEnv) -> int:
        return _greedy(env.burn_probability, env.action_masks())


class DownstreamProtectionPolicy:
    """Treat the cell whose removal would cut off the most burned cells, on average over the
    scenarios (each scenario's fastest-path tree from `IncrementalSimulator`)."""

    name = "dpv"

    def __call__(self, env: FuelBreakEnv) -> int:
        return _greedy(env.downstream_protection, env.action_masks())


class DomiRankPolicy:
    """Treat cells in DomiRank order of the spread-rate network, computed once per episode
    with each neighbour link's rate averaged over the episode's scenario weathers."""

    name = "domirank"

    def __init__(self, sigma_fraction: float = 0.95):
        self.sigma_fraction = sigma_fraction
        self._episode_scores: tuple[object, np.ndarray] | None = None

    def scores(self, env: FuelBreakEnv) -> np.ndarray:
        """(H, W) DomiRank of every cell for the env's current episode."""
        if self._episode_scores is None or self._episode_scores[0] is not env.simulator:
            landscape = env.landscape
            rates = np.zeros((8,) + landscape.shape)
            for behaviour in env.simulator.behaviours:
                rates += np.stack([rate_toward(behaviour, az) for az in _NEIGHBOUR_AZIMUTHS])
            adjacency = spread_adjacency(rates / len(env.simulator.scenarios), landscape.burnable, landscape.cell_size)
            scores = domirank(adjacency, self.sigma_fraction).reshape(landscape.shape)
            self._episode_scores = (env.simulator, scores)
        return self._episode_scores[1]

    def __call__(self, env: FuelBreakEnv) -> int:
        return _greedy(self.scores(env), env.action_masks())


BASELINES: dict[str, Callable[[int], Policy]] = {
    "random": lambda seed: RandomPolicy(seed),
    "burnprob": lambda seed: BurnProbabilityPolicy(),
    "dpv": lambda seed: DownstreamProtectionPolicy(),
    "domirank": lambda seed: DomiRankPolicy(),
}


def run_episode(env: FuelBreakEnv, policy: Policy, seed: int) -> dict:
    """Play one episode from ``env.reset(seed=seed)``; returns the final info plus the return
    and the break cells in placement order (flat indices)."""
    env.reset(seed=seed)
    total, placed, done = 0.0, [], False
    while not done:
        action = policy(env)
        _, reward, done, truncated, info = env.step(action)
        total += reward
        placed.append(action)
        done = done or truncated
    return {**info, "return": total, "breaks": placed}
