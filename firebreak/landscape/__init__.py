"""Landscapes: named LANDFIRE-style raster layers, loading, validation, tiling, synthesis."""

from .core import FLOAT_LAYERS, LAYERS, Landscape, LandscapeError
from .fuel_codes import BARE_GROUND, BURNABLE_CODES, KNOWN_CODES, NONBURNABLE_CODES, is_burnable

__all__ = [
    "BARE_GROUND", "BURNABLE_CODES", "FLOAT_LAYERS", "KNOWN_CODES", "LAYERS", "Landscape",
    "LandscapeError", "NONBURNABLE_CODES", "is_burnable",
]
