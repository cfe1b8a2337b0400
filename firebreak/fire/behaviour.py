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

BTU_FT2_TO_KJ_M2 = 1.05505585262 / (rt.M_PER_FT * rt.M_PER_FT)

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
def cell_behaviour(fb, wind_20ft_ft_min, wind_10m_kmh, wind_from_deg, slope, aspect_deg, canopy_cover,
                   canopy_height, canopy_base_height, canopy_bulk_density, foliar_moisture, dead_1h):
    """Fire behaviour of one cell given its fuel bed vector `fb` (``rothermel.fuelbed``).

    Returns (rate m/min, direction deg, intensity kW/m, flame length m, length-to-width,
    eccentricity, fire type, heat per unit area kJ/m2).
    """
    waf = rt.wind_adjustment_factor(fb[rt.FB_DEPTH], canopy_cover, canopy_height, canopy_base_height)
    ros, direction, ews, lwr, ecc = rt.head_fire(fb, waf * wind_20ft_ft_min, wind_from_deg, slope, aspect_deg)
    intensity_btu = rt.fireline_intensity(ros, fb)
    rate = ros * rt.M_PER_FT
    intensity = intensity_btu * rt.KW_M_PER_BTU_FT_S
    flame = rt.flame_length(intensity_btu) * rt.M_PER_FT
    hpa = fb[rt.FB_IR] * fb[rt.FB_RES_TIME] * BTU_FT2_TO_KJ_M2
    crown_rate = crown.active_spread_rate(wind_10m_kmh, canopy_bulk_density, dead_1h)
    kind = crown.crown_fire_type(rate, intensity, canopy_cover, canopy_base_height, canopy_bulk_density,
                                 foliar_moisture, crown_rate)
    if kind == crown.ACTIVE:
        rate = max(rate, crown_rate)
        canopy_load = canopy_bulk_density * max(canopy_height - canopy_base_height, 0.0)
        hpa += canopy_load * crown.CANOPY_HEAT_CONTENT
        intensity = hpa * rate / 60.0
        flame = 0.2 * (intensity / rt.KW_M_PER_BTU_FT_S) ** (2.0 / 3.0) * rt.M_PER_FT
        lwr = max(lwr, crown.crown_length_to_width(wind_20ft_ft_min / rt.FT_MIN_PER_MPH))
        ecc = math.sqrt(lwr * lwr - 1.0) / lwr
    return rate, direction, intensity, flame, lwr, ecc, kind, hpa


@njit(cache=True)
def _fuelbeds(codes_present, table, moisture):
    fbs = np.zeros((table.shape[0], rt.FB_SIZE))
    for code in codes_present:
        fbs[code] = rt.fuelbed(table[code], moisture[0], moisture[1], moisture[2], moisture[3], moisture[4])
    return fbs


@njit(cache=True)
def behaviour_grid(fuel, slope, aspect, cc, ch, cbh, cbd, nodata, table, moisture, wind_10m_kmh, wind_from_deg,
                   foliar_moisture):
    """Grid kernel behind `surface_fire`; returns the FireBehaviour fields as a tuple of arrays."""
    rows, cols = fuel.shape
    fbs = _fuelbeds(np.unique(fuel), table, moisture)
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
                fbs[fuel[i, j]], wind_20ft, wind_10m_kmh, wind_from_deg, slope[i, j], aspect[i, j], cc[i, j],
                ch[i, j], cbh[i, j], cbd[i, j], foliar_moisture, moisture[0])
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


def surface_fire(landscape, weather: Weather) -> FireBehaviour:
    """Fire behaviour (surface Rothermel + crown classification) of every cell of `landscape`
    under uniform `weather`. Non-burnable and nodata cells get rate 0 and fire type 0."""
    fuel = np.clip(landscape.fuel_model, 0, FUEL_ARRAY.shape[0] - 1).astype(np.int64)
    out = behaviour_grid(
        fuel, landscape.slope, landscape.aspect, landscape.canopy_cover, landscape.canopy_height,
        landscape.canopy_base_height, landscape.canopy_bulk_density, landscape.nodata, FUEL_ARRAY,
        weather.moisture.as_array(), float(weather.wind_speed_kmh), float(weather.wind_from_deg),
        float(weather.foliar_moisture))
    return FireBehaviour(*out)


def fire_behaviour_at(fuel_code: int, weather: Weather, slope: float = 0.0, aspect: float = 0.0,
                      canopy_cover: float = 0.0, canopy_height: float = 0.0, canopy_base_height: float = 0.0,
                      canopy_bulk_density: float = 0.0) -> dict[str, float]:
    """`surface_fire` for a single cell; same units, returned as a dict of floats."""
    m = weather.moisture.as_array()
    fb = rt.fuelbed(FUEL_ARRAY[fuel_code], m[0], m[1], m[2], m[3], m[4])
    wind_20ft = weather.wind_speed_kmh * rt.TEN_METER_TO_TWENTY_FOOT / rt.KMH_PER_MPH * rt.FT_MIN_PER_MPH
    values = cell_behaviour(fb, wind_20ft, float(weather.wind_speed_kmh), float(weather.wind_from_deg), slope,
                            aspect, canopy_cover, canopy_height, canopy_base_height, canopy_bulk_density,
                            float(weather.foliar_moisture), m[0])
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
    """Fireline intensity (kW/m) of a front moving north, east, south and west in every cell,
    shape (4, rows, cols) in that order: heat per unit area times the rate normal to the part of
    the elliptical front facing that way (Catchpole et al. 1982, as Behave)."""
    rate, e, lwr, head = behaviour.rate, behaviour.eccentricity, behaviour.length_to_width, behaviour.direction
    back = rate * (1.0 - e) / (1.0 + e)
    f = (rate + back) / 2.0
    g = rate - f
    h = f / lwr
    out = np.empty((4,) + rate.shape)
    for k, azimuth in enumerate(CARDINALS):
        t = np.radians(azimuth - head)
        normal_rate = g * np.cos(t) + np.sqrt((f * np.cos(t)) ** 2 + (h * np.sin(t)) ** 2)
        out[k] = behaviour.heat_per_area * normal_rate / 60.0
    return out
