"""Procedural landscapes: fractal terrain, fuels clustered by terrain, roads, water, rock.

The generator exists so that training sees fire-prone fuels (the bundled Vermont landscape
is mostly slow TL6 litter). Elevation is spectral fractal noise (power spectrum ~ 1/f^beta);
slope and aspect come from its gradient. Fuel groups follow a moisture index that is wetter
on north-facing slopes and at high elevation: grass and grass-shrub on dry sites, shrub in
between, timber (understory and litter, with a canopy) on wet sites; a second noise field
breaks the groups into patches. Roads (NB1), water in the lowest hollows (NB8) and bare
rock on the highest ridges (NB9) add non-burnable structure. Same seed, same landscape.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .core import Landscape

Kind = Literal["mixed", "grass", "grass_shrub", "shrub", "timber"]

# Candidate Scott & Burgan codes per fuel group, ordered from light to heavy.
_GROUP_CODES: dict[str, tuple[int, ...]] = {
    "grass": (101, 102, 103, 104),
    "grass_shrub": (121, 122, 123),
    "shrub": (141, 142, 145, 147),
    "timber_understory": (161, 162, 165),
    "timber_litter": (181, 183, 186, 188),
}
# Share of each group per kind, listed from the driest group to the wettest.
_GROUP_ORDER = ("grass", "grass_shrub", "shrub", "timber_understory", "timber_litter")
_KIND_SHARES: dict[str, tuple[float, ...]] = {
    "mixed": (0.25, 0.2, 0.2, 0.15, 0.2),
    "grass": (0.8, 0.15, 0.05, 0.0, 0.0),
    "grass_shrub": (0.3, 0.4, 0.3, 0.0, 0.0),
    "shrub": (0.05, 0.2, 0.75, 0.0, 0.0),
    "timber": (0.0, 0.0, 0.1, 0.4, 0.5),
}
_CANOPY_GROUPS = ("timber_understory", "timber_litter")


def _fractal(rng: np.random.Generator, shape: tuple[int, int], beta: float) -> np.ndarray:
    """Zero-mean, unit-variance noise whose power spectrum falls as 1/f^beta."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    freq = np.hypot(fy, fx)
    freq[0, 0] = 1.0
    spectrum = (rng.normal(size=freq.shape) + 1j * rng.normal(size=freq.shape)) / freq ** (beta / 2)
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=shape)
    return (field - field.mean()) / field.std()


def _rank(field: np.ndarray) -> np.ndarray:
    """Values replaced by their quantile in [0, 1)."""
    order = field.ravel().argsort(kind="stable")
    ranks = np.empty(field.size)
    ranks[order] = np.arange(field.size) / field.size
    return ranks.reshape(field.shape)


def slope_aspect(elevation: np.ndarray, cell_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Slope (rise/run) and aspect (degrees clockwise from north of the downhill direction)
    of a north-up elevation grid (m) with square cells of `cell_size` m."""
    d_south, d_east = np.gradient(elevation, cell_size)  # rows grow southward
    d_north = -d_south
    aspect = np.degrees(np.arctan2(-d_east, -d_north)) % 360.0
    return np.hypot(d_east, d_north), aspect


def synthetic_landscape(
    shape: tuple[int, int] = (64, 64),
    seed: int = 0,
    *,
    kind: Kind = "mixed",
    cell_size: float = 30.0,
    relief_m: float = 300.0,
    roughness: float = 3.0,
    road_count: int = 1,
    water_fraction: float = 0.01,
    rock_fraction: float = 0.01,
) -> Landscape:
    """A deterministic synthetic landscape.

    Args:
        shape: (rows, cols).
        seed: same seed, same landscape.
        kind: fuel mix: ``mixed`` (all groups), ``grass``, ``grass_shrub``, ``shrub``, ``timber``.
        cell_size: m.
        relief_m: elevation range, m (the terrain spans about this from valley to ridge).
        roughness: spectral exponent beta of the terrain; higher = smoother.
        road_count: straight non-burnable roads (NB1), 1 cell wide, 4-connected.
        water_fraction: share of cells, the lowest, that are water (NB8).
        rock_fraction: share of cells, the highest, that are bare rock (NB9).
    """
    if kind not in _KIND_SHARES:
        raise ValueError(f"synthetic_landscape: unknown kind {kind!r}; choose one of {sorted(_KIND_SHARES)}")
    rng = np.random.default_rng(seed)
    rows, cols = shape
    elevation = 500.0 + relief_m * _rank(_fractal(rng, shape, roughness))
    slope, aspect = slope_aspect(elevation, cell_size)

    # Wetness: north-facing and high sites are wetter; patch noise mixes the groups.
    northness = np.cos(np.radians(aspect)) * np.minimum(slope / 0.3, 1.0)
    wetness = _rank(0.6 * _rank(elevation) + 0.4 * (northness + 1) / 2 + 0.5 * _rank(_fractal(rng, shape, 2.0)))
    shares = np.asarray(_KIND_SHARES[kind])
    group_index = np.searchsorted(np.cumsum(shares[:-1]) / shares.sum(), wetness, side="right")
    variant = _rank(_fractal(rng, shape, 2.5))
    fuel = np.zeros(shape, np.int16)
    for g, name in enumerate(_GROUP_ORDER):
        codes = np.asarray(_GROUP_CODES[name], np.int16)
        pick = np.minimum((variant * len(codes)).astype(int), len(codes) - 1)
        fuel = np.where(group_index == g, codes[pick], fuel)

    has_canopy = np.isin(group_index, [_GROUP_ORDER.index(g) for g in _CANOPY_GROUPS])
    vigour = _rank(_fractal(rng, shape, 2.0))
    canopy_cover = np.where(has_canopy, 0.35 + 0.45 * vigour, 0.0)
    canopy_height = np.where(has_canopy, 10.0 + 15.0 * vigour, 0.0)
    canopy_base_height = np.where(has_canopy, 0.8 + 4.0 * (1 - vigour) * rng.uniform(0.5, 1.0, shape), 0.0)
    canopy_bulk_density = np.where(has_canopy, 0.06 + 0.16 * vigour, 0.0)

    rank_elev = _rank(elevation)
    fuel = np.where(rank_elev < water_fraction, np.int16(98), fuel)
    fuel = np.where(rank_elev >= 1.0 - rock_fraction, np.int16(99), fuel)
    for _ in range(road_count):
        if rng.random() < 0.5:
            fuel[rng.integers(rows), :] = 91
        else:
            fuel[:, rng.integers(cols)] = 91
    nonburnable = (fuel >= 91) & (fuel <= 99)
    canopy = [np.where(nonburnable, 0.0, layer) for layer in
              (canopy_cover, canopy_height, canopy_base_height, canopy_bulk_density)]
    return Landscape(
        fuel_model=fuel,
        slope=slope,
        aspect=aspect,
        elevation=elevation,
        canopy_cover=canopy[0],
        canopy_height=canopy[1],
        canopy_base_height=canopy[2],
        canopy_bulk_density=canopy[3],
        cell_size=cell_size,
        metadata={"source": f"synthetic_landscape(shape={shape}, seed={seed}, kind={kind!r})"},
    )
