"""Re-create the GeoTIFF test fixtures from the shared LANDFIRE landscape.

Run once from the repository root: ``python tests/data/make_fixtures.py ../shared/data/landfire_worcester_vt``.
Writes ``landfire_crop/`` (all nine LANDFIRE layers, an 80 x 96 window with nodata along one
edge, original encodings and nodata value) and ``cropped_raster/`` (the old tool's tile
layout: four 50 x 50 tiles, slope in degrees as that tool stored it). Data: LANDFIRE, public domain.
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


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).parent)
