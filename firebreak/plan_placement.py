"""Placing a budget of fuel breaks on a whole landscape: the placement policies at full scale.

`firebreak.placement` plays its policies inside `FuelBreakEnv`, whose `IncrementalSimulator`
keeps every planning fire as whole-grid arrays with move costs for every cell: over 40 MB per
fire on the 613 x 549 Worcester landscape (the move costs alone are 43 MB), 11 GB for 256 fires. Here the same policies run on
sparse fires (`PlanningFires`, built on `firebreak.landscape_fires`: each fire on its own
window, only its burned box kept, re-run in that window when a break can change it):

- ``dpv`` and ``burnprob`` (`GreedyPlanner`): exactly the greedy of
  `firebreak.placement.DownstreamProtectionPolicy` / `BurnProbabilityPolicy`, one break per
  recompute: treat the treatable cell with the highest downstream protection value (burned
  cells behind it on the fires' fastest paths, summed over the fires, ignitions excepted) or
  burned by the most fires (ties: the lowest flat index), re-run the fires that cell can change
  (those it burned in or lies next to: a superset of the simulator's support, so the result is
  the same), repeat. The tests check the break order equals the env's, break for break.
- ``domirank``: `firebreak.placement.DomiRankPolicy`'s ranking (DomiRank of the 8-neighbour
  spread-rate network, rates averaged over the planning fires' weathers), computed once on the
  whole grid; the top cells are the breaks (the policy's greedy on a fixed ranking).
- a checkpoint: `CheckpointPlanner` (its docstring says how and why tiles).

Budget: ``round(budget x cells inside the landscape)`` breaks (nodata cells are not counted),
at most the number of burnable cells; only burnable cells are treated.

Planning fires run out on big budgets: once every planning fire is stopped (DPV or burn
probability zero on every treatable cell) the greedy has nothing left to rank, and the env's
policies would treat the lowest-index cells, filling the landscape's north-west corner. On the
whole Worcester landscape this happens after about 2,100 of the 11,398 breaks of a 5 % budget
with 256 fires. So the planning fires come in batches of ``fires``: when a batch is used up, a
fresh one (the next draws of the same seeded sampler) burns the treated landscape and placement
goes on. `PlanningFires.batches` counts them; a fresh batch that is used up at once (a landscape
that hardly burns) stops this, and the remaining breaks, placed by the lowest-index rule, are
counted as breaks without value.
"""

from __future__ import annotations

import math
import sys
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from .centrality import domirank, downstream_counts, spread_adjacency
from .env import FIRE_COUNT_LAYER, FuelBreakEnv, fire_count_value
from .fire import ScenarioSampler, rate_toward, surface_fire
from .landscape import Landscape
from .landscape_fires import burn_fire, burn_fires

GREEDY_SCORES = ("dpv", "burnprob")
# Neighbour azimuths N, NE, E, SE, S, SW, W, NW, the order `spread_adjacency` takes.
_NEIGHBOUR_AZIMUTHS = (0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0)
# Re-running more fires than this after a round goes through `burn_fires` (Ray tasks when Ray is up).
_RERUN_IN_TASKS = 32


def budget_cells(landscape: Landscape, budget: float) -> int:
    """Breaks for a budget: round(budget x cells inside the landscape), 1 to the burnable cells."""
    if not 0.0 < budget < 1.0:
        raise ValueError(f"budget {budget!r}: give the share of cells to treat, in (0, 1), e.g. 0.05")
    burnable = int(landscape.burnable.sum())
    return min(max(1, round(budget * int((~landscape.nodata).sum()))), burnable)


