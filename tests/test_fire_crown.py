"""Crown fire: Van Wagner initiation against Behave, Scott & Reinhardt (2001) against Behave's crown
module and its worked examples, Cruz et al. (2005) as the alternative method."""

import itertools
import math

import pytest

from fire_helpers import behave_foliar_moisture
from firebreak.fire import Moisture, Weather, crown_fire_indices, fire_behaviour_at
from firebreak.fire import crown
from firebreak.fire import rothermel as rt
from firebreak.fire.fuel_models import FUEL_ARRAY

DRY = Moisture(0.04, 0.05, 0.06, 0.6, 0.8)
BEHAVE_FIRE_TYPES = {"surface": crown.SURFACE, "conditional_crown_fire": crown.SURFACE, "torching": crown.PASSIVE,
                     "crowning": crown.ACTIVE}


@pytest.mark.parametrize("cbh,fmc", [(1.0, 0.8), (5.0, 1.0), (12.0, 1.2)])
def test_initiation_intensity_matches_behave(cbh, fmc):
    """Behave's transition ratio is surface intensity / Van Wagner's critical intensity. Behave
    converts that critical intensity from kW/m with its constant 3.46414 kW/m per Btu/ft/s (we use
    the exact 3.46146), so the comparison uses Behave's constant; it then agrees to 1e-5."""
    pt = pytest.importorskip("pyrothermel")
    fm = pt.FuelModel.from_existing(165, units_preset="us_standard")
    ms = pt.MoistureScenario(0.04, 0.05, 0.06, 0.6, 0.8, foliar_moisture=fmc)
    run = pt.PyrothermelRun(fm, ms, 30 / rt.KMH_PER_MPH, units_preset="us_standard", wind_input_mode="ten_meter",
                            wind_direction=270, canopy_cover=0.6, canopy_height=20 / rt.M_PER_FT,
                            canopy_ratio=(20 - cbh) / 20,
                            canopy_base_height=cbh / rt.M_PER_FT, canopy_bulk_density=0.15 * 0.062428)
    surface = run.run_surface_fire_in_direction_of_max_spread()["fireline_intensity"]
    ratio = run.run_crown_fire_scott_and_reinhardt()["transition_ratio"]
    assert crown.initiation_intensity(cbh, fmc) == pytest.approx(surface / ratio * 3.46414, rel=1e-5)


def test_initiation_bounds_as_behave():
    """Behave floors the canopy base height at 0.1 m and the foliar moisture at 30 %."""
    assert crown.initiation_intensity(0.0, 1.0) == crown.initiation_intensity(0.1, 1.0)
    assert crown.initiation_intensity(0.1, 1.0) == pytest.approx((0.010 * 0.1 * (460 + 2590)) ** 1.5, rel=1e-14)
    assert crown.initiation_intensity(2.0, 0.1) == crown.initiation_intensity(2.0, 0.3)


# --- Scott & Reinhardt (2001) -------------------------------------------------------------

def _worked_example(code, moisture, u20_ft_min, slope, ch_ft, cbh_ft, cbd_lb_ft3, waf, crown_slope=0.0):
    """The S&R kernel on one cell as Behave's test suite sets it up: wind blowing upslope at
    `u20_ft_min` (20 ft), user wind adjustment factor `waf`, foliar moisture 100 % (as Behave's
    I0, `behave_foliar_moisture`)."""
    fb = rt.fuelbed(FUEL_ARRAY[code], *moisture)
    fb10 = rt.fuelbed(FUEL_ARRAY[crown.CROWN_FUEL_MODEL], *moisture)
    surface_rate = rt.head_fire(fb, waf * u20_ft_min, 180.0, slope, 180.0)[0]
    hpa = fb[rt.FB_IR] * fb[rt.FB_RES_TIME]
    cbd = cbd_lb_ft3 * crown.KG_M3_PER_LB_FT3
    kind, rate, heat, cfb, _, _ = crown.scott_reinhardt(
        fb, fb10, surface_rate, hpa, waf, u20_ft_min, 180.0, slope, 180.0, crown_slope, ch_ft * rt.M_PER_FT,
        cbh_ft * rt.M_PER_FT, cbd, behave_foliar_moisture(1.0))
    intensity = rate * heat / 60.0
    return kind, rate, intensity, crown.thomas_flame_length(intensity), crown.crowning_index(fb10, cbd, crown_slope)


