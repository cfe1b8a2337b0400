"""Inputs as fire analysts give them, against Behave (pyrothermel) where Behave defines them: wind at
10 m, 20 ft or midflame, a wind adjustment factor, a crown ratio, crown fire indices, LANDFIRE's
flat aspect, point and whole-cell ignitions, and the FireBehaviour outputs Behave reports."""

import importlib
import math

import numpy as np
import pytest

from fire_helpers import behave_foliar_moisture, homogeneous
from firebreak.fire import (Moisture, Scenario, Weather, crown_fire_indices, fire_behaviour_at, simulate,
                            surface_fire)
from firebreak.fire import crown
from firebreak.fire import rothermel as rt

MOISTURE = (0.05, 0.06, 0.07, 0.6, 0.9)
CH_PER_HR_TO_M_MIN = 66.0 / 60.0 * rt.M_PER_FT
REL = 1e-6  # Behave-exact surface fire (see test_fire_rothermel.py)


def _behave(code, wind_mph, mode, wind_from=250.0, slope=0.2, aspect=120.0, cover=0.0, height=0.0, ratio=0.0,
            moisture=MOISTURE):
    pt = pytest.importorskip("pyrothermel")
    fm = pt.FuelModel.from_existing(code, units_preset="us_standard")
    run = pt.PyrothermelRun(fm, pt.MoistureScenario(*moisture), wind_mph, units_preset="us_standard",
                            wind_input_mode=mode, wind_direction=wind_from, slope=math.degrees(math.atan(slope)),
                            aspect=aspect, canopy_cover=cover, canopy_height=height / rt.M_PER_FT, canopy_ratio=ratio)
    head = run.run_surface_fire_in_direction_of_max_spread()
    back = run.run_surface_fire_in_direction_of_interest(head["direction"] + 180.0)
    return head, back


def _ours(code, weather, slope=0.2, aspect=120.0, **canopy):
    return fire_behaviour_at(code, weather, slope=slope, aspect=aspect, **canopy)


def _assert_behave(ours, head):
    assert ours["rate"] == pytest.approx(head["spread_rate"] * CH_PER_HR_TO_M_MIN, rel=REL)
    assert ours["intensity"] == pytest.approx(head["fireline_intensity"] * rt.KW_M_PER_BTU_FT_S, rel=REL)
    assert ours["flame_length"] == pytest.approx(head["flame_length"] * rt.M_PER_FT, rel=REL)
    assert ours["midflame_wind"] == pytest.approx(head["midflame_windspeed"] * rt.KMH_PER_MPH, rel=REL)


@pytest.mark.parametrize("code", [102, 145, 165, 186])
@pytest.mark.parametrize("canopy", [{}, {"canopy_cover": 0.6, "canopy_height": 20.0, "canopy_base_height": 5.0}])
def test_wind_heights_match_behave(code, canopy):
    """A 20 ft wind and a midflame wind against Behave's 'twenty_foot' and 'direct_midflame'
    modes (relative 1e-6), with Behave's midflame wind; 10 m = 1.15 x 20 ft."""
    cover = canopy.get("canopy_cover", 0.0)
    height = canopy.get("canopy_height", 0.0)
    ratio = (height - canopy["canopy_base_height"]) / height if canopy else 0.0
    for height_name, mode in (("20ft", "twenty_foot"), ("midflame", "direct_midflame")):
        weather = Weather(20.0, 250.0, Moisture(*MOISTURE), wind_height=height_name)
        head, _ = _behave(code, 20.0 / rt.KMH_PER_MPH, mode, cover=cover, height=height, ratio=ratio)
        _assert_behave(_ours(code, weather, **canopy), head)
    ten = _ours(code, Weather(23.0, 250.0, Moisture(*MOISTURE)), **canopy)
    twenty = _ours(code, Weather(20.0, 250.0, Moisture(*MOISTURE), wind_height="20ft"), **canopy)
    assert ten["rate"] == pytest.approx(twenty["rate"], rel=1e-12)


def test_wind_adjustment_factor_is_midflame_over_20ft():
    """A given factor replaces Andrews' (canopy or not): Behave's run with the midflame wind
    factor x 20 ft wind (direct midflame) is the oracle, relative 1e-6."""
    for canopy in ({}, {"canopy_cover": 0.8, "canopy_height": 25.0, "canopy_base_height": 3.0}):
        weather = Weather(30.0, 250.0, Moisture(*MOISTURE), wind_height="20ft", wind_adjustment_factor=0.3)
        head, _ = _behave(165, 0.3 * 30.0 / rt.KMH_PER_MPH, "direct_midflame")
        _assert_behave(_ours(165, weather, **canopy), head)


