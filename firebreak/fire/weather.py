"""Fuel moisture and weather: the inputs a fire behaviour calculation needs besides the landscape."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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

    wind_speed_kmh: 10 m open wind, km/h (the 20 ft wind is this / 1.15).
    wind_from_deg: direction the wind blows FROM, degrees clockwise from north
        (270 = a west wind, pushing fire toward increasing column).
    moisture: surface fuel moistures.
    foliar_moisture: canopy foliar moisture content, fraction (1.0 = 100 %).
    """

    wind_speed_kmh: float
    wind_from_deg: float
    moisture: Moisture
    foliar_moisture: float = 1.0