class PlanningFires:
    """The planning fires of a plan on `landscape` with the breaks placed so far, kept sparse.

    Maintains, summed over the fires: `burned` (how many fires burn each cell) and `dpv` (the
    downstream protection value). `sampler` draws batches of `batch` fires (see the module
    docstring); pass `scenarios` to start from given fires instead of a first draw."""

    def __init__(self, landscape: Landscape, sampler: ScenarioSampler, batch: int, *, scenarios=None,
                 progress: bool = True):
        self.landscape, self.sampler, self.batch, self.progress = landscape, sampler, batch, progress
        self.breaks = np.zeros(landscape.shape, bool)
        self.treatable = landscape.burnable.copy()
        self.scenarios, self.records, self._dpv_parts = [], [], []
        self.burned = np.zeros(landscape.shape)
        self.dpv = np.zeros(landscape.shape)
        self.batches = 0
        self._boxes = np.zeros((0, 4), np.int64)
        self._add(list(scenarios) if scenarios is not None else sampler.sample(landscape, batch))

    @property
    def fires(self) -> int:
        return len(self.records)

    def _dpv_part(self, s: int) -> np.ndarray:
        record = self.records[s]
        counts = downstream_counts(record.arrival, record.predecessor)
        # A break cannot stop a fire at its own ignition (firebreak.fire.simulate): it protects nothing.
        for row, col in self.scenarios[s].ignitions - np.array([record.row, record.col]):
            if 0 <= row < counts.shape[0] and 0 <= col < counts.shape[1]:
                counts[row, col] = 0.0
        return counts

    def _add(self, scenarios) -> None:
        desc = "planning fires" if not self.batches else f"planning fires, batch {self.batches + 1}"
        records = burn_fires(self.landscape, scenarios, self.breaks, progress=self.progress, desc=desc)
        start = len(self.records)
        self.scenarios += scenarios
        self.records += records
        for s in range(start, len(self.records)):
            self._dpv_parts.append(self._dpv_part(s))
            self.records[s].add_to(self.burned)
            self.records[s].add_to(self.dpv, self._dpv_parts[s])
        self._boxes = np.array([r.box for r in self.records]).reshape(-1, 4)
        self.batches += 1

    def score(self, name: str) -> np.ndarray:
        """Summed DPV (``"dpv"``) or fire count (``"burnprob"``) of every cell."""
        return self.dpv if name == "dpv" else self.burned

    def used_up(self, name: str) -> bool:
        """True when no treatable cell has a positive `name` score left."""
        return not (self.score(name)[self.treatable] > 0).any()

    def replenish(self, name: str) -> bool:
        """Burn a fresh batch on the treated landscape; False if its `name` score is used up at once."""
        self._add(self.sampler.sample(self.landscape, self.batch))
        return not self.used_up(name)

    def _touched(self, row: int, col: int) -> set[int]:
        """Fires in which a break at (row, col) can change anything: the cell or a neighbour burned."""
        b = self._boxes
        near = np.flatnonzero((b[:, 0] - 1 <= row) & (row < b[:, 2] + 1) & (b[:, 1] - 1 <= col) & (col < b[:, 3] + 1))
        touched = set()
        for s in near:
            record = self.records[s]
            r, c = row - record.row, col - record.col
            if record.burned[max(0, r - 1):r + 2, max(0, c - 1):c + 2].any():
                touched.add(int(s))
        return touched

    def add_breaks(self, cells: Sequence[int]) -> list[tuple[int, int, int, int]]:
        """Treat the flat `cells`, re-run the fires they can change; returns the boxes that changed."""
        cols = self.landscape.shape[1]
        touched: set[int] = set()
        for cell in cells:
            row, col = divmod(int(cell), cols)
            self.breaks[row, col] = True
            self.treatable[row, col] = False
            touched |= self._touched(row, col)
        touched = sorted(touched)
        old = [self.records[s] for s in touched]
        windows = [r.window(self.landscape.shape) for r in old]
        if len(touched) > _RERUN_IN_TASKS:
            new = burn_fires(self.landscape, [self.scenarios[s] for s in touched], self.breaks, windows=windows,
                             progress=False)
        else:
            new = [burn_fire(self.landscape, self.scenarios[s], self.breaks, window=w) for s, w in zip(touched, windows)]
        for s, before, after in zip(touched, old, new):
            before.add_to(self.burned, sign=-1)
            before.add_to(self.dpv, self._dpv_parts[s], sign=-1)
            self.records[s] = after
            self._dpv_parts[s] = self._dpv_part(s)
            after.add_to(self.burned)
            after.add_to(self.dpv, self._dpv_parts[s])
            self._boxes[s] = after.box
        return [r.box for r in old]


