"""FARSITE / FlamMap landscape files (``.lcp``), read with GDAL's LCP driver (through rasterio).

An ``.lcp`` is one file of int16 bands: elevation, slope, aspect, fuel model, canopy cover,
then canopy height, canopy base height and canopy bulk density ("crown fuels"), optionally
duff and coarse woody debris (ignored here). Its header gives each band's unit; the codes are
those GDAL reports (https://gdal.org/drivers/raster/lcp.html) and are converted here to the
`Landscape` units:

===================  ============  =============================================
layer                header key    code: stored as -> converted to
===================  ============  =============================================
elevation            ELEVATION     0 m (kept); 1 ft (x 0.3048)
slope                SLOPE         0 degrees (tan); 1 percent (/ 100)
aspect               ASPECT        0 GRASS categories 1-25 (east = 1, north = 7, 15 degree
                                   steps counterclockwise, 25 flat); 1 GRASS degrees
                                   (counterclockwise from east, 0 flat); 2 azimuth degrees
                                   (clockwise from north, -1 flat). Flat -> 0.
fuel_model           FUEL_MODEL    0 or 1: codes kept (and checked as any fuel code);
                                   2 and 3 need a conversion file, which is refused
canopy_cover         CANOPY_COV    0 categories 0-4 -> 0, 10, 30, 60, 75 % (FARSITE's
                                   class values, fsxwenvt2.cpp; 99 = none -> 0);
                                   1 percent; both -> fraction
canopy_height, base  CANOPY_HT,    1 m; 2 ft; 3 m x 10; 4 ft x 10 -> m
height               CBH
canopy_bulk_density  CBD           1 kg/m3; 2 lb/ft3; 3 kg/m3 x 100; 4 lb/ft3 x 1000 -> kg/m3
===================  ============  =============================================

(FARSITE itself reads heights as x 10 and bulk density as x 100 whatever codes 1 and 3 say;
GDAL, which writes the files our users make, keeps them apart, and so do we. A file whose
values do not fit its header fails the range checks with the header's units in the message.)

The LCP format declares no nodata value; -9999 marks cells outside the landscape by
convention (LANDFIRE, FlamMap). Such cells, in any band, follow the loader's ``nodata``
policy as in `load_landfire`. The grid (transform, and the CRS of the ``.prj`` beside the
file) is the file's; a header in feet gives cell sizes in feet, converted to metres.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError

from .core import Landscape, LandscapeError, format_transform
from .geotiff import LANDFIRE_CREDIT, NodataPolicy, cell_size_of, mask_nodata

#: The LCP convention for cells without data.
LCP_NODATA = -9999
FOOT = 0.3048  # m
LB_PER_FT3 = 16.01846337  # kg/m3

Converter = Callable[[np.ndarray], np.ndarray]


def _grass_categories(a: np.ndarray) -> np.ndarray:
    bad = (a < 1) | (a > 25)
    if bad.any():
        raise ValueError(f"GRASS aspect categories must be 1-25, found {sorted(set(a[bad].astype(int).tolist()))[:10]}")
    return np.where(a == 25, 0.0, (465.0 - 15.0 * a) % 360.0)


def _cover_categories(a: np.ndarray) -> np.ndarray:
    classes = {0: 0.0, 1: 10.0, 2: 30.0, 3: 60.0, 4: 75.0, 99: 0.0}
    bad = ~np.isin(a, list(classes))
    if bad.any():
        raise ValueError(f"canopy cover categories must be 0-4 (or 99), found {sorted(set(a[bad].astype(int).tolist()))[:10]}")
    lookup = np.zeros(100)
    for code, percent in classes.items():
        lookup[code] = percent
    return lookup[a.astype(int)] / 100.0


_HEIGHT = {1: ("m", lambda a: a), 2: ("ft", lambda a: a * FOOT), 3: ("m x 10", lambda a: a / 10.0),
           4: ("ft x 10", lambda a: a * FOOT / 10.0)}

#: layer -> (band metadata prefix, {unit code: (unit name, converter to the Landscape unit)}).
UNITS: dict[str, tuple[str, dict[int, tuple[str, Converter]]]] = {
    "elevation": ("ELEVATION", {0: ("m", lambda a: a), 1: ("ft", lambda a: a * FOOT)}),
    "slope": ("SLOPE", {0: ("degrees", lambda a: np.tan(np.radians(a))), 1: ("percent", lambda a: a / 100.0)}),
    "aspect": ("ASPECT", {0: ("GRASS categories", _grass_categories),
                          1: ("GRASS degrees", lambda a: np.where(a == 0, 0.0, (450.0 - a) % 360.0)),
                          2: ("azimuth degrees", lambda a: np.where(a == -1, 0.0, a))}),
    "fuel_model": ("FUEL_MODEL", {0: ("fuel codes", lambda a: a), 1: ("fuel codes, custom models", lambda a: a)}),
    "canopy_cover": ("CANOPY_COV", {0: ("categories 0-4", _cover_categories), 1: ("percent", lambda a: a / 100.0)}),
    "canopy_height": ("CANOPY_HT", _HEIGHT),
    "canopy_base_height": ("CBH", _HEIGHT),
    "canopy_bulk_density": ("CBD", {1: ("kg/m3", lambda a: a), 2: ("lb/ft3", lambda a: a * LB_PER_FT3),
                                    3: ("kg/m3 x 100", lambda a: a / 100.0),
                                    4: ("lb/ft3 x 1000", lambda a: a * LB_PER_FT3 / 1000.0)}),
}
_CROWN_FUELS = ("canopy_height", "canopy_base_height", "canopy_bulk_density")


def _unit_code(tags: dict[str, str], prefix: str) -> int | None:
    key = f"{prefix}_OPTION" if prefix == "FUEL_MODEL" else f"{prefix}_UNIT"
    return int(tags[key]) if key in tags else None


def load_lcp(path: str | Path, *, nodata: NodataPolicy = "nonburnable", credit: str = LANDFIRE_CREDIT) -> Landscape:
    """Load a FARSITE / FlamMap ``.lcp`` landscape (module docstring: units and nodata).

    Raises `LandscapeError` naming the file and the band for an unreadable file, a missing
    crown-fuel band, an unknown unit code, a fuel conversion file, or values out of range.
    """
    path = Path(path)
    try:
        with rasterio.open(path) as src:
            if src.driver != "LCP":
                raise LandscapeError(f"{path}: GDAL reads it as {src.driver}, not as a FARSITE .lcp landscape.")
            bands = {}
            for index in range(1, src.count + 1):
                tags = src.tags(index)
                for layer, (prefix, _) in UNITS.items():
                    code = _unit_code(tags, prefix)
                    if code is not None:
                        bands[layer] = (index, code, src.read(index).astype(np.float64))
            transform, crs = src.transform, src.crs
            linear_unit = src.tags().get("LINEAR_UNIT")  # GDAL sets it for metres and feet only
    except RasterioIOError as err:
        raise LandscapeError(f"{path}: cannot read it as a FARSITE .lcp landscape ({err}).") from None
    missing = [layer for layer in UNITS if layer not in bands]
    if missing:
        crown = " (it has no crown fuels)" if set(missing) == set(_CROWN_FUELS) else ""
        raise LandscapeError(
            f"{path}: no band for layer(s) {missing}{crown}. firebreak needs all eight layers: export the landscape "
            "with crown fuels (canopy height, canopy base height, canopy bulk density), e.g. from LANDFIRE or FlamMap."
        )

    shape = bands["fuel_model"][2].shape
    outside = np.zeros(shape, bool)
    for _, _, values in bands.values():
        outside |= values == LCP_NODATA
    layers, units = {}, {}
    for layer, (index, code, values) in bands.items():
        prefix, codes = UNITS[layer]
        if code not in codes:
            allowed = ", ".join(f"{c} = {name}" for c, (name, _) in codes.items())
            extra = " (2 and 3 need a fuel conversion file, which firebreak does not read: convert the codes " \
                    "to standard fuel models first)" if layer == "fuel_model" else ""
            raise LandscapeError(f"{path}: band {index} ({layer}): unknown {prefix} unit code {code} in the header; "
                                 f"known: {allowed}{extra}.")
        name, convert = codes[code]
        units[layer] = name
        try:
            # Converters see the cells inside the landscape only; outside cells are filled below.
            converted = np.zeros(shape)
            converted[~outside] = convert(values[~outside])
        except ValueError as err:
            raise LandscapeError(f"{path}: band {index} ({layer}, {name}): {err}.") from None
        layers[layer] = converted
    mask_nodata(layers, outside, str(path), nodata, stacklevel=4)

    if linear_unit not in ("Meters", "Feet"):
        raise LandscapeError(f"{path}: the header's linear unit is neither metres nor feet (kilometres?). "
                             "Re-export the landscape in metres.")
    scale = FOOT if linear_unit == "Feet" else 1.0
    metadata = {
        "source": str(path),
        "credit": credit,
        "crs": crs.to_string() if crs else "",
        "transform": format_transform(transform),
        "nodata_value": repr(float(LCP_NODATA)),
        **{f"file.{layer}": f"{path} band {index}" for layer, (index, _, _) in bands.items()},
        **{f"unit.{layer}": unit for layer, unit in units.items()},
    }
    try:
        return Landscape(**layers, cell_size=cell_size_of(transform, str(path)) * scale, nodata=outside,
                         metadata=metadata)
    except LandscapeError as err:
        header = ", ".join(f"{layer} {unit}" for layer, unit in units.items())
        raise LandscapeError(f"{err} (values read with the .lcp header's units: {header})") from None