def test_crown_ratio_given_matches_behave_and_derived_by_default():
    """A given crown ratio enters the wind adjustment factor as Behave's canopy ratio (relative
    1e-6); without it the ratio is (CH - CBH) / CH."""
    canopy = {"canopy_cover": 0.5, "canopy_height": 20.0, "canopy_base_height": 5.0}
    for ratio in (0.2, 0.45, 0.9):  # 0.2: crown fraction 0.033 < 0.05, unsheltered
        head, _ = _behave(165, 20.0 / rt.KMH_PER_MPH, "ten_meter", cover=0.5, height=20.0, ratio=ratio)
        ours = _ours(165, Weather(20.0, 250.0, Moisture(*MOISTURE)), crown_ratio=ratio, **canopy)
        _assert_behave(ours, head)
    derived = _ours(165, Weather(20.0, 250.0, Moisture(*MOISTURE)), **canopy)
    given = _ours(165, Weather(20.0, 250.0, Moisture(*MOISTURE)), crown_ratio=0.75, **canopy)
    assert derived == given
    with pytest.raises(ValueError, match="crown_ratio"):
        _ours(165, Weather(20.0, 250.0, Moisture(*MOISTURE)), crown_ratio=1.5)


def test_crown_ratio_grid_on_a_landscape():
    land = homogeneous(6, code=165).replace(canopy_cover=np.full((6, 6), 0.7, np.float32),
                                            canopy_height=np.full((6, 6), 20.0, np.float32),
                                            canopy_base_height=np.full((6, 6), 2.0, np.float32))
    weather = Weather(25.0, 250.0, Moisture(*MOISTURE))
    ratio = np.linspace(0.1, 0.9, 36).reshape(6, 6)
    grid = surface_fire(land, weather, crown_ratio=ratio)
    for (i, j), r in np.ndenumerate(ratio):
        one = fire_behaviour_at(165, weather, canopy_cover=float(np.float32(0.7)), canopy_height=20.0,
                                canopy_base_height=2.0, crown_ratio=r)
        assert grid.rate[i, j] == one["rate"] and grid.midflame_wind[i, j] == one["midflame_wind"]
    assert len(np.unique(grid.rate)) > 1
    with pytest.raises(ValueError, match="shape"):
        surface_fire(land, weather, crown_ratio=np.ones((3, 3)))


def test_backing_flanking_and_midflame_as_behave_defines_them():
    """Behave: backing rate R (1 - e) / (1 + e) (its rate at head + 180 from the ignition point),
    flanking rate (R + backing) / (2 LW), with LW from the ellipse its head and backing rates give;
    midflame wind as Behave reports it. Relative 1e-6."""
    for code, wind in ((102, 15.0), (165, 30.0), (145, 5.0)):
        weather = Weather(wind, 250.0, Moisture(*MOISTURE))
        head, back = _behave(code, wind / rt.KMH_PER_MPH, "ten_meter")
        ours = _ours(code, weather)
        rate, backing = head["spread_rate"] * CH_PER_HR_TO_M_MIN, back["spread_rate"] * CH_PER_HR_TO_M_MIN
        e = (rate - backing) / (rate + backing)
        lw = 1.0 / math.sqrt(1.0 - e * e)
        assert ours["backing_rate"] == pytest.approx(backing, rel=REL)
        assert ours["flanking_rate"] == pytest.approx((rate + backing) / (2.0 * lw), rel=REL)
        assert ours["midflame_wind"] == pytest.approx(head["midflame_windspeed"] * rt.KMH_PER_MPH, rel=REL)


