"""Non-learned fuel-break placement policies: the baselines a learned policy must beat.

Every policy has one interface: ``policy(env) -> action``, reading the state of a
`FuelBreakEnv` after `reset` (its landscape, scenarios' current fires and action mask) and
returning the next cell to treat. `run_episode` plays one whole episode with any of them.

- `RandomCellPolicy`: a uniformly random treatable cell (seeded).
- `BurnProbabilityPolicy`: greedy on the current burn probability over the episode's scenarios.
- `DownstreamProtectionPolicy`: greedy on the downstream protection value (Pais et al. 2021):
  per scenario, how many burned cells' fastest fire path runs through the cell (ignition cells
  excepted), averaged over scenarios, recomputed after every break.
- `DomiRankPolicy`: DomiRank centrality (Engsig et al. 2024) of the landscape's spread-rate
  network under the episode's weather, ranked once per episode (as the old tool's expert).
- `GreedySearchPolicy` (``PLANNERS["search"]``): spends simulations on the objective itself:
  of the top-K DPV cells, the one whose break lowers the burned area the most, each candidate
  re-simulated. Not a baseline of training's evaluation (3.5-4 x DPV's CPU time with K = 64);
  the search reference of ``python -m firebreak.evaluate``. Given another `prior` (e.g. a trained
  checkpoint's Q-values, ``search:<checkpoint.pt>`` there) it tries that prior's top K instead.
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


class RandomCellPolicy:
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


class GreedySearchPolicy:
    """Greedy on the exact marginal gain: of the `candidates` treatable cells with the highest
    `prior` score (default: DPV), treat the one whose break lowers the burned cells summed over
    the episode's scenarios the most, each candidate simulated on every scenario it can change
    (`IncrementalSimulator.burned_with`). Ties, and steps where no candidate gains, go to the
    highest prior score. `prior(env)` gives a score per cell, (H, W) or (H*W,), any units: only
    its order is used.

    Trial results are kept per (candidate, scenario) across steps while still exact: breaks only
    remove moves, so a trial fire burns within the scenario's current fire, and its support lies
    within one cell of that; a new break farther than one cell from a scenario's burned cells,
    in a scenario whose fire did not change, leaves every trial of that scenario as it was.
    """

    name = "search"

    def __init__(self, candidates: int = 64, prior: Callable[[FuelBreakEnv], np.ndarray] | None = None):
        if int(candidates) != candidates or candidates < 1:
            raise ValueError(f"candidates {candidates!r}: give a positive whole number of cells to try per step")
        self.candidates = int(candidates)
        self.prior = prior or (lambda env: env.downstream_protection)
        self._simulator = None
        self._trials: dict[int, np.ndarray] = {}  # cell -> burned cells per scenario, -1 = stale

    def _sync(self, simulator) -> None:
        """Drop the trial results the breaks placed since the last call may have changed."""
        if simulator is not self._simulator:
            self._simulator, self._trials = simulator, {}
            self._breaks, self._versions = simulator.breaks.copy(), simulator.version.copy()
            return
        stale = simulator.version != self._versions
        for r, c in np.argwhere(simulator.breaks & ~self._breaks):
            near = simulator.burned[:, max(r - 1, 0):r + 2, max(c - 1, 0):c + 2].any(axis=(1, 2))
            stale |= near
        for cell in [c for c in self._trials if simulator.breaks.flat[c]]:
            del self._trials[cell]
        for counts in self._trials.values():
            counts[stale] = -1
        self._breaks, self._versions = simulator.breaks.copy(), simulator.version.copy()

    def gains(self, env: FuelBreakEnv) -> dict[int, float]:
        """{cell: burned cells its break would save, summed over the scenarios} for this step's
        candidates, in decreasing prior order."""
        simulator = env.simulator
        self._sync(simulator)
        mask = env.action_masks()
        score = np.where(mask, np.asarray(self.prior(env)).ravel(), -np.inf)
        order = np.argsort(-score, kind="stable")[:min(self.candidates, int(mask.sum()))]
        current = simulator.burned.sum(axis=(1, 2))
        gains = {}
        for cell in order.tolist():
            counts = self._trials.setdefault(cell, np.full(len(current), -1, np.int64))
            missing = np.flatnonzero(counts < 0)
            if missing.size:
                trial = np.zeros(simulator.breaks.shape, bool)
                trial.flat[cell] = True
                counts[missing] = simulator.burned_with(trial, among=missing)
            gains[cell] = float((current - counts).sum())
        return gains

    def __call__(self, env: FuelBreakEnv) -> int:
        gains = self.gains(env)
        return max(gains, key=gains.get)  # the first (highest prior) among equal gains


BASELINES: dict[str, Callable[[int], Policy]] = {
    "random": lambda seed: RandomCellPolicy(seed),
    "burnprob": lambda seed: BurnProbabilityPolicy(),
    "dpv": lambda seed: DownstreamProtectionPolicy(),
    "domirank": lambda seed: DomiRankPolicy(),
}


#: Everything `python -m firebreak.evaluate` can run by name: the baselines and the search planner.
PLANNERS: dict[str, Callable[[int], Policy]] = {**BASELINES, "search": lambda seed: GreedySearchPolicy()}


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
