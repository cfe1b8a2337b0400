"""Re-create the GeoTIFF test fixtures from the shared LANDFIRE landscape.

Run once from the repository root: ``python tests/data/make_fixtures.py ../shared/data/landfire_worcester_vt``.
Writes ``landfire_crop/`` (all nine LANDFIRE layers, an 80 x 96 window with nodata along one
edge, original encodings and nodata value) and ``cropped_raster/`` (the old tool's tile
layout: four 50 x 50 tiles, slope in degrees as that tool stored it). Data: LANDFIRE, public domain.

`write_lcp` builds a FARSITE / FlamMap ``.lcp`` of ``landfire_crop/`` with GDAL's LCP writer
(through rasterio): the tests call it, so no ``.lcp`` is committed.
"""

import sys
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

CROP = Window(col_off=20, row_off=80, width=96, height=80)
TILE_ORIGINS = [(300, 200), (300, 250), (350, 200), (350, 250)]  # (row, col), nodata-free
TILE_KEYS = {"fbfm": "F40", "slp": "SlpP", "asp": "Asp", "dem": "Elev", "cc": "CC", "ch": "CH", "cbh": "CBH", "cbd": "CBD"}


def _write(path: Path, data: np.ndarray, profile: dict, transform) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {**profile, "height": data.shape[0], "width": data.shape[1], "transform": transform,
               "dtype": data.dtype.name, "compress": "deflate", "tiled": False}
    profile.pop("blockxsize", None), profile.pop("blockysize", None)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def main(src: Path, out: Path) -> None:
    for tif in sorted(src.glob("*.tif")):
        with rasterio.open(tif) as r:
            _write(out / "landfire_crop" / tif.name, r.read(1, window=CROP), r.profile, r.window_transform(CROP))
    for key, token in TILE_KEYS.items():
        tif = next(src.glob(f"*_{token}_*.tif"))
        with rasterio.open(tif) as r:
            for idx, (row, col) in enumerate(TILE_ORIGINS):
                window = Window(col, row, 50, 50)
                data = r.read(1, window=window)
                profile = dict(r.profile)
                if key == "slp":  # the old tool stored slope in degrees, as float32
                    data = np.degrees(np.arctan(data / 100.0)).astype(np.float32)
                    profile["nodata"] = -9999.0
                _write(out / "cropped_raster" / key / f"cropped_raster_{idx}_{key}.tif", data, profile,
                       r.window_transform(window))


#: LCP band order (GDAL's LCP driver) -> the LANDFIRE GeoTIFF token of landfire_crop/.
LCP_BANDS = ("Elev", "SlpP", "Asp", "F40", "CC", "CH", "CBH", "CBD")
LCP_NODATA = -9999


def landfire_bands(crop: Path) -> tuple[dict[str, np.ndarray], dict]:
    """The crop's GeoTIFF layers in their LANDFIRE encodings, nodata set to -9999, and its profile."""
    bands = {}
    for token in LCP_BANDS:
        with rasterio.open(next(crop.glob(f"*_{token}_*.tif"))) as r:
            data = r.read(1, masked=True)
            profile = r.profile
        bands[token] = np.where(np.ma.getmaskarray(data), LCP_NODATA, data.data).astype(np.int16)
    return bands, profile


def write_lcp_bands(path: Path, bands: list[np.ndarray], profile: dict, **units: str) -> Path:
    """Write int16 `bands` in LCP order as an .lcp (+ .prj) with the header `units` (GDAL creation
    options such as SLOPE_UNIT="PERCENT")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="LCP", width=bands[0].shape[1], height=bands[0].shape[0], count=len(bands),
                       dtype="int16", crs=profile["crs"], transform=profile["transform"], LATITUDE=44,
                       **units) as dst:
        dst.write(np.stack(bands))
    return path


def write_lcp(crop: Path, path: Path, slope_unit: str = "DEGREES") -> Path:
    """The crop as a LANDFIRE-style .lcp: elevation m, slope in `slope_unit` (DEGREES: the percent
    slope converted and rounded to whole degrees, as an .lcp stores it; PERCENT: kept), aspect
    azimuth degrees, F40 codes, cover percent, heights m x 10, bulk density kg/m3 x 100."""
    bands, profile = landfire_bands(crop)
    if slope_unit == "DEGREES":
        slope = bands["SlpP"]
        degrees = np.rint(np.degrees(np.arctan(slope / 100.0)))
        bands["SlpP"] = np.where(slope == LCP_NODATA, LCP_NODATA, degrees).astype(np.int16)
    return write_lcp_bands(path, [bands[t] for t in LCP_BANDS], profile, SLOPE_UNIT=slope_unit)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).parent)
