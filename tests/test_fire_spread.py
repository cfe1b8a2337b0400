"""Spread on homogeneous and barrier landscapes: shape, direction, barriers, determinism, tree."""

import numpy as np
import pytest

from fire_helpers import component, homogeneous, mixed_grass_shrub
from firebreak.fire import Moisture, Scenario, ScenarioSampler, fire_behaviour_at, simulate, simulate_many

DRY = Moisture(0.05, 0.06, 0.07, 0.6, 0.9)
CELL = 30.0


def _scenario(cells, wind=0.0, wind_from=270.0, duration=60.0):
    return Scenario(np.array(cells), wind, wind_from, DRY, 1.0, duration)


def test_arrival_along_stencil_directions_is_distance_over_rate():
    land = homogeneous(41)
    rate = fire_behaviour_at(102, _scenario([(20, 20)]).weather)["rate"]
    out = simulate(land, _scenario([(20, 20)], duration=1e9))
    for d in range(1, 20):
        assert out.arrival[20, 20 + d] == pytest.approx(d * CELL / rate, rel=1e-12)
        assert out.arrival[20 - d, 20 - d] == pytest.approx(d * np.sqrt(2) * CELL / rate, rel=1e-12)


def test_horizontal_rate_on_a_uniform_slope():
    """On a 50 % slope facing south (rising to the north) without wind, the MTT spreads at the
    horizontal rate R cos(atan 0.5) = R / sqrt(1.25) = 0.894427 R (FlamMap's horizontal rate of
    spread), R the Behave rate along the slope: upslope (head), downslope (backing) and across the
    slope (the ellipse at 90 degrees off its head, R (1 - e)). Relative 1e-12."""
    land = homogeneous(41, slope=0.5, aspect=180.0)
    behaviour = fire_behaviour_at(102, _scenario([(20, 20)]).weather, slope=0.5, aspect=180.0)
    assert behaviour["direction"] == 0.0  # the head runs upslope, north
    rate, e = behaviour["rate"], behaviour["eccentricity"]
    cos_slope = 1.0 / np.sqrt(1.25)
    assert cos_slope == pytest.approx(0.894427191, rel=1e-9)
    out = simulate(land, _scenario([(20, 20)], duration=1e9))
    for d in range(1, 20):
        assert out.arrival[20 - d, 20] == pytest.approx(d * CELL / (rate * cos_slope), rel=1e-12)  # north
        backing = rate * (1 - e) / (1 + e)
        assert out.arrival[20 + d, 20] == pytest.approx(d * CELL / (backing * cos_slope), rel=1e-12)  # south
        across = rate * (1 - e)
        assert out.arrival[20, 20 + d] == pytest.approx(d * CELL / (across * cos_slope), rel=1e-12)  # east


def test_no_wind_flat_fire_is_a_symmetric_near_circle():
    land = homogeneous(61)
    rate = fire_behaviour_at(102, _scenario([(30, 30)]).weather)["rate"]
    radius = 25.0  # cells
    out = simulate(land, _scenario([(30, 30)], duration=radius * CELL / rate))
    a = out.arrival
    for flipped in (a[::-1], a[:, ::-1], a.T):
        np.testing.assert_allclose(np.where(np.isfinite(flipped), flipped, -1), np.where(np.isfinite(a), a, -1),
                                   rtol=1e-12)
    assert out.burned[30, 30 - 25] and out.burned[30, 30 + 25] and not out.burned[30, 30 + 26]
    # a 16-neighbour stencil overestimates off-stencil distances by at most ~2.7 %: the area is
    # within that of the circle pi r^2 (minus a perimeter ring of cells)
    area = out.burned.sum()
    assert np.pi * (radius * 0.973 - 1) ** 2 <= area <= np.pi * (radius + 1) ** 2


