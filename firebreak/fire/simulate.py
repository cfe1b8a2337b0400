"""Simulating fires on a landscape: one scenario, a batch, and incremental re-simulation.

A scenario's move costs (``spread.edge_costs``) depend only on (landscape, scenario): breaks
enter the Dijkstra as barriers, never as changed rates, because a break only turns its own
cell to bare ground. So costs are computed once per scenario and reused when breaks change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import spread
from .behaviour import FireBehaviour, surface_fire
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


@dataclass(frozen=True)
class _Prepared:
    costs: np.ndarray  # (rows * cols, 16) minutes
    fire_type: np.ndarray  # (rows, cols) int8
    cannot_burn: np.ndarray  # (rows, cols) bool
    ignitions: np.ndarray
    duration: float


def _prepare(landscape, scenario: Scenario, behaviour: FireBehaviour | None = None,
             crown_method: str = "scott_reinhardt") -> _Prepared:
    behaviour = behaviour or surface_fire(landscape, scenario.weather, crown_method)
    costs = spread.edge_costs(behaviour.rate, behaviour.direction, behaviour.eccentricity, landscape.slope,
                              landscape.cell_size,
                              spread.AZIMUTHS, spread.LENGTHS, spread.CROSSED, spread.SHARE)
    return _Prepared(costs, behaviour.fire_type, behaviour.rate <= 0.0, scenario.ignitions,
                     float(scenario.duration_min))


def _check_breaks(landscape, breaks) -> np.ndarray:
    if breaks is None:
        return np.zeros(landscape.shape, bool)
    breaks = np.asarray(breaks, bool)
    if breaks.shape != landscape.shape:
        raise ValueError(f"break mask has shape {breaks.shape}, landscape has {landscape.shape}")
    return breaks


def _run(prep: _Prepared, breaks: np.ndarray):
    """(arrival, burned, fire_type, predecessor, support) of one prepared scenario.

    A break never stops a fire from starting: a fire lit on a treated cell still starts there
    and spreads into the fuel around it. Otherwise treating the ignition cells of a fixed
    scenario set would prevent those fires outright, a placement no real fire respects."""
    breaks = breaks.copy()
    breaks[prep.ignitions[:, 0], prep.ignitions[:, 1]] = False
    return spread.travel_times(prep.costs, prep.cannot_burn, breaks, prep.fire_type, prep.ignitions, prep.duration,
                               spread.OFFSETS, spread.CROSSED)


def simulate(landscape, scenario: Scenario, breaks: np.ndarray | None = None, *,
             crown_method: str = "scott_reinhardt") -> SimulationResult:
    """Burn `scenario` on `landscape` with the boolean `breaks` mask as fuel breaks; crown fire
    by `crown_method` (``"scott_reinhardt"`` or ``"cruz"``, see ``firebreak.fire.crown``)."""
    prepared = _prepare(landscape, scenario, crown_method=crown_method)
    arrival, burned, fire_type, pred, _ = _run(prepared, _check_breaks(landscape, breaks))
    return SimulationResult(arrival, burned, fire_type, pred)


def simulate_many(landscape, scenarios: list[Scenario], breaks: np.ndarray | None = None, *,
                  crown_method: str = "scott_reinhardt") -> BatchResult:
    """`simulate` for each scenario on one landscape and break mask; arrays stacked (S, rows, cols)."""
    breaks = _check_breaks(landscape, breaks)
    results = [_run(_prepare(landscape, s, crown_method=crown_method), breaks) for s in scenarios]
    return BatchResult(*(np.stack([r[f] for r in results]) for f in range(4)))


class IncrementalSimulator:
    """Per-scenario fires on one landscape that follow a growing set of breaks.

    `add_breaks(mask)` re-runs only the scenarios whose result a new break cell can change:
    those in which it burned or lies beside / under a fastest-path move (the support mask of
    ``spread.travel_times``). Other scenarios are untouched, and exactly so: adding barriers
    only removes moves, and a removed move that no fastest path uses changes no arrival time
    (ties break by cell index, so not even a predecessor). Re-runs reuse the scenario's
    precomputed move costs; only the Dijkstra runs again.

    Attributes arrival, burned, fire_type, predecessor are (scenarios, rows, cols) as in
    `BatchResult`; support[s] marks the cells whose becoming a break can change scenario s.
    """

    def __init__(self, landscape, scenarios: list[Scenario], breaks: np.ndarray | None = None, *,
                 crown_method: str = "scott_reinhardt"):
        self.landscape = landscape
        self.scenarios = list(scenarios)
        self.breaks = _check_breaks(landscape, breaks).copy()
        #: Each scenario's `FireBehaviour` on the untreated landscape (callers reuse it).
        self.behaviours = [surface_fire(landscape, s.weather, crown_method) for s in self.scenarios]
        self._prepared = [_prepare(landscape, s, b) for s, b in zip(self.scenarios, self.behaviours)]
        rows, cols = landscape.shape
        n = len(self.scenarios)
        self.arrival = np.empty((n, rows, cols))
        self.burned = np.empty((n, rows, cols), bool)
        self.fire_type = np.empty((n, rows, cols), np.int8)
        self.predecessor = np.empty((n, rows, cols), np.int32)
        self.support = np.empty((n, rows, cols), bool)
        for s in range(n):
            self._store(s)

    def _store(self, s: int) -> None:
        (self.arrival[s], self.burned[s], self.fire_type[s], self.predecessor[s],
         self.support[s]) = _run(self._prepared[s], self.breaks)

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

    def burned_fraction(self) -> np.ndarray:
        """Share of the landscape's cells burned, per scenario."""
        return self.burned.mean(axis=(1, 2))
