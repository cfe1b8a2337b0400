"""Fire scenarios (ignitions + weather + duration) and a seeded fire-season sampler."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .weather import Moisture, Weather, check_wind


@dataclass(frozen=True, eq=False)
class Scenario:
    """One fire: where it starts, the weather it burns under, and for how long.

    ignitions: (n, 2) (row, col) positions in cell units, lit at time 0. Integers are cell
        centres; fractions are points inside a cell ((2.3, 4.0) lies 0.3 cells south of the
        centre of cell (2, 4); a cell spans +-0.5 around its centre). Stored as the (n, 2) int
        cells that contain them; `ignition_points` keeps the positions.
    wind_speed_kmh: wind speed, km/h, at `wind_height` (default the 10 m open wind).
    wind_from_deg: direction the wind blows FROM, degrees clockwise from north.
    moisture: fuel moistures (fractions). foliar_moisture: fraction (1.0 = 100 %).
    duration_min: burn period, minutes.
    wind_height, wind_adjustment_factor: as `Weather`.
    ignite_whole_cell: light the whole cells containing the ignitions (the fire starts on their
        edges, as a burning cell or polygon ignition) instead of points (default).
    """

    ignitions: np.ndarray
    wind_speed_kmh: float
    wind_from_deg: float
    moisture: Moisture
    foliar_moisture: float = 1.0
    duration_min: float = 120.0
    wind_height: str = "10m"
    wind_adjustment_factor: float | None = None
    ignite_whole_cell: bool = False
    #: (n, 2) float64 ignition positions in cell units (see `ignitions`).
    ignition_points: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        points = np.array(self.ignitions, dtype=np.float64).reshape(-1, 2)
        if not np.isfinite(points).all():
            raise ValueError(f"scenario ignitions {points.tolist()} must be finite (row, col) positions")
        cells = np.floor(points + 0.5).astype(np.int64)
        for array in (points, cells):
            array.setflags(write=False)
        object.__setattr__(self, "ignitions", cells)
        object.__setattr__(self, "ignition_points", points)
        if not self.duration_min >= 0.0:
            raise ValueError(f"scenario duration_min {self.duration_min!r} must be a number of minutes >= 0")
        check_wind(self.wind_speed_kmh, self.wind_height, self.wind_adjustment_factor)

    @property
    def weather(self) -> Weather:
        return Weather(self.wind_speed_kmh, self.wind_from_deg, self.moisture, self.foliar_moisture,
                       self.wind_height, self.wind_adjustment_factor)


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
