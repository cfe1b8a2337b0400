"""Fire scenarios (ignitions + weather + duration) and a seeded fire-season sampler."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .weather import Moisture, Weather


@dataclass(frozen=True, eq=False)
class Scenario:
    """One fire: where it starts, the weather it burns under, and for how long.

    ignitions: (n, 2) int array of (row, col) cells lit at time 0.
    wind_speed_kmh: 10 m open wind, km/h. wind_from_deg: direction the wind blows FROM,
    degrees clockwise from north. moisture: fuel moistures (fractions).
    foliar_moisture: fraction (1.0 = 100 %). duration_min: burn period, minutes.
    """

    ignitions: np.ndarray
    wind_speed_kmh: float
    wind_from_deg: float
    moisture: Moisture
    foliar_moisture: float = 1.0
    duration_min: float = 120.0

    def __post_init__(self) -> None:
        cells = np.array(self.ignitions, dtype=np.int64).reshape(-1, 2)
        cells.setflags(write=False)
        object.__setattr__(self, "ignitions", cells)

    @property
    def weather(self) -> Weather:
        return Weather(self.wind_speed_kmh, self.wind_from_deg, self.moisture, self.foliar_moisture)


@dataclass(frozen=True)
class FireSeason:
    """Distributions a `ScenarioSampler` draws from (uniform on [low, high] unless stated).

    The defaults are dry, windy fire-season afternoons: chosen so that one untreated fire on a
    64 x 64 tile (30 m cells) of grass / grass-shrub / shrub fuel burns on average 10-40 % of it
    (tests/test_fire_scenario.py checks this), so that breaks have something to stop.
    wind_from_deg is normal(mean, sd) modulo 360: a prevailing wind with day-to-day scatter.
    Moistures of 10 h and 100 h fuel are the 1 h moisture plus the given offsets.
    """

    wind_speed_kmh: tuple[float, float] = (10.0, 30.0)
    wind_from_mean_deg: float = 270.0
    wind_from_sd_deg: float = 45.0
    dead_1h: tuple[float, float] = (0.03, 0.08)
    dead_10h_offset: float = 0.01
    dead_100h_offset: float = 0.02
    live_herb: tuple[float, float] = (0.30, 0.90)
    live_woody: tuple[float, float] = (0.60, 1.20)
    foliar_moisture: tuple[float, float] = (0.85, 1.20)
    duration_min: tuple[float, float] = (60.0, 180.0)
    n_ignitions: int = 1


@dataclass
class ScenarioSampler:
    """Draws scenarios from a `FireSeason`; the same seed gives the same sequence of scenarios."""

    seed: int
    season: FireSeason = field(default_factory=FireSeason)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def sample(self, landscape, n: int) -> list[Scenario]:
        """`n` scenarios whose ignitions lie on burnable, non-nodata cells of `landscape`."""
        candidates = np.flatnonzero(landscape.burnable & ~landscape.nodata)
        if candidates.size == 0:
            raise ValueError("landscape has no burnable cell to ignite")
        cols = landscape.shape[1]
        s, rng = self.season, self._rng
        out = []
        for _ in range(n):
            flat = rng.choice(candidates, size=s.n_ignitions, replace=False)
            dead_1h = rng.uniform(*s.dead_1h)
            moisture = Moisture(dead_1h, dead_1h + s.dead_10h_offset, dead_1h + s.dead_100h_offset,
                                rng.uniform(*s.live_herb), rng.uniform(*s.live_woody))
            out.append(Scenario(
                ignitions=np.stack([flat // cols, flat % cols], axis=1),
                wind_speed_kmh=float(rng.uniform(*s.wind_speed_kmh)),
                wind_from_deg=float(rng.normal(s.wind_from_mean_deg, s.wind_from_sd_deg) % 360.0),
                moisture=moisture,
                foliar_moisture=float(rng.uniform(*s.foliar_moisture)),
                duration_min=float(rng.uniform(*s.duration_min)),
            ))
        return out
