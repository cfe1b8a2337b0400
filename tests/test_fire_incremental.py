"""Incremental re-simulation equals full re-simulation, and skips scenarios it may skip."""

import numpy as np

from fire_helpers import mixed_grass_shrub
from firebreak.fire import IncrementalSimulator, ScenarioSampler, simulate_many

FIELDS = ("arrival", "burned", "fire_type", "predecessor")


def _assert_same(inc, full):
    for field in FIELDS:
        np.testing.assert_array_equal(getattr(inc, field), getattr(full, field), err_msg=field)


def test_incremental_equals_full_on_random_break_sequences():
    for seed in (0, 1):
        land = mixed_grass_shrub(seed)
        scenarios = ScenarioSampler(seed).sample(land, 12)
        rng = np.random.default_rng(seed)
        inc = IncrementalSimulator(land, scenarios)
        breaks = np.zeros(land.shape, bool)
        counts = []
        for step in range(60):
            if step % 3 == 0:  # anywhere, often outside every fire
                cell = tuple(rng.integers(0, 64, 2))
            else:  # on a cell burned in some scenario, next to the fire's fastest paths
                burned = np.argwhere(inc.burned.any(axis=0) & ~breaks)
                cell = tuple(burned[rng.integers(len(burned))])
            mask = np.zeros(land.shape, bool)
            mask[cell] = True
            was_burned = inc.burned[:, cell[0], cell[1]].copy()
            counts.append(inc.add_breaks(mask))
            breaks |= mask
            assert counts[-1] >= was_burned.sum()  # every scenario that burned it re-ran
            _assert_same(inc, simulate_many(land, scenarios, breaks))
        counts = np.array(counts)
        assert (counts < len(scenarios)).mean() > 0.5  # most steps skip scenarios
        assert inc.add_breaks(breaks) == 0  # nothing new


def test_untouched_scenarios_are_not_rerun():
    land = mixed_grass_shrub(3)
    scenarios = ScenarioSampler(3).sample(land, 8)
    inc = IncrementalSimulator(land, scenarios)
    never = ~inc.burned.any(axis=0)
    # a cell no fire reached, away from every burned cell, cannot matter to any scenario
    far = np.argwhere(never)
    dist = [np.abs(np.argwhere(inc.burned.any(axis=0)) - c).max(axis=1).min() for c in far]
    cell = tuple(far[int(np.argmax(dist))])
    assert max(dist) > 2
    mask = np.zeros(land.shape, bool)
    mask[cell] = True
    assert inc.add_breaks(mask) == 0


def test_breaks_outside_the_support_change_nothing():
    """Brute force: every single-cell break outside a scenario's support leaves its fire exactly as
    it was; the support holds the burned cells plus cells fastest-path moves pass beside/through."""
    land = mixed_grass_shrub(5, n=32, block=4)
    scenarios = ScenarioSampler(5).sample(land, 3)
    inc = IncrementalSimulator(land, scenarios)
    assert (inc.support & ~inc.burned).any()  # moves do pass by unburned cells
    for s, scenario in enumerate(scenarios):
        for cell in np.argwhere(~inc.support[s])[::3]:
            mask = np.zeros(land.shape, bool)
            mask[tuple(cell)] = True
            out = simulate_many(land, [scenario], mask)
            for field in FIELDS:
                np.testing.assert_array_equal(getattr(out, field)[0], getattr(inc, field)[s])