def test_surface_values_under_a_crown_fire_are_behave_surface_run():
    """Where the fire crowns, surface_rate / surface_intensity / surface_flame_length stay Behave's
    surface fire (relative 1e-6), the final values differ."""
    canopy = {"canopy_cover": 0.7, "canopy_height": 20.0, "canopy_base_height": 0.5}
    for cbd in (0.02, 0.3):  # passive, active
        weather = Weather(40.0, 250.0, Moisture(*MOISTURE))
        ours = _ours(165, weather, slope=0.0, aspect=0.0, canopy_bulk_density=cbd, **canopy)
        assert ours["fire_type"] in (crown.PASSIVE, crown.ACTIVE) and ours["rate"] > ours["surface_rate"]
        head, _ = _behave(165, 40.0 / rt.KMH_PER_MPH, "ten_meter", slope=0.0, aspect=0.0, cover=0.7,
                          height=20.0, ratio=19.5 / 20.0)
        assert ours["surface_rate"] == pytest.approx(head["spread_rate"] * CH_PER_HR_TO_M_MIN, rel=REL)
        assert ours["surface_intensity"] == pytest.approx(head["fireline_intensity"] * rt.KW_M_PER_BTU_FT_S, rel=REL)
        assert ours["surface_flame_length"] == pytest.approx(head["flame_length"] * rt.M_PER_FT, rel=REL)
        assert 0.0 < ours["crown_fraction_burned"] <= 1.0


def test_midflame_wind_gives_crown_fire_its_20ft_wind():
    """With a midflame wind, crown fire takes the 20 ft wind as midflame / adjustment factor: the
    same cell under the equivalent 20 ft wind behaves the same (relative 1e-12)."""
    canopy = {"canopy_cover": 0.7, "canopy_height": 20.0, "canopy_base_height": 0.5, "canopy_bulk_density": 0.3}
    twenty = _ours(165, Weather(50.0, 250.0, Moisture(*MOISTURE), wind_height="20ft"), **canopy)
    midflame = _ours(165, Weather(twenty["midflame_wind"], 250.0, Moisture(*MOISTURE), wind_height="midflame"),
                     **canopy)
    assert twenty["fire_type"] == crown.ACTIVE
    for key in ("rate", "intensity", "flame_length", "fire_type", "direction"):
        assert midflame[key] == pytest.approx(twenty[key], rel=1e-12)


def test_crown_fire_indices_match_behave():
    """Torching and crowning indices against pyrothermel's (Behave's transition and active ratios
    searched in 1 mph steps of the 20 ft wind, level ground, Behave's I0): ours lies in the step
    (index - 1, index]; pyrothermel answers 98 when no wind below 99 mph does it."""
    pt = pytest.importorskip("pyrothermel")
    fmc = behave_foliar_moisture(1.0)
    finite = set()
    for code, base, cbd in ((165, 1.0, 0.15), (183, 2.0, 0.2), (145, 0.5, 0.1), (10, 3.0, 0.25)):
        weather = Weather(0.0, 250.0, Moisture(*MOISTURE), foliar_moisture=fmc, wind_height="20ft")
        ours = crown_fire_indices(code, weather, canopy_cover=0.6, canopy_height=18.0, canopy_base_height=base,
                                  canopy_bulk_density=cbd)
        fm = pt.FuelModel.from_existing(code, units_preset="us_standard")
        run = pt.PyrothermelRun(fm, pt.MoistureScenario(*MOISTURE, foliar_moisture=1.0), 0.0,
                                units_preset="us_standard", wind_input_mode="twenty_foot", wind_direction=250.0,
                                canopy_cover=0.6, canopy_height=18.0 / rt.M_PER_FT, canopy_ratio=(18.0 - base) / 18.0,
                                canopy_base_height=base / rt.M_PER_FT,
                                canopy_bulk_density=cbd / crown.KG_M3_PER_LB_FT3)
        for name, behave in (("torching_index", run.calculate_torching_index()),
                             ("crowning_index", run.calculate_crowning_index())):
            mph = ours[name] / rt.KMH_PER_MPH
            assert behave - 1.0 < mph <= (math.inf if behave == 98 else behave + 1e-9), (code, name, mph, behave)
            finite.add(math.isfinite(mph))
    assert finite == {True, False}


def test_crown_fire_indices_edges():
    weather = Weather(0.0, 0.0, Moisture(*MOISTURE))
    assert crown_fire_indices(165, weather) == {"torching_index": math.inf, "crowning_index": math.inf}
    low = crown_fire_indices(165, weather, canopy_cover=0.6, canopy_height=18.0, canopy_base_height=0.0,
                             canopy_bulk_density=0.3)
    assert low["torching_index"] == 0.0  # a base at the ground torches without wind
    steep = crown_fire_indices(165, weather, slope=1.0, canopy_cover=0.6, canopy_height=18.0,
                               canopy_base_height=0.5, canopy_bulk_density=0.3)
    assert steep["crowning_index"] < crown_fire_indices(165, weather, canopy_cover=0.6, canopy_height=18.0,
                                                        canopy_base_height=0.5,
                                                        canopy_bulk_density=0.3)["crowning_index"]
    with pytest.raises(ValueError, match="open winds"):
        crown_fire_indices(165, Weather(5.0, 0.0, Moisture(*MOISTURE), wind_height="midflame"))