def test_scott_reinhardt_worked_examples():
    """The two Scott & Reinhardt stands of Behave's test suite (firelab/behave,
    src/testBehave/testBehave.cpp, testCrownModuleScottAndReinhardt; 40 km/h 20 ft wind, 20 %
    slope, S&R's wind reduction factors): an active crown fire in fuel model 10 and a torching
    fire in fuel model 5. Behave evaluates the crown fuel on level ground (crown_slope=0).
    Tolerances: the active example to Behave's 6 decimals (abs 1e-6); the crowning index and
    the passive example relative 1e-5 (Behave hard-codes fuel model 10's flux, B and C
    coefficients, we compute them: O'active 2e-6 apart)."""
    kind, rate, intensity, flame, ci = _worked_example(
        10, (0.08, 0.09, 0.10, 0.0, 1.17), 2187.226624, 0.2, 38.104626, 2.952756, 0.01311, 0.4)
    assert kind == crown.ACTIVE
    assert rate == pytest.approx(65.221842, abs=1e-6)  # ft/min
    assert flame == pytest.approx(60.744542, abs=1e-6)  # ft
    assert intensity == pytest.approx(5293.170672, abs=1e-6)  # Btu/ft/s
    assert ci == pytest.approx(1717.916785, rel=1e-5)  # ft/min, 20 ft

    kind, rate, intensity, flame, ci = _worked_example(
        5, (0.05, 0.06, 0.08, 0.0, 1.17), 24.854848 * rt.FT_MIN_PER_MPH, 0.2, 71.631562, 4.92126, 0.003746, 0.15)
    assert kind == crown.PASSIVE
    assert rate == pytest.approx(29.475388, rel=1e-5)
    assert flame == pytest.approx(12.759447, rel=1e-5)
    assert intensity == pytest.approx(509.568753, rel=1e-5)
    assert ci == pytest.approx(3874.421988, rel=1e-5)


def _behave_crown(code, moisture, fmc, wind_kmh, wind_from, slope, aspect, cover, height, base, cbd):
    pt = pytest.importorskip("pyrothermel")
    fm = pt.FuelModel.from_existing(code, units_preset="us_standard")
    run = pt.PyrothermelRun(fm, pt.MoistureScenario(*moisture, foliar_moisture=fmc), wind_kmh / rt.KMH_PER_MPH,
                            units_preset="us_standard", wind_input_mode="ten_meter", wind_direction=wind_from,
                            slope=math.degrees(math.atan(slope)), aspect=aspect, canopy_cover=cover,
                            canopy_height=height / rt.M_PER_FT, canopy_ratio=(height - base) / height,
                            canopy_base_height=base / rt.M_PER_FT,
                            canopy_bulk_density=cbd / crown.KG_M3_PER_LB_FT3)
    surface = run.run_surface_fire_in_direction_of_max_spread()
    out = run.run_crown_fire_scott_and_reinhardt()
    return surface, out


CANOPIES = [  # cover, height m, base m, bulk density kg/m3
    (0.7, 20.0, 0.5, 0.30), (0.7, 20.0, 0.5, 0.02), (0.5, 15.0, 2.0, 0.12), (0.8, 25.0, 6.0, 0.20),
    (0.3, 10.0, 1.0, 0.08), (0.6, 18.0, 12.0, 0.25),
]


@pytest.mark.parametrize("code", [165, 183, 188, 145, 122, 10, 4])
def test_scott_reinhardt_matches_behave_crown_module(code):
    """`fire_behaviour_at` on level ground against Behave's crown module (pyrothermel,
    doCrownRunScottAndReinhardt) over fuels, moistures, 10 m winds 0-60 km/h and canopies: fire
    type, final spread rate, fireline intensity and flame length, with Behave's I0
    (`behave_foliar_moisture`). Tolerance: relative 1e-6 for surface and active crown fires, 1e-5
    for passive ones (their crown fraction burned goes through O'active, see the worked examples)."""
    seen = set()
    for moisture, wind, canopy in itertools.product(
            [(0.04, 0.05, 0.06, 0.6, 0.8), (0.08, 0.09, 0.10, 1.2, 1.2)], [0.0, 10.0, 30.0, 60.0], CANOPIES):
        cover, height, base, cbd = canopy
        _, behave = _behave_crown(code, moisture, 1.0, wind, 250.0, 0.0, 0.0, *canopy)
        weather = Weather(wind, 250.0, Moisture(*moisture), foliar_moisture=behave_foliar_moisture(1.0))
        ours = fire_behaviour_at(code, weather, canopy_cover=cover,
                                 canopy_height=height, canopy_base_height=base, canopy_bulk_density=cbd)
        kind = BEHAVE_FIRE_TYPES[behave["fire_type"]]
        if behave["spread_rate"] == 0.0:
            kind = crown.UNBURNED
        assert ours["fire_type"] == kind, (moisture, wind, canopy, behave)
        seen.add(kind)
        rel = 1e-5 if kind == crown.PASSIVE else 1e-6
        assert ours["rate"] == pytest.approx(behave["spread_rate"] * 1.1 * rt.M_PER_FT, rel=rel, abs=1e-12)
        assert ours["intensity"] == pytest.approx(behave["fireline_intensity"] * rt.KW_M_PER_BTU_FT_S, rel=rel,
                                                  abs=1e-12)
        assert ours["flame_length"] == pytest.approx(behave["flame_length"] * rt.M_PER_FT, rel=rel, abs=1e-12)
    if code in (165, 10, 4):  # fuels that crown in both ways under these conditions
        assert {crown.PASSIVE, crown.ACTIVE} <= seen, seen


