"""Landscapes: named LANDFIRE-style raster layers, loading, validation, tiling, synthesis.

Public API: `Landscape`, `LandscapeError`, `load_landfire`, `load_tiles`, `load_npz`,
`save_npz`, `tile`, `synthetic_landscape`, `sample_landscape`, `sample_tiles`, `load_landscapes`.
CLI: ``python -m firebreak.landscape {info,tile,convert}``.
"""

from .bundle import load_npz, save_npz
from .core import FLOAT_LAYERS, LAYERS, Landscape, LandscapeError
from .fuel_codes import BARE_GROUND, BURNABLE_CODES, KNOWN_CODES, NONBURNABLE_CODES, is_burnable
from .geotiff import LANDFIRE_CREDIT, load_landfire, load_tiles
from .sources import load_landscapes, sample_landscape, sample_tiles
from .synthetic import synthetic_landscape
from .tiling import tile

__all__ = [
    "BARE_GROUND", "BURNABLE_CODES", "FLOAT_LAYERS", "KNOWN_CODES", "LANDFIRE_CREDIT", "LAYERS",
    "Landscape", "LandscapeError", "NONBURNABLE_CODES", "is_burnable", "load_landfire",
    "load_landscapes", "load_npz", "load_tiles", "sample_landscape", "sample_tiles", "save_npz",
    "synthetic_landscape", "tile",
]