@pytest.mark.parametrize("wind_from,axis,sign", [(270.0, 1, +1), (90.0, 1, -1), (0.0, 0, +1), (180.0, 0, -1)])
def test_wind_ellipse_matches_the_model(wind_from, axis, sign):
    """Head distance = head rate x duration, backing distance = backing rate x duration (within one
    cell), width = the model's ellipse width (within one cell + 5 %), the head goes downwind."""
    n, c = 121, 60
    land = homogeneous(n)
    ignition = [(c, c)]
    behaviour = fire_behaviour_at(102, _scenario(ignition, wind=25.0, wind_from=wind_from).weather)
    duration = 45.0 * CELL / behaviour["rate"]  # head runs 45 cells
    out = simulate(land, _scenario(ignition, wind=25.0, wind_from=wind_from, duration=duration))
    line = out.burned[c] if axis == 1 else out.burned[:, c]
    idx = np.flatnonzero(line) - c
    head, back = (idx.max(), -idx.min()) if sign > 0 else (-idx.min(), idx.max())
    e = behaviour["eccentricity"]
    backing = behaviour["rate"] * (1 - e) / (1 + e)
    assert abs(head - behaviour["rate"] * duration / CELL) <= 1
    assert abs(back - backing * duration / CELL) <= 1
    width_model = (behaviour["rate"] + backing) / behaviour["length_to_width"] * duration / CELL
    width = out.burned.any(axis=axis).sum() - 1
    assert abs(width - width_model) <= 1 + 0.05 * width_model
    length = out.burned.any(axis=1 - axis).sum() - 1
    assert length / width == pytest.approx(behaviour["length_to_width"], rel=0.1)
    mirrored = out.arrival[::-1] if axis == 1 else out.arrival[:, ::-1]  # mirror across the wind axis
    finite = np.isfinite(out.arrival)
    np.testing.assert_array_equal(finite, np.isfinite(mirrored))
    np.testing.assert_allclose(out.arrival[finite], mirrored[finite], rtol=1e-12)


def test_wind_from_west_burns_east():
    land = homogeneous(64)
    out = simulate(land, _scenario([(32, 32)], wind=20.0, wind_from=270.0, duration=90.0))
    cols = np.nonzero(out.burned)[1]
    assert cols.mean() > 32 + 3 and cols.max() - 32 > 3 * (32 - cols.min())


@pytest.mark.parametrize("aspect,direction", [(180.0, (-1, 0)), (90.0, (0, -1)), (0.0, (1, 0)), (270.0, (0, 1))])
def test_fire_runs_upslope(aspect, direction):
    """A slope facing `aspect` rises away from it: a south-facing slope (180) rises to the north."""
    land = homogeneous(64, slope=0.5, aspect=aspect)
    behaviour = fire_behaviour_at(102, _scenario([(32, 32)]).weather, slope=0.5, aspect=aspect)
    assert behaviour["direction"] == pytest.approx((aspect + 180) % 360)
    out = simulate(land, _scenario([(32, 32)], duration=60.0))
    rows, cols = np.nonzero(out.burned)
    dr, dc = direction
    forward = (rows - 32) * dr + (cols - 32) * dc
    assert forward.max() > 2 * -forward.min()