@pytest.mark.parametrize("slope,aspect,wind_from", [(0.3, 180.0, 180.0), (0.6, 90.0, 0.0), (1.0, 200.0, 45.0)])
def test_active_crown_rate_on_slopes_is_fuel_model_10_on_the_cell_slope(slope, aspect, wind_from):
    """FlamMap evaluates the crown fuel on the cell's slope: an active crown fire's rate is 3.34 x
    Behave's head rate of fuel model 10 with midflame wind 0.4 x the 20 ft wind on that slope
    (pyrothermel's surface run, direct midflame), to 1e-6; its direction is that run's."""
    pt = pytest.importorskip("pyrothermel")
    wind = 40.0
    ours = fire_behaviour_at(165, Weather(wind, wind_from, DRY), slope=slope, aspect=aspect, canopy_cover=0.7,
                             canopy_height=20.0, canopy_base_height=0.5, canopy_bulk_density=0.3)
    assert ours["fire_type"] == crown.ACTIVE
    fm = pt.FuelModel.from_existing(10, units_preset="us_standard")
    run = pt.PyrothermelRun(fm, pt.MoistureScenario(0.04, 0.05, 0.06, 0.6, 0.8),
                            0.4 * wind / 1.15 / rt.KMH_PER_MPH, units_preset="us_standard",
                            wind_direction=wind_from, slope=math.degrees(math.atan(slope)), aspect=aspect)
    fm10 = run.run_surface_fire_in_direction_of_max_spread()
    assert ours["rate"] == pytest.approx(3.34 * fm10["spread_rate"] * 1.1 * rt.M_PER_FT, rel=1e-6)
    assert abs((ours["direction"] - fm10["direction"] + 180) % 360 - 180) < 1e-6


def test_steep_dense_canopy_crowns_without_wind():
    """No wind, 100 % slope, dense low canopy: the crown fuel's slope effect alone carries an
    active crown fire (hand computation: R10 = R0 (1 + 5.275 beta^-0.3 tan^2), active when
    3.34 R10 >= 3 / CBD m/min), which Cruz's wind-only rate (0 without wind) cannot."""
    fb10 = rt.fuelbed(FUEL_ARRAY[10], *DRY.as_array())
    r10 = fb10[rt.FB_R0] * (1.0 + 5.275 * fb10[rt.FB_BETA] ** -0.3 * 1.0)
    assert 3.34 * r10 * rt.M_PER_FT >= 3.0 / 0.3
    kwargs = dict(slope=1.0, aspect=180.0, canopy_cover=0.8, canopy_height=20.0, canopy_base_height=0.5,
                  canopy_bulk_density=0.3)
    calm = Weather(0.0, 0.0, DRY)
    sr = fire_behaviour_at(165, calm, **kwargs)
    assert sr["fire_type"] == crown.ACTIVE
    assert sr["rate"] == pytest.approx(3.34 * r10 * rt.M_PER_FT, rel=1e-12)
    assert sr["direction"] == pytest.approx(0.0)  # upslope: the slope faces south
    assert fire_behaviour_at(165, calm, crown_method="cruz", **kwargs)["fire_type"] == crown.PASSIVE


