"""Lazy fire behaviour: the search computes only the cells a fire reaches, and its results equal,
bit for bit, a search over every cell's behaviour computed up front (`surface_fire` grids)."""

import sys

import numpy as np
import pytest

from firebreak.env import DEFAULT_SEASON
from firebreak.fire import FireSeason, ScenarioSampler, simulate, surface_fire
from firebreak.fire import spread
from firebreak.fire.fuel_models import FUEL_ARRAY
from firebreak.landscape import sample_tiles

simulation = sys.modules["firebreak.fire.simulation"]
FIELDS = ("arrival", "burned", "fire_type", "predecessor")


def _eager(landscape, scenario, breaks, crown_method):
    """The search with every cell's behaviour known before it starts (the pre-lazy pipeline)."""
    behaviour = surface_fire(landscape, scenario.weather, crown_method)
    cells = spread.Cells.from_behaviour(behaviour, landscape.slope, FUEL_ARRAY.shape[0], keep_costs=False)
    args = simulation._burn_args(landscape, scenario, crown_method, None)
    return simulation._burn(args, scenario, breaks, cells.args())


@pytest.mark.parametrize("crown_method", ["scott_reinhardt", "cruz"])
def test_lazy_equals_every_cell_up_front_on_real_tiles(crown_method):
    tiles = sample_tiles(64, "holdout")[:3]
    rng = np.random.default_rng(0)
    evaluated = []
    for i, tile in enumerate(tiles):
        for season in (DEFAULT_SEASON, FireSeason()):
            for scenario in ScenarioSampler(i, season).sample(tile, 3):
                breaks = rng.random(tile.shape) < 0.05
                lazy = simulate(tile, scenario, breaks, crown_method=crown_method)
                eager = _eager(tile, scenario, breaks, crown_method)
                for f, field in enumerate(FIELDS):
                    np.testing.assert_array_equal(getattr(lazy, field), eager[f], err_msg=field)
                cells = spread.Cells(tile.fuel_model.size, FUEL_ARRAY.shape[0])
                args = simulation._burn_args(tile, scenario, crown_method, None)
                simulation._burn(args, scenario, breaks, cells.args())
                evaluated.append(cells.known.mean())
    assert np.median(evaluated) < 0.5  # most cells of a tile are never computed


def test_costs_kept_between_runs_change_nothing():
    """A scenario re-run with its cells and move costs kept (as `IncrementalSimulator` does) gives
    what a fresh run gives, with more breaks each time."""
    tile = sample_tiles(64, "holdout")[4]
    scenario = ScenarioSampler(7, DEFAULT_SEASON).sample(tile, 1)[0]
    args = simulation._burn_args(tile, scenario, "scott_reinhardt", None)
    kept = spread.Cells(tile.fuel_model.size, FUEL_ARRAY.shape[0], keep_costs=True)
    breaks = np.zeros(tile.shape, bool)
    rng = np.random.default_rng(1)
    for _ in range(4):
        again = simulation._burn(args, scenario, breaks, kept.args())
        fresh = simulate(tile, scenario, breaks)
        for f, field in enumerate(FIELDS):
            np.testing.assert_array_equal(again[f], getattr(fresh, field), err_msg=field)
        burned = np.argwhere(again[1])
        breaks[tuple(burned[rng.integers(len(burned))])] = True
    assert np.isfinite(kept.costs).any()
