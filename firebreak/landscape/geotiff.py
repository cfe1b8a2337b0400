"""Read LANDFIRE-style GeoTIFFs: one folder of full-extent layers, or the old tool's tiles.

LANDFIRE encodings converted here (https://landfire.gov/fuel):

==========  ==================  ==========================================
layer       file token          stored as -> converted to
==========  ==================  ==========================================
fuel_model  F40 / FBFM40        Scott & Burgan 40 codes (kept)
            F13 / FBFM13        Anderson 13 codes (kept)
slope       SlpP                percent -> rise/run (/ 100)
            SlpD                degrees -> rise/run (tan)
aspect      Asp                 degrees clockwise from north, -1 = flat -> 0
elevation   Elev / DEM          metres (kept)
canopy      CC                  percent -> fraction (/ 100)
            CH, CBH             metres x 10 -> metres (/ 10)
            CBD                 kg/m3 x 100 -> kg/m3 (/ 100)
==========  ==================  ==========================================

Nodata cells (each file's declared nodata value, unioned over the layers) follow the
``nodata`` policy: ``"nonburnable"`` (default: the cells become bare ground, flagged in
``Landscape.nodata``, and a warning says how many) or ``"error"``.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Literal, Mapping

import numpy as np

from .core import FLOAT_LAYERS, Landscape, LandscapeError, format_transform
from .fuel_codes import BARE_GROUND

NodataPolicy = Literal["nonburnable", "error"]

LANDFIRE_CREDIT = (
    "LANDFIRE (US Department of the Interior / USDA Forest Service), public domain, https://landfire.gov"
)

# File-name token -> (layer, converter from the stored integers to the Landscape unit).
_TOKENS: dict[str, tuple[str, callable]] = {
    "f40": ("fuel_model", lambda a: a),
    "fbfm40": ("fuel_model", lambda a: a),
    "f13": ("fuel_model", lambda a: a),
    "fbfm13": ("fuel_model", lambda a: a),
    "slpp": ("slope", lambda a: a / 100.0),
    "slpd": ("slope", lambda a: np.tan(np.radians(a))),
    "asp": ("aspect", lambda a: np.where(a == -1, 0.0, a)),
    "elev": ("elevation", lambda a: a),
    "dem": ("elevation", lambda a: a),
    "cc": ("canopy_cover", lambda a: a / 100.0),
    "ch": ("canopy_height", lambda a: a / 10.0),
    "cbh": ("canopy_base_height", lambda a: a / 10.0),
    "cbd": ("canopy_bulk_density", lambda a: a / 100.0),
}
# When a folder holds both fuel encodings, Scott & Burgan 40 wins (it is the finer one).
_FUEL_PREFERENCE = ("f40", "fbfm40", "f13", "fbfm13")


def _token(path: Path) -> str | None:
    """The LANDFIRE layer token of a file name: 'LC22_F40_230.tif' -> 'f40', 'us_220slpp' -> 'slpp'."""
    for part in re.split(r"[_\-.\s]+", path.stem.lower()):
        part = part.lstrip("0123456789")
        if part in _TOKENS:
            return part
    return None


def find_landfire_files(folder: str | Path) -> dict[str, Path]:
    """Map each layer token to its GeoTIFF in `folder` (by file-name pattern)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LandscapeError(f"{folder}: not a folder. Pass a folder of LANDFIRE GeoTIFFs or an explicit files= mapping.")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in (".tif", ".tiff"):
            continue
        token = _token(path)
        if token is None:
            continue
        if token in found:
            raise LandscapeError(
                f"{folder}: two files for layer token '{token}': {found[token].name} and {path.name}. "
                "Keep one, or pass files= explicitly."
            )
        found[token] = path
    return found


def _read(path: Path, layer: str) -> tuple[np.ndarray, np.ndarray, object]:
    """(values as float64, nodata mask, rasterio profile) of band 1 of `path`."""
    import rasterio

    try:
        with rasterio.open(path) as src:
            values = src.read(1, masked=True)
            profile = src.profile
    except rasterio.errors.RasterioIOError as err:
        raise LandscapeError(f"{path}: cannot read layer '{layer}' as a GeoTIFF ({err}).") from None
    return values.data.astype(np.float64), np.ma.getmaskarray(values), profile


