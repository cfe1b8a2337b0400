"""Fuel moisture and weather: the inputs a fire behaviour calculation needs besides the landscape."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .rothermel import FT_MIN_PER_MPH, KMH_PER_MPH, TEN_METER_TO_TWENTY_FOOT

#: The heights a wind speed may be given at (Behave's wind input modes).
WIND_HEIGHTS = ("10m", "20ft", "midflame")


@dataclass(frozen=True)
class Moisture:
    """Fuel moistures as fractions of oven-dry weight (0.06 = 6 %)."""

    dead_1h: float
    dead_10h: float
    dead_100h: float
    live_herb: float
    live_woody: float

    def as_array(self) -> np.ndarray:
        """(1h, 10h, 100h, herb, woody) as float64, the order the kernels take."""
        return np.array([self.dead_1h, self.dead_10h, self.dead_100h, self.live_herb, self.live_woody], np.float64)


@dataclass(frozen=True)
class Weather:
    """Uniform weather over a landscape.

    wind_speed_kmh: wind speed, km/h, measured at `wind_height`.
    wind_from_deg: direction the wind blows FROM, degrees clockwise from north
        (270 = a west wind, pushing fire toward increasing column).
    moisture: surface fuel moistures.
    foliar_moisture: canopy foliar moisture content, fraction (1.0 = 100 %).
    wind_height: ``"10m"`` (open wind 10 m above the vegetation, the default; the 20 ft wind is
        this / 1.15 as Behave), ``"20ft"`` (20 ft open wind) or ``"midflame"`` (the wind the
        surface fire feels, used as is in every cell).
    wind_adjustment_factor: midflame / 20 ft wind, (0, 1]; None (default) derives it in every
        cell from the fuel bed depth and canopy (Andrews 2012). Only with a 10 m or 20 ft wind.
        With a midflame wind, the 20 ft wind crown fire needs is midflame / this factor (the
        given one or each cell's).
    """

    wind_speed_kmh: float
    wind_from_deg: float
    moisture: Moisture
    foliar_moisture: float = 1.0
    wind_height: str = "10m"
    wind_adjustment_factor: float | None = None

    def __post_init__(self) -> None:
        check_wind(self.wind_speed_kmh, self.wind_height, self.wind_adjustment_factor)


def check_wind(speed_kmh: float, height: str, adjustment: float | None) -> None:
    """One clear error for a wind input a fire calculation cannot use."""
    if height not in WIND_HEIGHTS:
        raise ValueError(f"wind_height {height!r} is not one of {WIND_HEIGHTS}: give the height the wind speed "
                         "was measured at ('10m' open wind, '20ft' open wind, or 'midflame')")
    if not (math.isfinite(speed_kmh) and speed_kmh >= 0.0):
        raise ValueError(f"wind_speed_kmh {speed_kmh!r} must be a finite speed >= 0 km/h")
    if adjustment is None:
        return
    if height == "midflame":
        raise ValueError("wind_adjustment_factor applies to a 10 m or 20 ft wind; a midflame wind is already "
                         "adjusted: drop the factor or give the 20 ft wind with wind_height='20ft'")
    if not (0.0 < adjustment <= 1.0):
        raise ValueError(f"wind_adjustment_factor {adjustment!r} must lie in (0, 1] (midflame / 20 ft wind)")


def wind_inputs(speed_kmh: float, height: str, adjustment: float | None) -> tuple[float, bool, float, float]:
    """The kernels' wind terms: (speed ft/min at 20 ft, or at midflame when the second item is
    True; whether it is midflame; the given adjustment factor or 0 to derive it per cell; the 10 m
    wind km/h, NaN when it must be derived per cell from a midflame wind)."""
    speed = float(speed_kmh)
    waf = 0.0 if adjustment is None else float(adjustment)
    if height == "10m":
        return speed * TEN_METER_TO_TWENTY_FOOT / KMH_PER_MPH * FT_MIN_PER_MPH, False, waf, speed
    if height == "20ft":
        return speed / KMH_PER_MPH * FT_MIN_PER_MPH, False, waf, speed * 1.15
    return speed / KMH_PER_MPH * FT_MIN_PER_MPH, True, waf, math.nan