def test_landfire_flat_aspect_means_flat_ground():
    weather = Weather(20.0, 250.0, Moisture(*MOISTURE))
    assert _ours(165, weather, slope=0.0, aspect=-1.0) == _ours(165, weather, slope=0.0, aspect=0.0)
    with pytest.raises(ValueError, match="aspect -1"):
        _ours(165, weather, slope=0.3, aspect=-1.0)
    with pytest.raises(ValueError, match=r"\[0, 360\)"):
        _ours(165, weather, slope=0.3, aspect=400.0)


def test_bad_wind_inputs_are_refused():
    m = Moisture(*MOISTURE)
    with pytest.raises(ValueError, match="wind_height '2m'"):
        Weather(10.0, 0.0, m, wind_height="2m")
    with pytest.raises(ValueError, match="already adjusted"):
        Weather(10.0, 0.0, m, wind_height="midflame", wind_adjustment_factor=0.4)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        Weather(10.0, 0.0, m, wind_adjustment_factor=1.5)
    with pytest.raises(ValueError, match=">= 0"):
        Weather(-1.0, 0.0, m)
    with pytest.raises(ValueError, match="wind_height"):
        Scenario([(0, 0)], 10.0, 0.0, m, wind_height="10 m")


# --- ignitions ---------------------------------------------------------------------------

CELL = 30.0


def _calm(ignitions, duration=1e9, **kwargs):
    return Scenario(np.array(ignitions), 0.0, 0.0, Moisture(*MOISTURE), duration_min=duration, **kwargs)


def test_point_ignition_reaches_its_cell_centre_at_the_rate_toward_it():
    """A point 0.3 cells east of a cell centre, no wind, flat: the centre burns at 0.3 x 30 m /
    the circle's rate, and every arrival is that much later than from the centre (relative 1e-12)."""
    land = homogeneous(21)
    rate = fire_behaviour_at(102, _calm([(10, 10)]).weather)["rate"]
    centre = simulate(land, _calm([(10, 10)]))
    point = simulate(land, _calm([(10.0, 10.3)]))
    assert _calm([(10.0, 10.3)]).ignitions.tolist() == [[10, 10]]
    assert point.arrival[10, 10] == pytest.approx(0.3 * CELL / rate, rel=1e-12)
    np.testing.assert_allclose(point.arrival, centre.arrival + 0.3 * CELL / rate, rtol=1e-12)


def test_whole_cell_ignition_starts_on_the_cell_edge():
    """A burning cell: a neighbour's centre is half a move away, a knight move's end 3/4 of it."""
    land = homogeneous(21)
    rate = fire_behaviour_at(102, _calm([(10, 10)]).weather)["rate"]
    whole = simulate(land, _calm([(10, 10)], ignite_whole_cell=True))
    assert whole.arrival[10, 10] == 0.0
    assert whole.arrival[10, 11] == pytest.approx(0.5 * CELL / rate, rel=1e-12)
    assert whole.arrival[9, 11] == pytest.approx(0.5 * math.sqrt(2) * CELL / rate, rel=1e-12)
    assert whole.arrival[9, 12] == pytest.approx(0.75 * math.sqrt(5) * CELL / rate, rel=1e-12)
    centre = simulate(land, _calm([(10, 10)]))
    assert (whole.arrival[centre.burned] <= centre.arrival[centre.burned]).all()


def test_ignitions_outside_the_landscape_are_refused():
    land = homogeneous(8)
    with pytest.raises(ValueError, match=r"ignition \(8.0, 2.0\) lies outside the 8 x 8"):
        simulate(land, _calm([(8, 2)]))
    with pytest.raises(ValueError, match="finite"):
        _calm([(np.nan, 2)])


def test_the_simulation_module_is_not_shadowed():
    import firebreak.fire as fire

    module = importlib.import_module("firebreak.fire.simulation")
    assert module.simulate is fire.simulate and callable(fire.simulate)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("firebreak.fire.simulate")