def load_landfire(
    folder: str | Path | None = None,
    *,
    files: Mapping[str, str | Path] | None = None,
    nodata: NodataPolicy = "nonburnable",
    credit: str = LANDFIRE_CREDIT,
) -> Landscape:
    """Load one landscape from LANDFIRE GeoTIFFs or a FARSITE / FlamMap ``.lcp`` file.

    Either `folder` (files found by their LANDFIRE tokens, see the module docstring; a path
    ending in ``.lcp`` is read by `firebreak.landscape.lcp.load_lcp`) or `files`, a mapping
    from token (``"f40"``, ``"slpp"``, ``"asp"``, ``"elev"``, ``"cc"``, ``"ch"``, ``"cbh"``,
    ``"cbd"``, ...) to path; the token fixes the encoding.
    """
    if (folder is None) == (files is None):
        raise LandscapeError("load_landfire: give either a folder or files=, not both or neither")
    if folder is not None and Path(folder).suffix.lower() == ".lcp":
        from .lcp import load_lcp  # lcp builds on this module's helpers

        return load_lcp(folder, nodata=nodata, credit=credit)
    if files is None:
        paths = find_landfire_files(folder)
        source = str(folder)
    else:
        unknown = sorted(set(files) - set(_TOKENS))
        if unknown:
            raise LandscapeError(f"load_landfire: unknown layer token(s) {unknown}; known: {sorted(_TOKENS)}")
        paths = {token: Path(p) for token, p in files.items()}
        source = str(Path(next(iter(paths.values()))).parent)
    by_layer: dict[str, str] = {}
    for token in sorted(paths, key=lambda t: _FUEL_PREFERENCE.index(t) if t in _FUEL_PREFERENCE else -1):
        by_layer.setdefault(_TOKENS[token][0], token)
    missing = [layer for layer in ("fuel_model",) + FLOAT_LAYERS if layer not in by_layer]
    if missing:
        raise LandscapeError(
            f"{source}: no GeoTIFF found for layer(s) {missing}. Expected LANDFIRE names such as "
            "LC22_F40_230.tif, LC20_SlpP_220.tif, LC20_Asp_220.tif, LC20_Elev_220.tif, LC22_CC_230.tif, "
            "LC22_CH_230.tif, LC22_CBH_230.tif, LC22_CBD_230.tif, or pass files={token: path}."
        )

    layers: dict[str, np.ndarray] = {}
    nodata_mask = None
    reference = None
    nodata_value = None
    for layer, token in by_layer.items():
        path = paths[token]
        values, mask, profile = _read(path, layer)
        grid = (values.shape, profile["transform"])
        if reference is None:
            reference, reference_path = grid, path
        elif grid != reference:
            raise LandscapeError(
                f"{path}: layer '{layer}' has shape {values.shape} and transform {tuple(profile['transform'])[:6]}, "
                f"but {reference_path.name} has {reference[0]} and {tuple(reference[1])[:6]}. "
                "Clip or resample all layers to the same grid."
            )
        layers[layer] = _TOKENS[token][1](values)
        nodata_mask = mask if nodata_mask is None else nodata_mask | mask
        crs = profile.get("crs")
        if layer == "fuel_model":
            nodata_value = profile.get("nodata")
    cell_size = cell_size_of(reference[1], str(reference_path))

    mask_nodata(layers, nodata_mask, source, nodata)
    metadata = {
        "source": source,
        "credit": credit,
        "crs": crs.to_string() if crs else "",
        "transform": format_transform(reference[1]),
        **({"nodata_value": repr(float(nodata_value))} if nodata_value is not None else {}),
        **{f"file.{layer}": str(paths[token]) for layer, token in by_layer.items()},
    }
    return Landscape(**layers, cell_size=cell_size, nodata=nodata_mask, metadata=metadata)


