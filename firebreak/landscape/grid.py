"""A landscape's raster grid, and single-band GeoTIFFs written on it or read back from it.

Maps computed on a landscape (burn probability, flame length, a plan's breaks) go back to GIS
on the grid of the rasters it came from: same shape, CRS, transform and nodata value, so that
QGIS or ArcGIS lay them over the source cell for cell. The grid is read from the landscape's
provenance (``metadata["crs"]``, ``["transform"]``, ``["nodata_value"]``, written by the
loaders and moved by `Landscape.window`). A landscape without georeferencing (synthetic,
an old bundle) gets a grid of its cell size at (0, 0) without CRS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError

from .core import Landscape, LandscapeError

#: Nodata value of outputs on a landscape whose source declared none (the FARSITE convention).
DEFAULT_NODATA = -9999.0


@dataclass(frozen=True)
class Grid:
    """shape (rows, cols); transform (affine, cell corners, CRS units); crs (None if unknown);
    nodata_value written into cells outside the landscape (None if the source declared none)."""

    shape: tuple[int, int]
    transform: Affine
    crs: CRS | None
    nodata_value: float | None

    @classmethod
    def of(cls, landscape: Landscape) -> "Grid":
        meta = landscape.metadata
        if meta.get("transform"):
            transform = Affine(*(float(v) for v in meta["transform"].split(",")))
        else:
            transform = Affine(landscape.cell_size, 0.0, 0.0, 0.0, -landscape.cell_size, 0.0)
        crs = CRS.from_user_input(meta["crs"]) if meta.get("crs") else None
        nodata = float(meta["nodata_value"]) if meta.get("nodata_value") else None
        return cls(tuple(landscape.shape), transform, crs, nodata)

    def mismatch(self, shape, transform, crs) -> str | None:
        """What differs between this grid and a raster's (shape, transform, crs), or None."""
        if tuple(shape) != self.shape:
            return f"shape {tuple(shape)} but the landscape has {self.shape}"
        if not np.allclose(tuple(transform)[:6], tuple(self.transform)[:6], rtol=1e-12, atol=1e-9):
            return f"transform {tuple(transform)[:6]} but the landscape has {tuple(self.transform)[:6]}"
        if crs != self.crs:
            name = lambda c: c.to_string() if c else "none"  # noqa: E731
            return f"CRS {name(crs)} but the landscape has {name(self.crs)}"
        return None


def write_geotiff(path: str | Path, data: np.ndarray, grid: Grid, *, outside: np.ndarray, dtype: str = "float32",
                  description: str = "") -> Path:
    """Write `data` (rows, cols) on `grid` as a one-band GeoTIFF, the cells of `outside` (cells
    outside the landscape) set to the grid's nodata value (`DEFAULT_NODATA` if it has none).
    Atomic: written to a temp file beside `path`, then renamed."""
    path = Path(path)
    if data.shape != grid.shape:
        raise ValueError(f"{path.name}: data of shape {data.shape} does not fit the grid {grid.shape}")
    nodata = grid.nodata_value if grid.nodata_value is not None else DEFAULT_NODATA
    values = np.where(outside, nodata, data).astype(dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with rasterio.open(tmp, "w", driver="GTiff", width=grid.shape[1], height=grid.shape[0], count=1, dtype=dtype,
                           crs=grid.crs, transform=grid.transform, nodata=nodata, compress="deflate") as dst:
            dst.write(values, 1)
            if description:
                dst.set_band_description(1, description)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_geotiff(path: str | Path, grid: Grid, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(band 1 as float64, its nodata mask) of a GeoTIFF that must lie on `grid`; `what` names
    it in errors (e.g. "breaks"). A different shape, transform or CRS is a `LandscapeError`."""
    path = Path(path)
    try:
        with rasterio.open(path) as src:
            problem = grid.mismatch((src.height, src.width), src.transform, src.crs)
            if problem is None and src.count != 1:
                problem = f"{src.count} bands, expected one"
            values = src.read(1, masked=True)
    except RasterioIOError as err:
        raise LandscapeError(f"{path}: cannot read the {what} raster ({err}).") from None
    if problem:
        raise LandscapeError(f"{path}: the {what} raster has {problem}. Give the {what} raster written for this "
                             "landscape, or the landscape it was written for.")
    return values.data.astype(np.float64), np.ma.getmaskarray(values)
