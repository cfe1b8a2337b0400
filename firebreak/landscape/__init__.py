"""Landscapes: named LANDFIRE-style raster layers, loading, validation, tiling, synthesis.

Public API: `Landscape`, `LandscapeError`, `load_landfire`, `load_tiles`, `load_npz`,
`save_npz`, `tile`, `synthetic_landscape`, `sample_landscape`, `sample_tiles`, `load_landscapes`,
`load_lcp` (FARSITE / FlamMap .lcp files); GIS outputs: `Grid`, `write_geotiff`, `read_geotiff`,
`load_breaks` and `apply_breaks` (a plan's breaks.tif read back).
CLI: ``python -m firebreak.landscape {info,tile,convert}``.
"""

from .breaks import apply_breaks, load_breaks
from .bundle import load_npz, save_npz
from .core import FLOAT_LAYERS, LAYERS, Landscape, LandscapeError
from .fuel_codes import BARE_GROUND, BURNABLE_CODES, KNOWN_CODES, NONBURNABLE_CODES, is_burnable
from .geotiff import LANDFIRE_CREDIT, load_landfire, load_tiles
from .grid import Grid, read_geotiff, write_geotiff
from .lcp import load_lcp
from .sources import load_landscapes, sample_landscape, sample_tiles
from .synthetic import synthetic_landscape
from .tiling import tile

__all__ = [
    "BARE_GROUND", "BURNABLE_CODES", "FLOAT_LAYERS", "Grid", "KNOWN_CODES", "LANDFIRE_CREDIT", "LAYERS",
    "Landscape", "LandscapeError", "NONBURNABLE_CODES", "apply_breaks", "is_burnable", "load_breaks", "load_landfire",
    "load_landscapes", "load_lcp", "load_npz", "load_tiles", "read_geotiff", "sample_landscape", "sample_tiles",
    "save_npz", "synthetic_landscape", "tile", "write_geotiff",
]