class GreedyPlanner:
    """One-break-at-a-time greedy on ``"dpv"`` or ``"burnprob"`` (module docstring).

    `replenish=False` keeps the first batch of fires to the end, as the env's policies do."""

    def __init__(self, fires: PlanningFires, score: str = "dpv", replenish: bool = True):
        if score not in GREEDY_SCORES:
            raise ValueError(f"score {score!r}: choose one of {GREEDY_SCORES}")
        self.fires, self.score, self.replenish = fires, score, replenish
        self.without_value = 0  # breaks placed when no treatable cell had a positive score
        self._masked = np.where(fires.treatable, fires.score(score), -np.inf)

    def _refresh(self, box) -> None:
        r0, c0, r1, c1 = box
        self._masked[r0:r1, c0:c1] = np.where(self.fires.treatable[r0:r1, c0:c1],
                                              self.fires.score(self.score)[r0:r1, c0:c1], -np.inf)

    def next_cell(self) -> int:
        """The treatable cell with the highest score (ties: lowest flat index)."""
        cell = int(self._masked.argmax())
        if self._masked.flat[cell] <= 0 and self.replenish:
            self.replenish = self.fires.replenish(self.score)
            self._masked = np.where(self.fires.treatable, self.fires.score(self.score), -np.inf)
            cell = int(self._masked.argmax())
        if self._masked.flat[cell] <= 0:
            self.without_value += 1
        return cell

    def place(self, n_breaks: int, progress: bool = True) -> np.ndarray:
        """Place `n_breaks` breaks; int32 placement order (1 = first, 0 untreated)."""
        order = np.zeros(self.fires.landscape.shape, np.int32)
        for k in tqdm(range(1, n_breaks + 1), desc=f"placing ({self.score})", unit="break", disable=not progress,
                      file=sys.stderr):
            cell = self.next_cell()
            order.flat[cell] = k
            self._masked.flat[cell] = -np.inf
            for box in self.fires.add_breaks([cell]):
                self._refresh(box)
        return order


def domirank_scores(landscape: Landscape, scenarios, sigma_fraction: float = 0.95, progress: bool = True) -> np.ndarray:
    """(H, W) DomiRank of every cell of the spread-rate network, each neighbour link's rate
    averaged over the scenarios' weathers (as `firebreak.placement.DomiRankPolicy.scores`)."""
    rates = np.zeros((8,) + landscape.shape)
    for scenario in tqdm(scenarios, desc="spread rates (domirank)", unit="weather", disable=not progress,
                         file=sys.stderr):
        behaviour = surface_fire(landscape, scenario.weather)
        for k, azimuth in enumerate(_NEIGHBOUR_AZIMUTHS):
            rates[k] += rate_toward(behaviour, azimuth)
    adjacency = spread_adjacency(rates / len(scenarios), landscape.burnable, landscape.cell_size)
    return domirank(adjacency, sigma_fraction).reshape(landscape.shape)


def top_cells(scores: np.ndarray, treatable: np.ndarray, n: int) -> np.ndarray:
    """Flat indices of the `n` treatable cells with the highest scores, best first (ties: lowest
    flat index), as a greedy on a fixed ranking places them."""
    masked = np.where(treatable, scores, -np.inf).ravel()
    return np.lexsort((np.arange(masked.size), -masked))[:n]


def order_of(cells: Sequence[int], shape: tuple[int, int]) -> np.ndarray:
    """int32 placement order grid of flat `cells` in placement order."""
    order = np.zeros(shape, np.int32)
    order.flat[np.asarray(cells, np.int64)] = np.arange(1, len(cells) + 1)
    return order


