"""GIS outputs on a landscape's grid (firebreak.landscape.grid) and a plan's breaks.tif read back."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from firebreak.landscape import (Grid, LandscapeError, apply_breaks, load_breaks, load_landfire, read_geotiff,
                                 sample_landscape, synthetic_landscape, tile, write_geotiff)

REPO = Path(__file__).parents[1]
CROP = REPO / "tests" / "data" / "landfire_crop"


@pytest.fixture(scope="module")
def crop():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*nodata")
        return load_landfire(CROP)


def _order(landscape, cells=((10, 60), (11, 60), (12, 61))):
    order = np.zeros(landscape.shape, np.int32)
    for k, (r, c) in enumerate(cells, start=1):
        assert landscape.burnable[r, c]
        order[r, c] = k
    return order


def test_rasters_are_written_on_the_source_grid(tmp_path, crop):
    path = write_geotiff(tmp_path / "x.tif", np.arange(crop.nodata.size, dtype=float).reshape(crop.shape), Grid.of(crop),
                         outside=crop.nodata)
    with rasterio.open(next(CROP.glob("*_F40_*.tif"))) as source, rasterio.open(path) as out:
        assert (out.crs, out.transform, out.shape, out.nodata) == (source.crs, source.transform, source.shape,
                                                                   source.nodata)
        values = out.read(1, masked=True)
    np.testing.assert_array_equal(np.ma.getmaskarray(values), crop.nodata)
    assert not list(tmp_path.glob(".*")), "temp file left behind"


def test_windows_and_tiles_keep_their_place_on_earth():
    sample = sample_landscape()
    window = sample.window(100, 200, 64, 64)
    transform = Grid.of(sample).transform
    assert Grid.of(window).transform == transform @ Affine.translation(200, 100)
    first = tile(sample, 64)[0]
    r, c = (int(v) for v in first.metadata["window"].split(",")[:2])
    assert Grid.of(first).transform == transform @ Affine.translation(c, r)
    # The exact origin of the LANDFIRE rasters (the old "%g" text lost 5 m of it).
    assert tuple(transform)[:6] == (30.0, 0.0, 1833825.0, 0.0, -30.0, 2617605.0)


def test_breaks_round_trip_and_apply(tmp_path, crop):
    order = _order(crop)
    path = write_geotiff(tmp_path / "breaks.tif", order, Grid.of(crop), outside=crop.nodata, dtype="int32")
    np.testing.assert_array_equal(load_breaks(path, crop), order)
    treated = apply_breaks(crop, path)
    assert not treated.burnable[order > 0].any() and (treated.fuel_model[order > 0] == 99).all()
    assert np.array_equal(treated.fuel_model[order == 0], crop.fuel_model[order == 0])
    assert treated.metadata["breaks"] == str(path)


def test_breaks_on_another_grid(tmp_path, crop):
    order = _order(crop)
    moved = Grid(crop.shape, Grid.of(crop).transform @ Affine.translation(1, 0), Grid.of(crop).crs, 32767.0)
    cases = [
        (Grid.of(crop.window(0, 0, 70, 96)), order[:70], r"shape \(70, 96\) but the landscape has \(80, 96\)"),
        (moved, order, r"transform \(30\.0, 0\.0, 1834455\.0.*but the landscape has \(30\.0, 0\.0, 1834425\.0"),
        (Grid(crop.shape, Grid.of(crop).transform, rasterio.crs.CRS.from_epsg(32618), 32767.0), order,
         r"CRS EPSG:32618 but the landscape has EPSG:5070"),
    ]
    for grid, values, message in cases:
        path = write_geotiff(tmp_path / "breaks.tif", values, grid, outside=np.zeros(values.shape, bool), dtype="int32")
        with pytest.raises(LandscapeError, match=r"breaks\.tif: the breaks raster has " + message):
            load_breaks(path, crop)


def test_breaks_that_are_no_plan(tmp_path, crop):
    grid = Grid.of(crop)
    bad = _order(crop).astype(np.float32)
    bad[10, 60] = 1.5
    path = write_geotiff(tmp_path / "b.tif", bad, grid, outside=crop.nodata)
    with pytest.raises(LandscapeError, match=r"1 cell\(s\) are not a placement order.*row 10, col 60: 1\.5"):
        load_breaks(path, crop)
    outside = _order(crop)
    row, col = np.argwhere(crop.nodata)[0]
    outside[row, col] = 9
    path = write_geotiff(tmp_path / "b.tif", outside, grid, outside=np.zeros(crop.shape, bool), dtype="int32")
    with pytest.raises(LandscapeError, match=r"1 treated cell\(s\) lie outside the landscape \(nodata\)"):
        load_breaks(path, crop)
    rock = _order(crop)
    row, col = np.argwhere(~crop.nodata & ~crop.burnable)[0]
    rock[row, col] = 9
    path = write_geotiff(tmp_path / "b.tif", rock, grid, outside=crop.nodata, dtype="int32")
    with pytest.raises(LandscapeError, match=r"lie on non-burnable fuel, first at row"):
        load_breaks(path, crop)
    with pytest.raises(LandscapeError, match=r"missing\.tif: cannot read the breaks raster"):
        read_geotiff(tmp_path / "missing.tif", grid, "breaks")


def test_ungeoreferenced_landscapes_get_a_plain_grid(tmp_path):
    synth = synthetic_landscape((16, 16), seed=0)
    grid = Grid.of(synth)
    assert grid.crs is None and grid.transform == Affine(30.0, 0, 0, 0, -30.0, 0) and grid.nodata_value is None
    order = np.zeros((16, 16), np.int32)
    order[np.unravel_index(np.flatnonzero(synth.burnable)[:3], (16, 16))] = [1, 2, 3]
    path = write_geotiff(tmp_path / "b.tif", order, grid, outside=synth.nodata, dtype="int32")
    np.testing.assert_array_equal(load_breaks(path, synth), order)


def test_viz_draws_a_breaks_tif(tmp_path, crop, capsys):
    from viz import main as viz_main  # the repository's viz.py

    path = write_geotiff(tmp_path / "breaks.tif", _order(crop), Grid.of(crop), outside=crop.nodata, dtype="int32")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*nodata")
        assert viz_main(["--breaks", str(path), "--landscape", str(CROP), "--background", "fuel",
                         "--out", str(tmp_path / "viz")]) == 0
    assert (tmp_path / "viz" / "fuelbreaks_overlay.png").stat().st_size > 10_000
    # On the whole bundled sample: another grid.
    assert viz_main(["--breaks", str(path), "--out", str(tmp_path / "viz")]) == 2
    assert "the breaks raster has shape (80, 96)" in capsys.readouterr().err
