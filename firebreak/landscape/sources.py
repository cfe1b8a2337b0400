"""One entry point for every landscape source a user may point at, and the bundled sample."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from .bundle import load_npz
from .core import Landscape, LandscapeError
from .geotiff import find_landfire_files, load_landfire, load_tiles
from .lcp import load_lcp
from .tiling import tile

SAMPLE_NAME = "worcester_vt.npz"


@lru_cache(maxsize=1)
def sample_landscape() -> Landscape:
    """The bundled real landscape: LANDFIRE 2022 fuels and 2020 topography around Worcester,
    Vermont (613 x 549 cells of 30 m, EPSG:5070; the corners outside the area are nodata).
    Credit: LANDFIRE (US DOI / USDA Forest Service), public domain. Immutable, so cached."""
    with resources.as_file(resources.files("firebreak.landscape") / "data" / SAMPLE_NAME) as path:
        return load_npz(path)


Split = Literal["train", "holdout", "all"]
#: Every HOLDOUT_EVERY-th real tile (row-major from the north-west) is held out of training.
HOLDOUT_EVERY = 5


def sample_tiles(size: int = 64, split: Split = "all") -> list[Landscape]:
    """Nodata-free, non-overlapping `size` x `size` tiles of the bundled landscape, row-major,
    and the fixed train/holdout split: tile i is held out when i % 5 == 4 (8 of the 40 tiles
    of 64 x 64). Evaluation uses the holdout tiles only; training never sees them."""
    if split not in ("train", "holdout", "all"):
        raise LandscapeError(f"sample_tiles: split {split!r} must be 'train', 'holdout' or 'all'")
    tiles = tile(sample_landscape(), size)
    if split == "all":
        return tiles
    holdout = split == "holdout"
    return [t for i, t in enumerate(tiles) if (i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1) == holdout]


def load_landscapes(source: str | Path) -> list[Landscape]:
    """Landscapes from any supported source:

    - ``"sample"``: the bundled real landscape;
    - ``"sample:64"``, ``"sample:64:train"``, ``"sample:64:holdout"``: its tiles (`sample_tiles`);
    - an ``.npz`` bundle, or a folder of them (sorted by name);
    - a FARSITE / FlamMap ``.lcp`` landscape file, or a folder of them (sorted by name);
    - a folder of the old tool's tiles (``cropped_raster/<key>/...``);
    - a folder of LANDFIRE GeoTIFFs (one landscape).
    """
    if str(source) == "sample":
        return [sample_landscape()]
    if str(source).startswith("sample:"):
        _, size, *split = str(source).split(":")
        if not size.isdigit() or len(split) > 1:
            raise LandscapeError(f"{source}: expected 'sample:<size>' or 'sample:<size>:<train|holdout|all>'")
        return sample_tiles(int(size), *split)
    path = Path(source)
    if path.is_file() and path.suffix == ".npz":
        return [load_npz(path)]
    if path.is_file() and path.suffix.lower() == ".lcp":
        return [load_lcp(path)]
    if path.is_dir():
        bundles = sorted(path.glob("*.npz"))
        if bundles:
            return [load_npz(p) for p in bundles]
        lcps = sorted(p for p in path.iterdir() if p.suffix.lower() == ".lcp")
        if lcps:
            return [load_lcp(p) for p in lcps]
        if (path / "cropped_raster").is_dir() or (path / "fbfm").is_dir():
            return load_tiles(path)
        if find_landfire_files(path):
            return [load_landfire(path)]
    raise LandscapeError(
        f"{source}: not a landscape source. Give 'sample', 'sample:64:holdout', an .npz bundle, a folder of .npz bundles, "
        "a FARSITE/FlamMap .lcp file, a folder of LANDFIRE GeoTIFFs, or a cropped_raster tile folder."
    )
