"""Fuel-model codes a landscape may hold (LANDFIRE F40 / F13 encodings).

Only the code sets live here, so that the landscape layer can validate rasters without
depending on the fire model; the fire model's tables (``firebreak.fire.FUEL_MODELS``) are
keyed by exactly these codes.

Sources: Scott & Burgan (2005), RMRS-GTR-153 (codes 101-204 and the non-burnable
codes 91-99); Anderson (1982), INT-GTR-122 (models 1-13).
"""

from __future__ import annotations

import numpy as np

#: Non-burnable codes: NB1 urban, NB2 snow/ice, NB3 agriculture, NB8 water, NB9 bare ground.
NONBURNABLE_CODES: frozenset[int] = frozenset({91, 92, 93, 98, 99})

#: Anderson (1982) 13 fire behaviour fuel models.
ANDERSON13_CODES: frozenset[int] = frozenset(range(1, 14))

#: Scott & Burgan (2005) 40 fire behaviour fuel models.
SCOTT_BURGAN40_CODES: frozenset[int] = frozenset(
    [101, 102, 103, 104, 105, 106, 107, 108, 109]  # GR1-GR9 grass
    + [121, 122, 123, 124]  # GS1-GS4 grass-shrub
    + [141, 142, 143, 144, 145, 146, 147, 148, 149]  # SH1-SH9 shrub
    + [161, 162, 163, 164, 165]  # TU1-TU5 timber-understory
    + [181, 182, 183, 184, 185, 186, 187, 188, 189]  # TL1-TL9 timber litter
    + [201, 202, 203, 204]  # SB1-SB4 slash-blowdown
)

BURNABLE_CODES: frozenset[int] = ANDERSON13_CODES | SCOTT_BURGAN40_CODES
KNOWN_CODES: frozenset[int] = BURNABLE_CODES | NONBURNABLE_CODES

#: Code written into cells that hold a fuel break or nodata: NB9, bare ground.
BARE_GROUND = 99


def is_burnable(fuel_model: np.ndarray) -> np.ndarray:
    """Boolean mask of cells whose fuel code is a burnable model."""
    return np.isin(fuel_model, np.fromiter(BURNABLE_CODES, dtype=np.int16))
