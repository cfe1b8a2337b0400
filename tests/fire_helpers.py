"""Landscapes built directly for the fire tests."""

import numpy as np

from firebreak.fire import rothermel as rt
from firebreak.landscape import Landscape

GRASS_SHRUB = [101, 102, 103, 104, 105, 106, 107, 108, 109, 121, 122, 123, 124,
               141, 142, 143, 144, 145, 146, 147, 148, 149]


def homogeneous(rows, cols=None, code=102, slope=0.0, aspect=0.0, cell_size=30.0):
    cols = cols or rows
    z = np.zeros((rows, cols), np.float32)
    return Landscape(fuel_model=np.full((rows, cols), code, np.int16), slope=z + slope, aspect=z + aspect,
                     elevation=z, canopy_cover=z, canopy_height=z, canopy_base_height=z, canopy_bulk_density=z,
                     cell_size=cell_size)


def mixed_grass_shrub(seed, n=64, block=8):
    """Patches of grass, grass-shrub and shrub models on a uniform random slope."""
    rng = np.random.default_rng(seed)
    codes = rng.choice(GRASS_SHRUB, size=(n // block, n // block))
    fuel = np.kron(codes, np.ones((block, block), int)).astype(np.int16)
    z = np.zeros((n, n), np.float32)
    return Landscape(fuel_model=fuel, slope=z + rng.uniform(0, 0.3), aspect=z + rng.uniform(0, 359), elevation=z,
                     canopy_cover=z, canopy_height=z, canopy_base_height=z, canopy_bulk_density=z)


def component(passable, start):
    """4-connected component of `passable` cells containing `start`."""
    rows, cols = passable.shape
    seen = np.zeros_like(passable)
    stack = [tuple(start)]
    seen[start] = True
    while stack:
        i, j = stack.pop()
        for a, b in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)):
            if 0 <= a < rows and 0 <= b < cols and passable[a, b] and not seen[a, b]:
                seen[a, b] = True
                stack.append((a, b))
    return seen


def behave_foliar_moisture(fmc):
    """The foliar moisture that gives our Van Wagner intensity the value Behave uses.

    Behave converts the critical intensity I0 from kW/m with 3.46414 kW/m per Btu/ft/s; the
    exact factor (ours) is 3.46146, so Behave's I0 is 0.08 % lower. A passive fire's crown
    fraction burned depends on I0 through R'init = 60 I0 / H, steeply near the initiation
    threshold, so the comparisons feed our model the foliar moisture whose I0 equals Behave's
    (FMC enters nothing else): (460 + 25.9 FMC')^1.5 = (460 + 25.9 FMC)^1.5 x 3.46146 / 3.46414.
    """
    scale = (rt.KW_M_PER_BTU_FT_S / 3.46414) ** (2.0 / 3.0)
    return ((460.0 + 2590.0 * fmc) * scale - 460.0) / 2590.0