def test_scott_reinhardt_passive_burns_canopy_fuel():
    """Torching adds the burned share of the canopy fuel: a passive fire is faster and more intense
    than the surface fire under the same canopy geometry, and slower than an active one."""
    kwargs = dict(canopy_cover=0.7, canopy_height=20.0, canopy_base_height=0.5)
    weather = Weather(30.0, 270.0, DRY)
    surface = fire_behaviour_at(165, weather, canopy_bulk_density=0.0, **kwargs)
    passive = fire_behaviour_at(165, weather, canopy_bulk_density=0.02, **kwargs)
    assert surface["fire_type"] == crown.SURFACE and passive["fire_type"] == crown.PASSIVE
    assert surface["rate"] < passive["rate"]
    assert passive["intensity"] > surface["intensity"] and passive["flame_length"] > surface["flame_length"]
    active = fire_behaviour_at(165, Weather(60.0, 270.0, DRY), canopy_bulk_density=0.3, **kwargs)
    assert active["fire_type"] == crown.ACTIVE and active["rate"] > passive["rate"]


def test_crown_fuel_too_wet_to_spread_only_torches():
    """1 h moisture above fuel model 10's extinction (25 %) under a grass that still burns (GR5,
    40 %): the torching fire keeps the surface rate and heat, and the indices say no crowning."""
    wet = Weather(20.0, 270.0, Moisture(0.30, 0.31, 0.32, 0.9, 1.0))
    canopy = dict(canopy_cover=0.7, canopy_height=20.0, canopy_base_height=0.1, canopy_bulk_density=0.2)
    out = fire_behaviour_at(105, wet, **canopy)
    assert out["surface_rate"] > 0.0 and out["fire_type"] == crown.PASSIVE
    assert out["rate"] == out["surface_rate"] and out["crown_fraction_burned"] == 0.0
    assert crown_fire_indices(105, wet, **canopy)["crowning_index"] == math.inf


def test_unknown_crown_method_is_refused():
    with pytest.raises(ValueError, match="crown_method 'van_wagner'.*scott_reinhardt"):
        fire_behaviour_at(165, Weather(10.0, 0.0, DRY), crown_method="van_wagner")


# --- Cruz et al. (2005), the alternative --------------------------------------------------

def test_cruz_active_rate_is_the_published_equation():
    u10, cbd, m1 = 30.0, 0.2, 0.06
    expected = 11.02 * 30.0**0.90 * 0.2**0.19 * math.exp(-0.17 * 6.0)
    assert crown.active_spread_rate(u10, cbd, m1) == pytest.approx(expected, rel=1e-12)
    assert crown.active_spread_rate(u10, 0.0, m1) == 0.0


def _cell(cbh, cbd, wind=40.0, cover=0.7, height=20.0):
    weather = Weather(wind, 270.0, DRY, foliar_moisture=1.0)
    return fire_behaviour_at(165, weather, canopy_cover=cover, canopy_height=height, canopy_base_height=cbh,
                             canopy_bulk_density=cbd, crown_method="cruz")


def test_fire_types():
    open_ground = fire_behaviour_at(165, Weather(40.0, 270.0, DRY), crown_method="cruz")
    assert open_ground["fire_type"] == crown.SURFACE
    high_base = _cell(cbh=15.0, cbd=0.3)
    assert high_base["intensity"] < crown.initiation_intensity(15.0, 1.0)
    assert high_base["fire_type"] == crown.SURFACE

    low_base_dense = _cell(cbh=0.5, cbd=0.3)
    cros = crown.active_spread_rate(40.0, 0.3, DRY.dead_1h)
    assert cros >= 3.0 / 0.3 and low_base_dense["fire_type"] == crown.ACTIVE
    assert low_base_dense["rate"] >= cros

    low_base_sparse = _cell(cbh=0.5, cbd=0.02)
    assert crown.active_spread_rate(40.0, 0.02, DRY.dead_1h) < 3.0 / 0.02
    assert low_base_sparse["fire_type"] == crown.PASSIVE

    wet = fire_behaviour_at(186, Weather(5.0, 270.0, Moisture(0.4, 0.4, 0.4, 1.5, 1.5)), crown_method="cruz")
    assert wet["fire_type"] == crown.UNBURNED and wet["rate"] == 0.0


def test_passive_spreads_at_surface_rate_active_faster():
    surface_only = _cell(cbh=0.5, cbd=0.0)  # same canopy geometry (same wind reduction), no crown fuel
    passive = _cell(cbh=0.5, cbd=0.02)
    active = _cell(cbh=0.5, cbd=0.3)
    assert surface_only["fire_type"] == crown.SURFACE
    assert passive["fire_type"] == crown.PASSIVE and passive["rate"] == surface_only["rate"]
    assert active["rate"] > passive["rate"]
    assert active["intensity"] > passive["intensity"]
