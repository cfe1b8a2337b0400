"""Fire behaviour of the cells of a landscape under uniform weather (surface + crown).

`surface_fire(landscape, weather)` is the grid entry point and `fire_behaviour_at` its form
for one cell; both evaluate `cell_fire`, the Numba kernel the spread also calls, lazily, for
only the cells a fire reaches (``spread.burn``). Rates are Behave's, along the slope surface;
the spread converts them to horizontal rates (see spread.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from . import crown, rothermel as rt
from .fuel_models import FUEL_ARRAY
from .weather import Weather, wind_inputs

# The four directions of `directional_intensity`, degrees clockwise from north.
CARDINALS = (0.0, 90.0, 180.0, 270.0)
KMH_PER_FT_MIN = rt.KMH_PER_MPH / rt.FT_MIN_PER_MPH


@dataclass(frozen=True)
class FireBehaviour:
    """Per-cell fire behaviour grids (all (rows, cols)); 0 where nothing burns unless stated.

    rate: head spread rate of the final (surface or crown) fire, m/min, along the slope.
    direction: direction the head moves toward, degrees clockwise from north.
    intensity: head fireline intensity, kW/m.
    flame_length: m (Byram for surface fire, Thomas for crown fire; see ``crown``).
    length_to_width: ellipse length-to-width ratio (1 = circle, also where nothing burns).
    eccentricity: ellipse eccentricity, sqrt(LW^2 - 1) / LW.
    fire_type: 0 unburned, 1 surface, 2 passive crown, 3 active crown.
    heat_per_area: heat released per unit area behind the front, kJ/m2 (intensity = this * rate / 60).
    backing_rate: R (1 - e) / (1 + e), m/min (Behave's backing rate).
    flanking_rate: (R + backing rate) / (2 LW), m/min (Behave's flanking rate, half the ellipse width per minute).
    midflame_wind: wind at midflame height, km/h (given, or the 20 ft wind times the wind adjustment factor).
    surface_rate, surface_intensity, surface_flame_length: the surface fire's head rate (m/min),
        intensity (kW/m) and Byram flame length (m), also where it turns into a crown fire.
    crown_fraction_burned: Scott & Reinhardt's CFB, 0-1 (1 for an active crown fire, 0 for a
        surface fire and for every cell with ``crown_method="cruz"``).
    """

    rate: np.ndarray
    direction: np.ndarray
    intensity: np.ndarray
    flame_length: np.ndarray
    length_to_width: np.ndarray
    eccentricity: np.ndarray
    fire_type: np.ndarray
    heat_per_area: np.ndarray
    backing_rate: np.ndarray
    flanking_rate: np.ndarray
    midflame_wind: np.ndarray
    surface_rate: np.ndarray
    surface_intensity: np.ndarray
    surface_flame_length: np.ndarray
    crown_fraction_burned: np.ndarray


@njit(cache=True)
def cell_fire(fb, fb10, wind, midflame_given, waf_given, wind_10m_kmh, wind_from_deg, slope, aspect_deg,
              canopy_cover, canopy_height, canopy_base_height, crown_ratio, canopy_bulk_density, foliar_moisture,
              dead_1h, method):
    """Fire behaviour of one cell given its fuel bed vector `fb` (``rothermel.fuelbed``) and the
    crown fuel's `fb10` (fuel model 10 under the same moistures), by crown `method`.

    `wind` (ft/min) is the 20 ft wind, or the midflame wind when `midflame_given`; `waf_given` is
    the wind adjustment factor (0: Andrews' for this cell); `wind_10m_kmh` the 10 m wind for Cruz
    (NaN: derived from the 20 ft wind); `crown_ratio` NaN derives it from the canopy heights.

    Returns (rate m/min, direction deg, length-to-width, eccentricity, fire type, heat per unit
    area kJ/m2, intensity kW/m, midflame wind km/h, surface rate m/min, surface intensity kW/m,
    crown fraction burned).
    """
    if math.isnan(crown_ratio):
        crown_ratio = rt.crown_ratio(canopy_height, canopy_base_height)
    if waf_given > 0.0:
        waf = waf_given
    else:
        waf = rt.wind_adjustment_factor(fb, canopy_cover, canopy_height, crown_ratio)
    if midflame_given:
        midflame = wind
        wind_20ft = wind / waf if waf > 0.0 else 0.0
    else:
        midflame = waf * wind
        wind_20ft = wind
    ros, direction, _, lwr, ecc = rt.head_fire(fb, midflame, wind_from_deg, slope, aspect_deg)
    midflame_kmh = midflame * KMH_PER_FT_MIN
    if ros <= 0.0:
        return 0.0, direction, lwr, ecc, crown.UNBURNED, 0.0, 0.0, midflame_kmh, 0.0, 0.0, 0.0
    hpa_btu = fb[rt.FB_IR] * fb[rt.FB_RES_TIME]
    surface_rate = ros * rt.M_PER_FT
    surface_intensity = ros * hpa_btu / 60.0 * rt.KW_M_PER_BTU_FT_S
    kind = crown.SURFACE
    cfb = 0.0
    if canopy_cover > 0.0 and canopy_bulk_density > 0.0:
        if method == crown.SCOTT_REINHARDT:
            kind, ros_final, hpa_final, cfb, crown_direction, _ = crown.scott_reinhardt(
                fb, fb10, ros, hpa_btu, waf, wind_20ft, wind_from_deg, slope, aspect_deg, slope,
                canopy_height, canopy_base_height, canopy_bulk_density, foliar_moisture)
            if kind != crown.SURFACE:
                ros = ros_final
                hpa_btu = hpa_final
            if kind == crown.ACTIVE:
                direction = crown_direction
        else:
            if math.isnan(wind_10m_kmh):
                wind_10m_kmh = wind_20ft * KMH_PER_FT_MIN * 1.15
            kind, crown_rate = crown.cruz(ros * rt.M_PER_FT, rt.fireline_intensity(ros, fb) * rt.KW_M_PER_BTU_FT_S,
                                          wind_10m_kmh, canopy_base_height, canopy_bulk_density, foliar_moisture,
                                          dead_1h)
            if kind == crown.ACTIVE:
                ros = max(ros, crown_rate / rt.M_PER_FT)
                canopy_load = canopy_bulk_density * max(canopy_height - canopy_base_height, 0.0)
                hpa_btu += canopy_load * crown.CANOPY_HEAT_CRUZ_KJ_KG / crown.BTU_FT2_TO_KJ_M2
    if kind == crown.ACTIVE:
        lwr = max(lwr, crown.crown_length_to_width(wind_20ft / rt.FT_MIN_PER_MPH))
        ecc = math.sqrt(lwr * lwr - 1.0) / lwr
    intensity = ros * hpa_btu / 60.0 * rt.KW_M_PER_BTU_FT_S
    return (ros * rt.M_PER_FT, direction, lwr, ecc, kind, hpa_btu * crown.BTU_FT2_TO_KJ_M2, intensity, midflame_kmh,
            surface_rate, surface_intensity, cfb)


@njit(cache=True)
def flame_length(intensity_kw_m, kind, method):
    """Flame length (m) of a cell's final fire: Byram for surface fire (and a Cruz passive one,
    which keeps the surface fire), Thomas for crown fire."""
    intensity = intensity_kw_m / rt.KW_M_PER_BTU_FT_S
    if kind <= crown.SURFACE or (kind == crown.PASSIVE and method == crown.CRUZ):
        return rt.flame_length(intensity) * rt.M_PER_FT
    return crown.thomas_flame_length(intensity) * rt.M_PER_FT


@njit(cache=True)
def derived_values(rate, length_to_width, eccentricity, intensity, kind, surface_intensity, method):
    """(flame length m, backing rate m/min, flanking rate m/min, surface flame length m) of a
    cell whose fire spreads (rate > 0), as `FireBehaviour` defines them."""
    backing = rate * (1.0 - eccentricity) / (1.0 + eccentricity)
    return (flame_length(intensity, kind, method), backing, (rate + backing) / (2.0 * length_to_width),
            flame_length(surface_intensity, crown.SURFACE, method))


@njit(cache=True, inline="always")
def fuelbed_of(code, fuelbeds, ready, table, moisture):
    """The fuel bed of fuel model `code` under `moisture`, computed once into `fuelbeds`
    (ready[code] marks it)."""
    if not ready[code]:
        fuelbeds[code] = rt.fuelbed(table[code], moisture[0], moisture[1], moisture[2], moisture[3], moisture[4])
        ready[code] = True
    return fuelbeds[code]


@njit(cache=True)
def behaviour_grid(fuel, slope, aspect, cc, ch, cbh, cr, cbd, nodata, table, moisture, wind, midflame_given,
                   waf_given, wind_10m_kmh, wind_from_deg, foliar_moisture, method):
    """Grid kernel behind `surface_fire`; returns the FireBehaviour fields as a tuple of arrays.
    `cr` is the crown ratio grid, or a (1, 1) NaN grid to derive it from the canopy heights."""
    rows, cols = fuel.shape
    fuelbeds = np.empty((table.shape[0], rt.FB_SIZE))
    ready = np.zeros(table.shape[0], np.bool_)
    fb10 = rt.fuelbed(table[crown.CROWN_FUEL_MODEL], moisture[0], moisture[1], moisture[2], moisture[3],
                      moisture[4])
    out = np.zeros((15, rows, cols))
    out[4] = 1.0  # length-to-width
    for i in range(rows):
        for j in range(cols):
            if nodata[i, j]:
                continue
            fb = fuelbed_of(fuel[i, j], fuelbeds, ready, table, moisture)
            ratio = cr[i % cr.shape[0], j % cr.shape[1]]  # a (1, 1) NaN grid: derive
            r, d, lw, e, k, h, inten, mid, sr, si, cfb = cell_fire(
                fb, fb10, wind, midflame_given, waf_given, wind_10m_kmh, wind_from_deg, slope[i, j], aspect[i, j],
                cc[i, j], ch[i, j], cbh[i, j], ratio, cbd[i, j], foliar_moisture, moisture[0], method)
            out[10, i, j] = mid
            if r <= 0.0:
                continue
            flame, backing, flanking, surface_flame = derived_values(r, lw, e, inten, k, si, method)
            out[0, i, j] = r
            out[1, i, j] = d
            out[2, i, j] = inten
            out[3, i, j] = flame
            out[4, i, j] = lw
            out[5, i, j] = e
            out[6, i, j] = k
            out[7, i, j] = h
            out[8, i, j] = backing
            out[9, i, j] = flanking
            out[11, i, j] = sr
            out[12, i, j] = si
            out[13, i, j] = surface_flame
            out[14, i, j] = cfb
    return out


class FireInputs:
    """The kernels' view of (landscape, weather, crown method, crown ratio), checked once."""

    def __init__(self, landscape, weather: Weather, crown_method: str = "scott_reinhardt", crown_ratio=None):
        self.method = crown.method_code(crown_method)
        self.wind, self.midflame_given, self.waf, self.wind_10m_kmh = wind_inputs(
            weather.wind_speed_kmh, weather.wind_height, weather.wind_adjustment_factor)
        self.wind_from = float(weather.wind_from_deg)
        self.foliar_moisture = float(weather.foliar_moisture)
        self.moisture = weather.moisture.as_array()
        self.crown_ratio = crown_ratio_grid(crown_ratio, landscape.shape)

    def weather_args(self) -> tuple:
        """(moisture, wind, midflame_given, waf, 10 m wind, wind from, foliar moisture, method)."""
        return (self.moisture, self.wind, self.midflame_given, self.waf, self.wind_10m_kmh, self.wind_from,
                self.foliar_moisture, self.method)


_DERIVED_RATIO = np.full((1, 1), np.nan)


def crown_ratio_grid(crown_ratio, shape: tuple[int, int]) -> np.ndarray:
    """A crown ratio (None: derive (CH - CBH) / CH per cell; a fraction; or a (rows, cols) grid
    of fractions) as the kernels take it; one clear error for anything else."""
    if crown_ratio is None:
        return _DERIVED_RATIO
    grid = np.broadcast_to(np.asarray(crown_ratio, np.float64), shape) if np.ndim(crown_ratio) == 0 else \
        np.asarray(crown_ratio, np.float64)
    if grid.shape != tuple(shape):
        raise ValueError(f"crown_ratio has shape {grid.shape}, the landscape {tuple(shape)}: give one fraction "
                         "or a grid of the landscape's shape")
    if not (np.isfinite(grid).all() and (grid >= 0.0).all() and (grid <= 1.0).all()):
        raise ValueError("crown_ratio must be fractions in [0, 1] ((canopy height - base height) / height); "
                         "None derives it from the canopy layers")
    return np.ascontiguousarray(grid)


def surface_fire(landscape, weather: Weather, crown_method: str = "scott_reinhardt",
                 crown_ratio=None) -> FireBehaviour:
    """Fire behaviour (surface Rothermel + crown fire by `crown_method`, ``"scott_reinhardt"``
    or ``"cruz"``, see ``crown``) of every cell of `landscape` under uniform `weather`.
    `crown_ratio` (fraction or grid) overrides (CH - CBH) / CH in the wind adjustment factor.
    Non-burnable and nodata cells get rate 0 and fire type 0."""
    inputs = FireInputs(landscape, weather, crown_method, crown_ratio)
    out = behaviour_grid(
        landscape.fuel_model, landscape.slope, landscape.aspect, landscape.canopy_cover, landscape.canopy_height,
        landscape.canopy_base_height, inputs.crown_ratio, landscape.canopy_bulk_density, landscape.nodata,
        FUEL_ARRAY, *inputs.weather_args())
    fields = list(out)
    fields[6] = out[6].astype(np.int8)
    return FireBehaviour(*fields)


def flat_aspect(aspect: float, slope: float) -> float:
    """LANDFIRE's aspect -1 means flat ground: accepted with slope 0 (the aspect is then
    immaterial, taken as 0, as the landscape loader stores it); any other aspect outside
    [0, 360) or -1 on a slope is an error."""
    if aspect == -1.0:
        if slope != 0.0:
            raise ValueError(f"aspect -1 (LANDFIRE's flat) with slope {slope}: a slope needs the direction it "
                             "faces, degrees clockwise from north in [0, 360)")
        return 0.0
    if not 0.0 <= aspect < 360.0:
        raise ValueError(f"aspect {aspect} must be degrees clockwise from north in [0, 360), or -1 for flat ground")
    return aspect


def _one_cell(fuel_code, weather, slope, aspect, canopy_cover, canopy_height, canopy_base_height, crown_ratio,
              canopy_bulk_density, crown_method):
    if not 0 <= fuel_code < FUEL_ARRAY.shape[0]:
        raise ValueError(f"fuel code {fuel_code} is not a fire behaviour fuel model (see FUEL_MODELS)")
    method = crown.method_code(crown_method)
    wind, midflame_given, waf, wind_10m = wind_inputs(weather.wind_speed_kmh, weather.wind_height,
                                                      weather.wind_adjustment_factor)
    m = weather.moisture.as_array()
    fb = rt.fuelbed(FUEL_ARRAY[fuel_code], m[0], m[1], m[2], m[3], m[4])
    fb10 = rt.fuelbed(FUEL_ARRAY[crown.CROWN_FUEL_MODEL], m[0], m[1], m[2], m[3], m[4])
    ratio = math.nan if crown_ratio is None else float(crown_ratio)
    if not (math.isnan(ratio) or 0.0 <= ratio <= 1.0):
        raise ValueError(f"crown_ratio {crown_ratio} must be a fraction in [0, 1], or None to derive it")
    args = (float(weather.wind_from_deg), float(slope), flat_aspect(float(aspect), float(slope)),
            float(canopy_cover), float(canopy_height), float(canopy_base_height), ratio, float(canopy_bulk_density),
            float(weather.foliar_moisture), m[0], method)
    return fb, fb10, wind, midflame_given, waf, wind_10m, args


def fire_behaviour_at(fuel_code: int, weather: Weather, slope: float = 0.0, aspect: float = 0.0,
                      canopy_cover: float = 0.0, canopy_height: float = 0.0, canopy_base_height: float = 0.0,
                      canopy_bulk_density: float = 0.0, crown_method: str = "scott_reinhardt",
                      crown_ratio: float | None = None) -> dict[str, float]:
    """`surface_fire` for a single cell; same units and field names, returned as a dict of floats.
    `aspect` -1 (LANDFIRE's flat) is accepted on level ground (see `flat_aspect`)."""
    fb, fb10, wind, midflame_given, waf, wind_10m, args = _one_cell(
        fuel_code, weather, slope, aspect, canopy_cover, canopy_height, canopy_base_height, crown_ratio,
        canopy_bulk_density, crown_method)
    r, d, lw, e, k, h, inten, mid, sr, si, cfb = cell_fire(fb, fb10, wind, midflame_given, waf, wind_10m, *args)
    flame = backing = flanking = surface_flame = 0.0
    if r > 0.0:
        flame, backing, flanking, surface_flame = derived_values(r, lw, e, inten, k, si, args[-1])
    else:  # as the grid stores a cell that does not burn
        d, lw, e = 0.0, 1.0, 0.0
    return {"rate": r, "direction": d, "intensity": inten, "flame_length": flame, "length_to_width": lw,
            "eccentricity": e, "fire_type": float(k), "heat_per_area": h, "backing_rate": backing,
            "flanking_rate": flanking, "midflame_wind": mid, "surface_rate": sr, "surface_intensity": si,
            "surface_flame_length": surface_flame, "crown_fraction_burned": cfb}


def crown_fire_indices(fuel_code: int, weather: Weather, slope: float = 0.0, aspect: float = 0.0,
                       canopy_cover: float = 0.0, canopy_height: float = 0.0, canopy_base_height: float = 0.0,
                       canopy_bulk_density: float = 0.0, crown_ratio: float | None = None) -> dict[str, float]:
    """Scott & Reinhardt's (2001) torching and crowning indices of one cell, as open winds in the
    units of `weather` (km/h at its `wind_height`, 10 m by default; the weather's own speed is not
    used, its direction, moistures and wind adjustment are):

    - torching_index: the wind at which the surface fire reaches Van Wagner's initiation intensity
      (passive crown fire begins); 0 if it does without wind; inf if no wind makes it (past
      Rothermel's wind limit the surface rate stops growing) or there is no canopy fuel.
    - crowning_index: the wind at which the active crown rate reaches 3 / CBD (O'active, fuel model
      10 on the cell's slope as FlamMap); inf without canopy fuel.
    """
    if weather.wind_height == "midflame":
        raise ValueError("crown fire indices are open winds: give the weather's wind_height as '10m' or '20ft'")
    fb, fb10, _, _, waf, _, args = _one_cell(
        fuel_code, weather, slope, aspect, canopy_cover, canopy_height, canopy_base_height, crown_ratio,
        canopy_bulk_density, "scott_reinhardt")
    wind_from, slope, aspect, cover, height, base, ratio, cbd = args[:8]
    if math.isnan(ratio):
        ratio = rt.crown_ratio(height, base)
    waf = waf or rt.wind_adjustment_factor(fb, cover, height, ratio)
    per_kmh = wind_inputs(1.0, weather.wind_height, None)[0]  # 20 ft ft/min per km/h of this weather
    if cover <= 0.0 or cbd <= 0.0:
        return {"torching_index": math.inf, "crowning_index": math.inf}
    i0 = crown.initiation_intensity(base, float(weather.foliar_moisture)) / rt.KW_M_PER_BTU_FT_S

    def initiates(kmh):
        ros = rt.head_fire(fb, waf * kmh * per_kmh, wind_from, slope, aspect)[0]
        return rt.fireline_intensity(ros, fb) >= i0

    low, high = 0.0, 1000.0
    if initiates(low):
        high = 0.0
    elif not initiates(high):
        high = math.inf
    while high - low > 1e-9 * high:
        mid = 0.5 * (low + high)
        low, high = (mid, high) if not initiates(mid) else (low, mid)
    return {"torching_index": high, "crowning_index": crown.crowning_index(fb10, cbd, slope) / per_kmh}


def rate_toward(behaviour: FireBehaviour, azimuth_deg: float) -> np.ndarray:
    """Spread rate (m/min) from an ignition point toward `azimuth_deg` in every cell: the
    elliptical rate R (1 - e) / (1 - e cos(azimuth - head))."""
    e = behaviour.eccentricity
    cos = np.cos(np.radians(azimuth_deg - behaviour.direction))
    return behaviour.rate * (1.0 - e) / (1.0 - e * cos)


def directional_intensity(behaviour: FireBehaviour) -> np.ndarray:
    """Fireline intensity (kW/m) of the fire moving north, east, south and west in every cell,
    shape (4, rows, cols) in that order: heat per unit area times the elliptical rate toward that
    direction / 60, as Behave computes intensity in a direction of interest."""
    return np.stack([behaviour.heat_per_area * rate_toward(behaviour, azimuth) / 60.0 for azimuth in CARDINALS])
