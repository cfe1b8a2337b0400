"""Surface fire against Behave's C++ core (pyrothermel) as the oracle.

pyrothermel runs in its 'us_standard' preset (its 'metric' preset mislabels SAV units).
Tolerance reached: relative 1e-6 on head spread rate, fireline intensity, flame length and
backing rate (hence length-to-width ratio), 1e-6 degrees on the direction of max spread, for
every Scott & Burgan 40 and Anderson 13 model over moistures (including dynamic curing),
midflame winds 0-10 mph, slopes 0-60 % and wind-vs-slope angles. Observed worst ~1e-9.
"""

import itertools
import math

import numpy as np
import pytest

pt = pytest.importorskip("pyrothermel")

from firebreak.fire import FUEL_MODELS, Moisture, Weather, fire_behaviour_at, surface_fire  # noqa: E402
from firebreak.fire import rothermel as rt  # noqa: E402
from firebreak.fire.behaviour import directional_intensity  # noqa: E402
from firebreak.fire.fuel_models import FUEL_ARRAY  # noqa: E402
from firebreak.landscape import Landscape  # noqa: E402

REL = 1e-6
BURNABLE = sorted(c for c, m in FUEL_MODELS.items() if m.burnable)
MOISTURES = [
    (0.03, 0.04, 0.05, 0.30, 0.60),  # herbs fully cured (dynamic transfer, all herb dead)
    (0.06, 0.07, 0.08, 0.75, 1.00),  # partly cured
    (0.10, 0.11, 0.12, 1.50, 1.50),  # green, near dead extinction for low-Mx models
]
CASES = [  # midflame mph, wind from deg, slope rise/run, aspect deg
    (0.0, 0.0, 0.0, 0.0), (2.0, 270.0, 0.0, 0.0), (5.0, 0.0, 0.3, 180.0), (10.0, 45.0, 0.6, 200.0),
    (10.0, 90.0, 0.6, 90.0), (0.0, 0.0, 0.45, 315.0), (5.0, 200.0, 0.15, 20.0),
]

CH_PER_HR_TO_FT_MIN = 66.0 / 60.0


def _oracle(code, moisture, mph, wind_from, slope, aspect, **wind):
    fm = pt.FuelModel.from_existing(code, units_preset="us_standard")
    run = pt.PyrothermelRun(fm, pt.MoistureScenario(*moisture), mph, units_preset="us_standard",
                            wind_direction=wind_from, slope=math.degrees(math.atan(slope)), aspect=aspect,
                            **({"wind_input_mode": "direct_midflame"} | wind))
    head = run.run_surface_fire_in_direction_of_max_spread()
    back = run.run_surface_fire_in_direction_of_interest(head["direction"] + 180.0)
    return head, back


def _close(ours, theirs):
    assert ours == pytest.approx(theirs, rel=REL, abs=1e-9)


@pytest.mark.parametrize("code", BURNABLE)
def test_head_fire_matches_behave(code):
    for moisture, (mph, wind_from, slope, aspect) in itertools.product(MOISTURES, CASES):
        head, back = _oracle(code, moisture, mph, wind_from, slope, aspect)
        fb = rt.fuelbed(FUEL_ARRAY[code], *moisture)
        ros, direction, _, lwr, ecc = rt.head_fire(fb, mph * rt.FT_MIN_PER_MPH, wind_from, slope, aspect)
        intensity = rt.fireline_intensity(ros, fb)
        _close(ros, head["spread_rate"] * CH_PER_HR_TO_FT_MIN)
        _close(intensity, head["fireline_intensity"])
        _close(rt.flame_length(intensity), head["flame_length"])
        _close(ros * (1 - ecc) / (1 + ecc), back["spread_rate"] * CH_PER_HR_TO_FT_MIN)
        if ros > 0:
            assert abs((direction - head["direction"] + 180) % 360 - 180) < 1e-6