def _tile_origins(length: int, tile: int) -> list[int]:
    """Tile starts every tile / 2 cells, the last flush with the far edge."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, tile // 2))
    return starts + [length - tile]


def _nearest_tile(length: int, origins: list[int], tile: int) -> np.ndarray:
    """For each cell along one axis, the tile (index into origins) it is most central in."""
    positions = np.arange(length)[:, None]
    starts = np.asarray(origins)[None, :]
    size = min(tile, length)
    inside = (positions >= starts) & (positions < starts + size)
    distance = np.where(inside, np.abs(positions - (starts + (size - 1) / 2)), np.inf)
    return distance.argmin(axis=1)


class CheckpointPlanner:
    """A trained checkpoint's Q-network placing breaks on a whole landscape, in rounds.

    The network runs on overlapping tiles of its training size (stride half a tile), not on the
    whole grid: its observation layers are normalised per training tile (elevation z-scored in
    the tile, DPV on a log scale of the tile's cell count, the fire layers' weather averaged over
    the tile's episode fires) and it learnt fires that stop at tile edges, so only tiles keep
    its inputs in the distribution it was trained on. Each cell takes its Q-value from the tile
    it is most central in (a quarter tile or more from any tile edge inside the landscape), which
    removes the seams. A tile's static layers are those of `FuelBreakEnv` reset on that tile
    (as in training); its dynamic layers (burn probability, DPV, breaks, treatable) come from the
    whole landscape's planning fires, so fires cross tile edges as on the real landscape.

    A round: Q-values of every tile (a forward pass per tile, batched), the `per_round`
    treatable cells with the highest merged Q-values become breaks, the planning fires they can
    change are re-run. On a landscape of one training tile, ``per_round=1`` is the env's greedy
    episode step for step (tested); more per round trades sequential placement for speed (a round costs about 1.6 s per 32 tiles here for the residual
    network on 2 cores).
    """

    def __init__(self, checkpoint: str, fires: PlanningFires, *, progress: bool = True):
        from .viz import load_policy  # checkpoint loading with its layer check (and matplotlib)

        self.policy = load_policy(checkpoint)
        self.fires, self.progress = fires, progress
        landscape = fires.landscape
        _, tile_rows, tile_cols = self.policy.obs_shape
        self.tile = (min(tile_rows, landscape.shape[0]), min(tile_cols, landscape.shape[1]))
        self.row_origins = _tile_origins(landscape.shape[0], tile_rows)
        self.col_origins = _tile_origins(landscape.shape[1], tile_cols)
        self.row_tile = _nearest_tile(landscape.shape[0], self.row_origins, tile_rows)
        self.col_tile = _nearest_tile(landscape.shape[1], self.col_origins, tile_cols)
        self.layers = list(self.policy.layers)
        self._static = self._static_layers()

    def _static_layers(self) -> dict[tuple[int, int], np.ndarray]:
        """Per tile with burnable cells: the observation of a FuelBreakEnv reset on it."""
        env_config = self.policy.config.env
        static = {}
        tiles = [(i, j) for i in range(len(self.row_origins)) for j in range(len(self.col_origins))]
        for i, j in tqdm(tiles, desc="tile observations", unit="tile", disable=not self.progress, file=sys.stderr):
            window = self._window(i, j)
            if not window.burnable.any():
                continue
            env = FuelBreakEnv([window], budget=env_config.budget, n_scenarios=env_config.n_scenarios)
            env.reset(seed=i * len(self.col_origins) + j)
            static[(i, j)] = env.observation(self.layers)
        return static

    def _window(self, i: int, j: int) -> Landscape:
        return self.fires.landscape.window(self.row_origins[i], self.col_origins[j], *self.tile)

    def q_map(self) -> np.ndarray:
        """(H, W) merged Q-values with the current breaks; -inf where no break may go."""
        fires, (th, tw) = self.fires, self.tile
        n = max(fires.fires, 1)
        dynamic = {
            "burn_probability": fires.burned / n,
            # As FuelBreakEnv scales it: DPV spans 0 to thousands of cells, a log keeps its ranking.
            "downstream_protection": np.log1p(fires.dpv / n) / np.log1p(th * tw),
            "breaks": fires.breaks.astype(np.float64),
            "treatable": fires.treatable.astype(np.float64),
        }
        if FIRE_COUNT_LAYER in self.layers:  # the fires planned on now (replenishing adds some)
            dynamic[FIRE_COUNT_LAYER] = np.full(fires.landscape.shape, fire_count_value(n))
        keys = sorted(self._static)
        q = {}
        for start in range(0, len(keys), 32):
            batch = []
            for i, j in keys[start:start + 32]:
                obs = self._static[(i, j)].copy()
                r, c = self.row_origins[i], self.col_origins[j]
                for name, grid in dynamic.items():
                    obs[self.layers.index(name)] = grid[r:r + th, c:c + tw]
                batch.append(obs)
            with torch.no_grad():
                values = self.policy.network(torch.as_tensor(np.stack(batch), dtype=torch.float32)).numpy()
            for key, v in zip(keys[start:start + 32], values):
                q[key] = v.reshape(th, tw)
        merged = np.full(fires.landscape.shape, -np.inf)
        for (i, j), values in q.items():
            rows = np.flatnonzero(self.row_tile == i)
            cols = np.flatnonzero(self.col_tile == j)
            r, c = self.row_origins[i], self.col_origins[j]
            merged[np.ix_(rows, cols)] = values[np.ix_(rows - r, cols - c)]
        return np.where(fires.treatable, merged, -np.inf)

    def place(self, n_breaks: int, per_round: int) -> np.ndarray:
        """Place `n_breaks` breaks, `per_round` per round; int32 placement order."""
        placed: list[int] = []
        replenish = True
        rounds = math.ceil(n_breaks / per_round)
        for _ in tqdm(range(rounds), desc="placing (checkpoint)", unit="round", disable=not self.progress,
                      file=sys.stderr):
            if replenish and self.fires.used_up("dpv"):
                replenish = self.fires.replenish("dpv")
            cells = top_cells(self.q_map(), self.fires.treatable, min(per_round, n_breaks - len(placed)))
            placed += [int(c) for c in cells]
            self.fires.add_breaks(cells)
        return order_of(placed, self.fires.landscape.shape)
