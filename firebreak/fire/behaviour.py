"""Fire behaviour of every cell of a landscape under uniform weather (surface + crown).

`surface_fire(landscape, weather)` is the grid entry point; `cell_behaviour` is the same
calculation for one cell (Numba, callable from other kernels) and `fire_behaviour_at` its
Python form. Spread rates are the Behave rates used as horizontal rates (see spread.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from . import crown, rothermel as rt
from .fuel_models import FUEL_ARRAY
from .weather import Weather

# The four directions of `directional_intensity`, degrees clockwise from north.
CARDINALS = (0.0, 90.0, 180.0, 270.0)


@dataclass(frozen=True)
class FireBehaviour:
    """Per-cell fire behaviour grids (all (rows, cols)).

    rate: head spread rate, m/min (0 where nothing burns).
    direction: direction the head moves toward, degrees clockwise from north.
    intensity: head fireline intensity, kW/m.
    flame_length: m (Byram for surface fire, Thomas for active crown fire).
    length_to_width: ellipse length-to-width ratio (1 = circle).
    eccentricity: ellipse eccentricity, sqrt(LW^2 - 1) / LW.
    fire_type: 0 unburned, 1 surface, 2 passive crown, 3 active crown.
    heat_per_area: heat released per unit area behind the front, kJ/m2 (intensity = this * rate / 60).
    """

    rate: np.ndarray
    direction: np.ndarray
    intensity: np.ndarray
    flame_length: np.ndarray
    length_to_width: np.ndarray
    eccentricity: np.ndarray
    fire_type: np.ndarray
    heat_per_area: np.ndarray


@njit(cache=True)
def cell_behaviour(fb, fb10, wind_20ft_ft_min, wind_10m_kmh, wind_from_deg, slope, aspect_deg, canopy_cover,
                   canopy_height, canopy_base_height, canopy_bulk_density, foliar_moisture, dead_1h, method):
    """Fire behaviour of one cell given its fuel bed vector `fb` (``rothermel.fuelbed``) and the
    crown fuel's `fb10` (fuel model 10 under the same moistures), by crown `method` (``crown``).

    Returns (rate m/min, direction deg, intensity kW/m, flame length m, length-to-width,
    eccentricity, fire type, heat per unit area kJ/m2).
    """
    waf = rt.wind_adjustment_factor(fb[rt.FB_DEPTH], canopy_cover, canopy_height, canopy_base_height)
    ros, direction, ews, lwr, ecc = rt.head_fire(fb, waf * wind_20ft_ft_min, wind_from_deg, slope, aspect_deg)
    if ros <= 0.0:
        return 0.0, direction, 0.0, 0.0, lwr, ecc, crown.UNBURNED, 0.0
    hpa_btu = fb[rt.FB_IR] * fb[rt.FB_RES_TIME]
    kind = crown.SURFACE
    if canopy_cover > 0.0 and canopy_bulk_density > 0.0:
        if method == crown.SCOTT_REINHARDT:
            kind, ros_final, hpa_final, _, crown_direction, _ = crown.scott_reinhardt(
                fb, fb10, ros, hpa_btu, waf, wind_20ft_ft_min, wind_from_deg, slope, aspect_deg, slope,
                canopy_height, canopy_base_height, canopy_bulk_density, foliar_moisture)
            if kind != crown.SURFACE:
                ros = ros_final
                hpa_btu = hpa_final
            if kind == crown.ACTIVE:
                direction = crown_direction
        else:
            kind, crown_rate = crown.cruz(ros * rt.M_PER_FT, rt.fireline_intensity(ros, fb) * rt.KW_M_PER_BTU_FT_S,
                                          wind_10m_kmh, canopy_base_height, canopy_bulk_density, foliar_moisture,
                                          dead_1h)
            if kind == crown.ACTIVE:
                ros = max(ros, crown_rate / rt.M_PER_FT)
                canopy_load = canopy_bulk_density * max(canopy_height - canopy_base_height, 0.0)
                hpa_btu += canopy_load * crown.CANOPY_HEAT_CRUZ_KJ_KG / crown.BTU_FT2_TO_KJ_M2
    rate = ros * rt.M_PER_FT
    intensity_btu = ros * hpa_btu / 60.0
    if kind == crown.SURFACE or (kind == crown.PASSIVE and method == crown.CRUZ):
        flame = rt.flame_length(intensity_btu) * rt.M_PER_FT
    else:
        flame = crown.thomas_flame_length(intensity_btu) * rt.M_PER_FT
    if kind == crown.ACTIVE:
        lwr = max(lwr, crown.crown_length_to_width(wind_20ft_ft_min / rt.FT_MIN_PER_MPH))
        ecc = math.sqrt(lwr * lwr - 1.0) / lwr
    return (rate, direction, intensity_btu * rt.KW_M_PER_BTU_FT_S, flame, lwr, ecc, kind,
            hpa_btu * crown.BTU_FT2_TO_KJ_M2)


@njit(cache=True)
def _fuelbeds(codes_present, table, moisture):
    fbs = np.zeros((table.shape[0], rt.FB_SIZE))
    for code in codes_present:
        fbs[code] = rt.fuelbed(table[code], moisture[0], moisture[1], moisture[2], moisture[3], moisture[4])
    return fbs


@njit(cache=True)
def crown_fuelbed(table, moisture):
    """Fuel bed of the crown fuel (fuel model 10) under the surface fuel moistures."""
    return rt.fuelbed(table[crown.CROWN_FUEL_MODEL], moisture[0], moisture[1], moisture[2], moisture[3], moisture[4])


@njit(cache=True)
def behaviour_grid(fuel, slope, aspect, cc, ch, cbh, cbd, nodata, table, moisture, wind_10m_kmh, wind_from_deg,
                   foliar_moisture, method):
    """Grid kernel behind `surface_fire`; returns the FireBehaviour fields as a tuple of arrays."""
    rows, cols = fuel.shape
    fbs = _fuelbeds(np.unique(fuel), table, moisture)
    fb10 = crown_fuelbed(table, moisture)
    wind_20ft = wind_10m_kmh * rt.TEN_METER_TO_TWENTY_FOOT / rt.KMH_PER_MPH * rt.FT_MIN_PER_MPH
    rate = np.zeros((rows, cols))
    direction = np.zeros((rows, cols))
    intensity = np.zeros((rows, cols))
    flame = np.zeros((rows, cols))
    lwr = np.ones((rows, cols))
    ecc = np.zeros((rows, cols))
    kind = np.zeros((rows, cols), np.int8)
    hpa = np.zeros((rows, cols))
    for i in range(rows):
        for j in range(cols):
            if nodata[i, j]:
                continue
            r, d, inten, fl, lw, e, k, h = cell_behaviour(
                fbs[fuel[i, j]], fb10, wind_20ft, wind_10m_kmh, wind_from_deg, slope[i, j], aspect[i, j], cc[i, j],
                ch[i, j], cbh[i, j], cbd[i, j], foliar_moisture, moisture[0], method)
            if r <= 0.0:
                continue
            rate[i, j] = r
            direction[i, j] = d
            intensity[i, j] = inten
            flame[i, j] = fl
            lwr[i, j] = lw
            ecc[i, j] = e
            kind[i, j] = k
            hpa[i, j] = h
    return rate, direction, intensity, flame, lwr, ecc, kind, hpa


def surface_fire(landscape, weather: Weather, crown_method: str = "scott_reinhardt") -> FireBehaviour:
    """Fire behaviour (surface Rothermel + crown fire by `crown_method`, see ``crown``) of every
    cell of `landscape` under uniform `weather`. Non-burnable and nodata cells get rate 0 and
    fire type 0."""
    method = crown.method_code(crown_method)
    fuel = np.clip(landscape.fuel_model, 0, FUEL_ARRAY.shape[0] - 1).astype(np.int64)
    out = behaviour_grid(
        fuel, landscape.slope, landscape.aspect, landscape.canopy_cover, landscape.canopy_height,
        landscape.canopy_base_height, landscape.canopy_bulk_density, landscape.nodata, FUEL_ARRAY,
        weather.moisture.as_array(), float(weather.wind_speed_kmh), float(weather.wind_from_deg),
        float(weather.foliar_moisture), method)
    return FireBehaviour(*out)


def fire_behaviour_at(fuel_code: int, weather: Weather, slope: float = 0.0, aspect: float = 0.0,
                      canopy_cover: float = 0.0, canopy_height: float = 0.0, canopy_base_height: float = 0.0,
                      canopy_bulk_density: float = 0.0, crown_method: str = "scott_reinhardt") -> dict[str, float]:
    """`surface_fire` for a single cell; same units, returned as a dict of floats."""
    method = crown.method_code(crown_method)
    m = weather.moisture.as_array()
    fb = rt.fuelbed(FUEL_ARRAY[fuel_code], m[0], m[1], m[2], m[3], m[4])
    wind_20ft = weather.wind_speed_kmh * rt.TEN_METER_TO_TWENTY_FOOT / rt.KMH_PER_MPH * rt.FT_MIN_PER_MPH
    values = cell_behaviour(fb, crown_fuelbed(FUEL_ARRAY, m), wind_20ft, float(weather.wind_speed_kmh),
                            float(weather.wind_from_deg), slope, aspect, canopy_cover, canopy_height,
                            canopy_base_height, canopy_bulk_density, float(weather.foliar_moisture), m[0], method)
    names = ("rate", "direction", "intensity", "flame_length", "length_to_width", "eccentricity", "fire_type",
             "heat_per_area")
    return dict(zip(names, (float(v) for v in values)))


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
