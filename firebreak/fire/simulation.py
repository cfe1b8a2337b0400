"""Simulating fires on a landscape: one scenario, a batch, and incremental re-simulation.

`simulate` and `simulate_many` compute fire behaviour lazily, for the cells the fire reaches
(``spread.burn``), so a small fire costs what it burns. `IncrementalSimulator` computes every
cell's behaviour up front (its callers read the grids, `behaviours`) and keeps each scenario's
move costs: breaks enter the search as barriers, never as changed rates (a break only turns its
own cell to bare ground), so costs computed once serve every later re-run.

Keywords of every entry point: ``crown_method`` (``"scott_reinhardt"``, FlamMap's default, or
``"cruz"``; see ``firebreak.fire.crown``) and ``crown_ratio`` (None derives (CH - CBH) / CH per
cell; or one fraction, or a grid, for the wind adjustment factor).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import spread
from .behaviour import FireBehaviour, FireInputs, surface_fire
from .fuel_models import FUEL_ARRAY
from .scenario import Scenario


@dataclass(frozen=True)
class SimulationResult:
    """One fire. arrival: minutes from ignition, inf where unburned; burned: arrival <= duration;
    fire_type: 0 unburned, 1 surface, 2 passive, 3 active crown (0 outside the burned area);
    predecessor: flat index (row * cols + col) of the cell the fire reached each burned cell
    from along the fastest path, -1 for ignitions and unburned cells."""

    arrival: np.ndarray
    burned: np.ndarray
    fire_type: np.ndarray
    predecessor: np.ndarray


@dataclass(frozen=True)
class BatchResult:
    """`simulate_many` output: the SimulationResult fields stacked to (scenarios, rows, cols)."""

    arrival: np.ndarray
    burned: np.ndarray
    fire_type: np.ndarray
    predecessor: np.ndarray


def _check_breaks(landscape, breaks) -> np.ndarray:
    if breaks is None:
        return np.zeros(landscape.shape, bool)
    # contiguous: a view (a window's mask) would compile spread.burn a second time, for layout 'A'
    breaks = np.ascontiguousarray(breaks, dtype=bool)
    if breaks.shape != landscape.shape:
        raise ValueError(f"break mask has shape {breaks.shape}, landscape has {landscape.shape}")
    return breaks


def _burn_args(landscape, scenario: Scenario, crown_method: str, crown_ratio) -> tuple:
    """`spread.burn`'s arguments before the breaks: landscape layers, weather, cell size."""
    rows, cols = landscape.shape
    for row, col in scenario.ignition_points.tolist():
        if not (-0.5 <= row < rows - 0.5 and -0.5 <= col < cols - 0.5):
            raise ValueError(f"scenario ignition ({row}, {col}) lies outside the {rows} x {cols} landscape: "
                             "ignitions are (row, col) in cells, each cell spanning +-0.5 around its centre")
    inputs = FireInputs(landscape, scenario.weather, crown_method, crown_ratio)
    return (landscape.fuel_model, landscape.slope, landscape.aspect, landscape.canopy_cover,
            landscape.canopy_height, landscape.canopy_base_height, inputs.crown_ratio,
            landscape.canopy_bulk_density, landscape.nodata, FUEL_ARRAY, *inputs.weather_args(),
            landscape.cell_size)


def _burn(args: tuple, scenario: Scenario, breaks: np.ndarray, cells: tuple = spread.NO_CELLS):
    """(arrival, burned, fire_type, predecessor, support) of one scenario; `cells` the
    `spread.Cells.args()` to read and fill, by default none (a one-off run)."""
    return spread.burn(*args, breaks, scenario.ignition_points, bool(scenario.ignite_whole_cell),
                       float(scenario.duration_min), *cells)


def simulate(landscape, scenario: Scenario, breaks: np.ndarray | None = None, *,
             crown_method: str = "scott_reinhardt", crown_ratio=None) -> SimulationResult:
    """Burn `scenario` on `landscape` with the boolean `breaks` mask as fuel breaks (keywords:
    see the module docstring). A break never stops a fire from starting: a fire lit on a treated
    cell still starts there and spreads into the fuel around it (otherwise treating the ignition
    cells of a fixed scenario set would prevent those fires outright)."""
    args = _burn_args(landscape, scenario, crown_method, crown_ratio)
    out = _burn(args, scenario, _check_breaks(landscape, breaks))
    return SimulationResult(*out[:4])