def mask_nodata(layers: dict[str, np.ndarray], mask: np.ndarray, source: str, policy: NodataPolicy,
                stacklevel: int = 3) -> None:
    """Apply the nodata `policy` in place: with ``"nonburnable"`` the cells of `mask` become
    bare ground without canopy and a warning counts them (`stacklevel` as `warnings.warn`'s,
    counted from here: 3 = the caller of the loader); ``"error"`` refuses any."""
    if not mask.any():
        return
    if policy == "error":
        row, col = np.argwhere(mask)[0]
        raise LandscapeError(
            f"{source}: {int(mask.sum())} nodata cell(s) (first at row {row}, col {col}). "
            "Clip the rasters to the area of interest, or load with nodata='nonburnable'."
        )
    warnings.warn(
        f"{source}: {int(mask.sum())} nodata cell(s) ({mask.mean():.1%}) are treated as non-burnable bare ground",
        stacklevel=stacklevel,
    )
    layers["fuel_model"] = np.where(mask, BARE_GROUND, layers["fuel_model"])
    for layer in FLOAT_LAYERS:
        layers[layer] = np.where(mask, 0.0, layers[layer])


def cell_size_of(transform, source: str) -> float:
    """The cell side (transform units) of a north-up grid of square cells; anything else is an error."""
    a, b, _, d, e, _ = tuple(transform)[:6]
    if b != 0 or d != 0 or a <= 0 or e >= 0 or not np.isclose(a, -e, rtol=1e-6):
        raise LandscapeError(
            f"{source}: grid transform {tuple(transform)[:6]} is not north-up with square cells. "
            "Warp the rasters to a north-up grid of square cells (gdalwarp -tr X X)."
        )
    return float(a)


# The old tool's tile layout: cropped_raster/<key>/cropped_raster_<idx>_<key>.tif, slope in degrees.
_TILE_KEYS: dict[str, str] = {
    "fbfm": "f40",
    "slp": "slpd",
    "asp": "asp",
    "dem": "elev",
    "cc": "cc",
    "ch": "ch",
    "cbh": "cbh",
    "cbd": "cbd",
}
_TILE_NAME = re.compile(r"cropped_raster_(\d+)_([a-z]+)\.tiff?$", re.IGNORECASE)


def load_tiles(folder: str | Path, *, nodata: NodataPolicy = "nonburnable") -> list[Landscape]:
    """Load the old tool's tiles, ordered by tile index.

    `folder` is either the ``cropped_raster`` folder or its parent. Each tile index needs one
    file per key (fbfm, slp in degrees, asp, dem, cc, ch, cbh, cbd, LANDFIRE encodings
    otherwise); a tile that lacks a key is an error naming the tile and the key.
    """
    folder = Path(folder)
    root = folder / "cropped_raster" if (folder / "cropped_raster").is_dir() else folder
    tiles: dict[int, dict[str, Path]] = {}
    for key in _TILE_KEYS:
        for path in sorted((root / key).glob("cropped_raster_*")):
            match = _TILE_NAME.match(path.name)
            if match and match.group(2).lower() == key:
                tiles.setdefault(int(match.group(1)), {})[_TILE_KEYS[key]] = path
    if not tiles:
        raise LandscapeError(
            f"{folder}: no tiles found. Expected cropped_raster/<key>/cropped_raster_<idx>_<key>.tif "
            f"with keys {sorted(_TILE_KEYS)}."
        )
    landscapes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for index in sorted(tiles):
            missing = sorted(k for k, t in _TILE_KEYS.items() if t not in tiles[index])
            if missing:
                raise LandscapeError(f"{root}: tile {index} has no file for key(s) {missing}; every tile needs all 8 keys.")
            tile = load_landfire(files=tiles[index], nodata=nodata)
            landscapes.append(tile.replace(metadata={**tile.metadata, "source": f"{root} tile {index}", "tile": str(index)}))
    if caught:
        n = sum(int(t.nodata.sum()) for t in landscapes)
        warnings.warn(f"{root}: {n} nodata cell(s) over {len(landscapes)} tiles are treated as non-burnable", stacklevel=2)
    return landscapes
