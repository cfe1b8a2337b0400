"""One entry point for every landscape source a user may point at, and the bundled sample."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from .bundle import load_npz
from .core import Landscape, LandscapeError
from .geotiff import find_landfire_files, load_landfire, load_tiles

SAMPLE_NAME = "worcester_vt.npz"


@lru_cache(maxsize=1)
def sample_landscape() -> Landscape:
    """The bundled real landscape: LANDFIRE 2022 fuels and 2020 topography around Worcester,
    Vermont (613 x 549 cells of 30 m, EPSG:5070; the corners outside the area are nodata).
    Credit: LANDFIRE (US DOI / USDA Forest Service), public domain. Immutable, so cached."""
    with resources.as_file(resources.files("firebreak.landscape") / "data" / SAMPLE_NAME) as path:
        return load_npz(path)


def load_landscapes(source: str | Path) -> list[Landscape]:
    """Landscapes from any supported source:

    - ``"sample"``: the bundled real landscape;
    - an ``.npz`` bundle, or a folder of them (sorted by name);
    - a folder of the old tool's tiles (``cropped_raster/<key>/...``);
    - a folder of LANDFIRE GeoTIFFs (one landscape).
    """
    if str(source) == "sample":
        return [sample_landscape()]
    path = Path(source)
    if path.is_file() and path.suffix == ".npz":
        return [load_npz(path)]
    if path.is_dir():
        bundles = sorted(path.glob("*.npz"))
        if bundles:
            return [load_npz(p) for p in bundles]
        if (path / "cropped_raster").is_dir() or (path / "fbfm").is_dir():
            return load_tiles(path)
        if find_landfire_files(path):
            return [load_landfire(path)]
    raise LandscapeError(
        f"{source}: not a landscape source. Give 'sample', an .npz bundle, a folder of .npz bundles, "
        "a folder of LANDFIRE GeoTIFFs, or a cropped_raster tile folder."
    )