def _barrier_cases(n):
    i = np.arange(n)
    vertical = np.zeros((n, n), bool)
    vertical[:, n // 2] = True
    diagonal = np.zeros((n, n), bool)  # 8-connected: touches only at corners
    diagonal[i, i] = True
    anti = np.zeros((n, n), bool)
    anti[i, n - 1 - i] = True
    stairs = diagonal.copy()  # 4-connected staircase
    stairs[i[:-1], i[:-1] + 1] = True
    shallow = np.zeros((n, n), bool)  # 8-connected line of slope 1/2 (knight-move geometry)
    shallow[i // 2, i] = True
    steep = shallow.T.copy()
    return {"vertical": vertical, "diagonal": diagonal, "anti": anti, "stairs": stairs, "shallow": shallow,
            "steep": steep}


@pytest.mark.parametrize("name", ["vertical", "diagonal", "anti", "stairs", "shallow", "steep"])
@pytest.mark.parametrize("as_fuel", [False, True])
def test_barrier_lines_are_never_crossed(name, as_fuel):
    n = 40
    line = _barrier_cases(n)[name]
    land = homogeneous(n)
    if as_fuel:  # a line of open water instead of breaks
        land = land.replace(fuel_model=np.where(line, 98, 102).astype(np.int16))
    passable = ~line
    rng = np.random.default_rng(0)
    for start in [tuple(c) for c in np.argwhere(passable)[rng.choice(passable.sum(), 4, replace=False)]]:
        side = component(passable, start)
        for wind_from in (0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0):
            out = simulate(land, _scenario([start], wind=40.0, wind_from=wind_from, duration=1e6),
                           breaks=None if as_fuel else line)
            assert not (out.burned & ~side).any(), (name, start, wind_from)
            assert out.burned[side].all()  # no wind/time limit: the whole side burns


def test_random_walls_are_never_crossed():
    rng = np.random.default_rng(3)
    n = 48
    for _ in range(5):
        walls = np.zeros((n, n), bool)
        for _ in range(4):  # random 8-connected walks
            i, j = rng.integers(0, n, 2)
            for _ in range(60):
                walls[i, j] = True
                i = int(np.clip(i + rng.integers(-1, 2), 0, n - 1))
                j = int(np.clip(j + rng.integers(-1, 2), 0, n - 1))
        start = tuple(np.argwhere(~walls)[rng.integers((~walls).sum())])
        out = simulate(homogeneous(n), _scenario([start], wind=30.0, wind_from=rng.uniform(0, 360), duration=1e6),
                       breaks=walls)
        assert not (out.burned & ~component(~walls, start)).any()
        assert not (out.burned & walls).any()


def test_deterministic_and_batch_equals_single():
    land = mixed_grass_shrub(1)
    scenarios = ScenarioSampler(5).sample(land, 4)
    breaks = np.zeros(land.shape, bool)
    breaks[10:50, 30] = True
    batch = simulate_many(land, scenarios, breaks)
    for s, scenario in enumerate(scenarios):
        one = simulate(land, scenario, breaks)
        again = simulate(land, scenario, breaks)
        for field in ("arrival", "burned", "fire_type", "predecessor"):
            np.testing.assert_array_equal(getattr(one, field), getattr(again, field))
            np.testing.assert_array_equal(getattr(one, field), getattr(batch, field)[s])


def test_predecessors_form_the_fastest_path_tree():
    land = mixed_grass_shrub(2)
    for scenario in ScenarioSampler(2).sample(land, 3):
        out = simulate(land, scenario)
        cols = land.shape[1]
        ignitions = {int(r) * cols + int(c) for r, c in scenario.ignitions}
        for cell in np.flatnonzero(out.burned):
            p = int(out.predecessor.flat[cell])
            if cell in ignitions:
                assert p == -1 and out.arrival.flat[cell] == 0.0
                continue
            assert out.burned.flat[p] and out.arrival.flat[p] < out.arrival.flat[cell]
            dr, dc = divmod(cell, cols)[0] - divmod(p, cols)[0], cell % cols - p % cols
            assert max(abs(dr), abs(dc)) <= 2 and abs(dr) + abs(dc) <= 3
        assert (out.predecessor[~out.burned] == -1).all()
        assert np.isinf(out.arrival[~out.burned]).all()
        assert (out.arrival[out.burned] <= scenario.duration_min).all()


def test_breaks_and_nonburnable_never_burn_but_a_break_does_not_stop_an_ignition():
    land = mixed_grass_shrub(4)
    scenario = _scenario([(32, 32)], wind=20.0, duration=600.0)
    breaks = np.zeros(land.shape, bool)
    breaks[::3, ::5] = True
    out = simulate(land, scenario, breaks)
    assert not out.burned[breaks].any() and not out.burned[~land.burnable].any()
    # A break on the ignition cell: the fire still starts there, exactly as without that break.
    breaks[32, 32] = True
    on_ignition = simulate(land, scenario, breaks)
    assert on_ignition.burned[32, 32] and on_ignition.burned.sum() > 1
    np.testing.assert_array_equal(on_ignition.arrival, out.arrival)