def simulate_many(landscape, scenarios: list[Scenario], breaks: np.ndarray | None = None, *,
                  crown_method: str = "scott_reinhardt", crown_ratio=None) -> BatchResult:
    """`simulate` for each scenario on one landscape and break mask; arrays stacked (S, rows, cols)."""
    breaks = _check_breaks(landscape, breaks)
    results = [_burn(_burn_args(landscape, s, crown_method, crown_ratio), s, breaks)
               for s in scenarios]
    return BatchResult(*(np.stack([r[f] for r in results]) for f in range(4)))


class IncrementalSimulator:
    """Per-scenario fires on one landscape that follow a growing set of breaks.

    `add_breaks(mask)` re-runs only the scenarios whose result a new break cell can change:
    those in which it burned or lies beside / under a fastest-path move (the support mask of
    ``spread.burn``). Other scenarios are untouched, and exactly so: adding barriers only
    removes moves, and a removed move that no fastest path uses changes no arrival time (ties
    break by cell index, so not even a predecessor). Re-runs reuse the scenario's move costs;
    only the search runs again.

    Attributes arrival, burned, fire_type, predecessor are (scenarios, rows, cols) as in
    `BatchResult`; support[s] marks the cells whose becoming a break can change scenario s.
    """

    def __init__(self, landscape, scenarios: list[Scenario], breaks: np.ndarray | None = None, *,
                 crown_method: str = "scott_reinhardt", crown_ratio=None):
        self.landscape = landscape
        self.scenarios = list(scenarios)
        self.breaks = _check_breaks(landscape, breaks).copy()
        self._args = [_burn_args(landscape, s, crown_method, crown_ratio) for s in self.scenarios]
        #: Each scenario's `FireBehaviour` on the untreated landscape (callers reuse it).
        self.behaviours: list[FireBehaviour] = [surface_fire(landscape, s.weather, crown_method, crown_ratio)
                                                for s in self.scenarios]
        self._cells = [spread.Cells.from_behaviour(b, landscape.slope, FUEL_ARRAY.shape[0])
                       for b in self.behaviours]
        rows, cols = landscape.shape
        n = len(self.scenarios)
        self.arrival = np.empty((n, rows, cols))
        self.burned = np.empty((n, rows, cols), bool)
        self.fire_type = np.empty((n, rows, cols), np.int8)
        self.predecessor = np.empty((n, rows, cols), np.int32)
        self.support = np.empty((n, rows, cols), bool)
        #: Per scenario, how many times its fire has been (re)computed: a changed version means
        #: a changed fire (callers caching per-scenario results key them on it).
        self.version = np.zeros(n, np.int64)
        for s in range(n):
            self._store(s)

    def _store(self, s: int) -> None:
        (self.arrival[s], self.burned[s], self.fire_type[s], self.predecessor[s],
         self.support[s]) = _burn(self._args[s], self.scenarios[s], self.breaks, self._cells[s].args())
        self.version[s] += 1

    def add_breaks(self, mask: np.ndarray) -> int:
        """Add the cells of boolean `mask` to the breaks; returns how many scenarios were re-run."""
        new = _check_breaks(self.landscape, mask) & ~self.breaks
        if not new.any():
            return 0
        self.breaks |= new
        stale = np.flatnonzero(self.support[:, new].any(axis=1))
        for s in stale:
            self._store(int(s))
        return len(stale)

    def burned_with(self, mask: np.ndarray, among=None) -> np.ndarray:
        """Burned cells per scenario (of `among`, scenario indices; default all) if the cells of
        boolean `mask` were added to the breaks, leaving the simulator as it is. Only the
        scenarios whose support the mask touches are simulated (the others would not change)."""
        new = _check_breaks(self.landscape, mask) & ~self.breaks
        among = np.arange(len(self.scenarios)) if among is None else np.asarray(among, np.int64)
        counts = self.burned[among].sum(axis=(1, 2)).astype(np.int64)
        if new.any():
            trial = self.breaks | new
            for k in np.flatnonzero(self.support[among][:, new].any(axis=1)):
                s = int(among[k])
                counts[k] = int(_burn(self._args[s], self.scenarios[s], trial, self._cells[s].args())[1].sum())
        return counts

    def burned_fraction(self) -> np.ndarray:
        """Share of the landscape's cells burned, per scenario."""
        return self.burned.mean(axis=(1, 2))