def test_wind_limit_caps_spread_as_behave():
    """A light grass under a strong wind: Behave caps the effective wind at 0.9 I_R."""
    moisture = MOISTURES[0]
    rates = []
    for mph in (40.0, 80.0):
        head, _ = _oracle(102, moisture, mph, 270.0, 0.0, 0.0)
        fb = rt.fuelbed(FUEL_ARRAY[102], *moisture)
        ros = rt.head_fire(fb, mph * rt.FT_MIN_PER_MPH, 270.0, 0.0, 0.0)[0]
        _close(ros, head["spread_rate"] * CH_PER_HR_TO_FT_MIN)
        rates.append(ros)
    assert rates[0] == rates[1]  # both past the limit


@pytest.mark.parametrize("code", [102, 124, 145, 165, 186, 9])
@pytest.mark.parametrize("cover,height,base", [(0.0, 0.0, 0.0), (0.6, 20.0, 5.0), (0.5, 10.0, 2.0),
                                               (0.3, 20.0, 15.0), (0.8, 1.5, 0.5)])
def test_wind_adjustment_sheltered_and_unsheltered(code, cover, height, base):
    """10 m wind through the public metric API against Behave's wind adjustment (Andrews 2012).
    (0.3, 20, 15) has crown fraction 0.025 < 0.05 and (0.8, 1.5 m) is under 6 ft: both unsheltered."""
    moisture = (0.05, 0.06, 0.07, 0.6, 0.9)
    weather = Weather(20.0, 250.0, Moisture(*moisture))
    ours = fire_behaviour_at(code, weather, slope=0.2, aspect=120.0, canopy_cover=cover, canopy_height=height,
                             canopy_base_height=base)
    head, _ = _oracle(code, moisture, 20.0 / rt.KMH_PER_MPH, 250.0, 0.2, 120.0, wind_input_mode="ten_meter",
                      canopy_cover=cover, canopy_height=height / rt.M_PER_FT,
                      canopy_ratio=(height - base) / height if height else 0.0)
    _close(ours["rate"], head["spread_rate"] * CH_PER_HR_TO_FT_MIN * rt.M_PER_FT)
    _close(ours["intensity"], head["fireline_intensity"] * rt.KW_M_PER_BTU_FT_S)
    _close(ours["flame_length"], head["flame_length"] * rt.M_PER_FT)


def test_grid_equals_per_cell_and_directional_intensity_matches_behave():
    rng = np.random.default_rng(0)
    codes = np.array(BURNABLE, np.int16)
    fuel = rng.choice(codes, size=(6, 7)).astype(np.int16)
    slope = rng.uniform(0, 0.6, fuel.shape).astype(np.float32)
    aspect = rng.uniform(0, 359, fuel.shape).astype(np.float32)
    z = np.zeros(fuel.shape, np.float32)
    land = Landscape(fuel_model=fuel, slope=slope, aspect=aspect, elevation=z, canopy_cover=z, canopy_height=z,
                     canopy_base_height=z, canopy_bulk_density=z)
    moisture = (0.05, 0.06, 0.07, 0.6, 0.9)
    weather = Weather(25.0, 300.0, Moisture(*moisture))
    grid = surface_fire(land, weather)
    quad = directional_intensity(grid)
    for i, j in itertools.product(range(fuel.shape[0]), range(fuel.shape[1])):
        one = fire_behaviour_at(int(fuel[i, j]), weather, slope=float(slope[i, j]), aspect=float(aspect[i, j]))
        assert grid.rate[i, j] == one["rate"] and grid.intensity[i, j] == one["intensity"]
        if (i + j) % 5:
            continue
        fm = pt.FuelModel.from_existing(int(fuel[i, j]), units_preset="us_standard")
        run = pt.PyrothermelRun(fm, pt.MoistureScenario(*moisture), 25.0 / rt.KMH_PER_MPH,
                                units_preset="us_standard", wind_input_mode="ten_meter", wind_direction=300.0,
                                slope=math.degrees(math.atan(slope[i, j])), aspect=float(aspect[i, j]),
                                canopy_cover=0.0, canopy_height=0.0, canopy_ratio=0.0)
        for k, azimuth in enumerate((0.0, 90.0, 180.0, 270.0)):
            expected = run.run_surface_fire_in_direction_of_interest(azimuth)["fireline_intensity"]
            assert quad[k, i, j] == pytest.approx(expected * rt.KW_M_PER_BTU_FT_S, rel=1e-5)
