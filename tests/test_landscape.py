"""firebreak.landscape on real LANDFIRE rasters (fixtures cropped from the Worcester, VT data)."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from firebreak.landscape import (
    LAYERS,
    Landscape,
    LandscapeError,
    load_landfire,
    load_landscapes,
    load_npz,
    load_tiles,
    sample_landscape,
    sample_tiles,
    save_npz,
    synthetic_landscape,
    tile,
)
from firebreak.landscape.synthetic import slope_aspect

DATA = Path(__file__).parent / "data"
CROP = DATA / "landfire_crop"
CROP_ORIGIN = (80, 20)  # row, col of the crop inside the full landscape (see data/make_fixtures.py)
REPO = Path(__file__).parents[1]


def _raw(name: str) -> tuple[np.ndarray, np.ndarray]:
    with rasterio.open(CROP / name) as src:
        data = src.read(1)
        return data.astype(np.float64), data == src.nodata


def _load(path=CROP, **kwargs) -> Landscape:
    with pytest.warns(UserWarning, match="nodata"):
        return load_landfire(path, **kwargs)


def test_landfire_values_follow_the_encodings():
    landscape = _load()
    fuel, nodata = _raw("LC22_F40_230.tif")
    assert landscape.shape == (80, 96) and landscape.cell_size == 30.0
    assert nodata.any() and np.array_equal(landscape.nodata, nodata)
    valid = ~nodata
    expected = {
        "fuel_model": fuel,
        "slope": _raw("LC20_SlpP_220.tif")[0] / 100,
        "elevation": _raw("LC20_Elev_220.tif")[0],
        "canopy_cover": _raw("LC22_CC_230.tif")[0] / 100,
        "canopy_height": _raw("LC22_CH_230.tif")[0] / 10,
        "canopy_base_height": _raw("LC22_CBH_230.tif")[0] / 10,
        "canopy_bulk_density": _raw("LC22_CBD_230.tif")[0] / 100,
    }
    for name, values in expected.items():
        np.testing.assert_allclose(getattr(landscape, name)[valid], values[valid], rtol=1e-6, err_msg=name)
    aspect = _raw("LC20_Asp_220.tif")[0]
    assert (aspect[valid] == -1).any(), "fixture should hold flat cells"
    np.testing.assert_array_equal(landscape.aspect[valid], np.where(aspect[valid] < 0, 0, aspect[valid]))
    # Nodata cells are bare ground without canopy, hence not burnable.
    assert not landscape.burnable[nodata].any()
    assert (landscape.fuel_model[nodata] == 99).all() and (landscape.canopy_cover[nodata] == 0).all()
    assert "LANDFIRE" in landscape.metadata["credit"] and "5070" in landscape.metadata["crs"]


def test_f40_preferred_and_f13_loadable_explicitly():
    assert set(np.unique(_load().fuel_model)) & set(range(101, 205))
    files = {t: next(CROP.glob(f"*_{n}_*.tif")) for t, n in
             [("f13", "F13"), ("slpp", "SlpP"), ("asp", "Asp"), ("elev", "Elev"), ("cc", "CC"), ("ch", "CH"),
              ("cbh", "CBH"), ("cbd", "CBD")]}
    f13 = _load(None, files=files)
    assert set(np.unique(f13.fuel_model[~f13.nodata])) <= set(range(1, 14)) | {91, 92, 93, 98, 99}


def test_bundled_sample_equals_the_geotiffs():
    sample = sample_landscape()
    assert sample.shape == (613, 549) and sample.cell_size == 30.0
    crop = _load()
    window = sample.window(*CROP_ORIGIN, *crop.shape)
    for name in LAYERS + ("nodata",):
        np.testing.assert_array_equal(getattr(window, name), getattr(crop, name), err_msg=name)
    assert "LANDFIRE" in sample.metadata["credit"]


def test_bundled_sample_fuel_histogram_matches_the_data_readme():
    # Counts published in shared/data/README.md for LC22_F40_230.tif.
    published = {91: 4321, 93: 103, 98: 1154, 99: 2, 101: 593, 102: 7703, 103: 376, 106: 509, 121: 137,
                 122: 586, 123: 586, 141: 10, 142: 53, 143: 21391, 144: 161, 146: 503, 161: 833, 162: 4155,
                 163: 51, 165: 277, 181: 455, 182: 1509, 183: 6096, 184: 8726, 185: 32021, 186: 134561,
                 188: 40, 189: 1039}
    sample = sample_landscape()
    codes, counts = np.unique(sample.fuel_model[~sample.nodata], return_counts=True)
    assert dict(zip(codes.tolist(), counts.tolist())) == published
    assert int(sample.nodata.sum()) == 108586


def test_old_tile_layout_loads_with_slope_in_degrees():
    tiles = load_tiles(DATA)
    assert [t.metadata["tile"] for t in tiles] == ["0", "1", "2", "3"]
    assert all(t.shape == (50, 50) for t in tiles)
    # Tile 0 is the 50x50 window at (300, 200) of the sample; its slope was stored in degrees.
    reference = sample_landscape().window(300, 200, 50, 50)
    np.testing.assert_allclose(tiles[0].slope, reference.slope, atol=1e-5)
    np.testing.assert_array_equal(tiles[0].fuel_model, reference.fuel_model)
    np.testing.assert_allclose(tiles[0].canopy_height, reference.canopy_height)
    assert load_landscapes(DATA / "cropped_raster")[3].metadata["tile"] == "3"


def _nodata_free_windows(nodata: np.ndarray, size: int, stride: int) -> int:
    """Independent count with an integral image."""
    integral = np.pad(nodata.astype(int).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    count = 0
    for r in range(0, nodata.shape[0] - size + 1, stride):
        for c in range(0, nodata.shape[1] - size + 1, stride):
            count += (integral[r + size, c + size] - integral[r, c + size] - integral[r + size, c] + integral[r, c]) == 0
    return count


@pytest.mark.parametrize("size,stride", [(64, 64), (64, 32), (128, 128)])
def test_tiling_the_real_landscape(size, stride):
    sample = sample_landscape()
    windows = tile(sample, size, stride)
    assert len(windows) == _nodata_free_windows(sample.nodata, size, stride) > 0
    assert all(w.shape == (size, size) and not w.nodata.any() for w in windows)
    r, c = (int(v) for v in windows[-1].metadata["window"].split(",")[:2])
    np.testing.assert_array_equal(windows[-1].fuel_model, sample.fuel_model[r : r + size, c : c + size])


def test_tiling_with_nodata_allowance_keeps_more_tiles():
    sample = sample_landscape()
    strict, loose = tile(sample, 64), tile(sample, 64, max_nodata_fraction=0.5)
    assert len(loose) > len(strict)
    assert all(w.nodata.mean() <= 0.5 for w in loose)


def test_npz_round_trip(tmp_path):
    landscape = _load()
    path = save_npz(landscape, tmp_path / "crop.npz")
    back = load_npz(path)
    for name in LAYERS + ("nodata",):
        np.testing.assert_array_equal(getattr(back, name), getattr(landscape, name))
    assert back.cell_size == landscape.cell_size and back.metadata["credit"] == landscape.metadata["credit"]
    assert not list(tmp_path.glob("*.tmp")), "atomic write left a temp file"


def test_landscape_is_immutable_and_breaks_copy():
    landscape = synthetic_landscape((32, 32), seed=1)
    with pytest.raises(ValueError):
        landscape.fuel_model[0, 0] = 99
    breaks = np.zeros((32, 32), bool)
    breaks[5, :] = True
    treated = landscape.with_breaks(breaks)
    assert not treated.burnable[5].any() and (treated.canopy_cover[5] == 0).all()
    assert landscape.burnable[5].sum() > 0, "the original must be untouched"
    assert np.array_equal(treated.burnable[~breaks], landscape.burnable[~breaks])


def test_slope_aspect_conventions():
    rows = np.arange(10, dtype=float)[:, None] * np.ones((1, 10))
    # Elevation falling southward (row 0 = north is highest): the slope faces south.
    slope, aspect = slope_aspect(100.0 - 3.0 * rows, cell_size=30.0)
    np.testing.assert_allclose(slope, 0.1)
    np.testing.assert_allclose(aspect, 180.0)
    # Elevation rising eastward: the slope faces west.
    slope, aspect = slope_aspect(6.0 * rows.T, cell_size=30.0)
    np.testing.assert_allclose(slope, 0.2)
    np.testing.assert_allclose(aspect, 270.0)


@pytest.mark.parametrize("kind", ["mixed", "grass", "grass_shrub", "shrub", "timber"])
def test_synthetic_is_deterministic_and_plausible(kind):
    a = synthetic_landscape((64, 64), seed=7, kind=kind)
    b = synthetic_landscape((64, 64), seed=7, kind=kind)
    c = synthetic_landscape((64, 64), seed=8, kind=kind)
    for name in LAYERS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.fuel_model, c.fuel_model)
    assert 0.85 < a.burnable.mean() < 1.0, "roads, water and rock should be a small share"
    timber = (a.fuel_model >= 161) & (a.fuel_model <= 189)
    assert (a.canopy_cover[timber] > 0).all() and (a.canopy_cover[~timber] == 0).all()
    if kind in ("grass", "grass_shrub", "shrub"):
        assert not timber.any()
    if kind == "mixed":
        groups = {int(code) // 20 for code in np.unique(a.fuel_model[a.burnable])}
        assert groups >= {5, 6, 7, 8, 9}  # grass, grass-shrub, shrub, timber understory and litter


def test_cli_info_and_tile(tmp_path):
    run = lambda *args: subprocess.run([sys.executable, "-m", "firebreak.landscape", *args],
                                       capture_output=True, text=True, cwd=REPO)
    info = run("info")
    assert info.returncode == 0 and "613 rows x 549 cols" in info.stdout and "nodata:        108586" in info.stdout
    assert "LANDFIRE" in info.stdout
    tiles = run("tile", "sample", str(tmp_path), "--size", "128")
    assert tiles.returncode == 0, tiles.stderr
    assert len(list(tmp_path.glob("*.npz"))) == len(tile(sample_landscape(), 128))
    folder_info = run("info", str(tmp_path))
    assert "of shape(s) 128x128" in folder_info.stdout
    bad = run("info", str(tmp_path / "missing"))
    assert bad.returncode == 2 and "not a landscape source" in bad.stderr


# --- malformed inputs: each gives one clear LandscapeError naming the file, the layer and the fix ---


def _edit_copy(tmp_path: Path, name: str, edit) -> Path:
    folder = tmp_path / "crop"
    shutil.copytree(CROP, folder)
    with rasterio.open(folder / name) as src:
        data, profile = src.read(1), src.profile
    data = edit(data)
    profile.update(dtype=data.dtype.name, height=data.shape[0], width=data.shape[1])
    with rasterio.open(folder / name, "w", **profile) as dst:
        dst.write(data, 1)
    return folder


def _set(value, dtype=None):
    def edit(data):
        data = data.astype(dtype or data.dtype)
        data[40, 50] = value
        return data
    return edit


@pytest.mark.parametrize(
    "name,edit,expected",
    [
        ("LC22_F40_230.tif", _set(150), r"LC22_F40_230\.tif: layer 'fuel_model': 1 cell\(s\) have unknown fuel codes \[150\] "
                                        r"\(first at row 40, col 50"),
        ("LC22_CC_230.tif", _set(150), r"LC22_CC_230\.tif: layer 'canopy_cover': 1 cell\(s\) are outside \[0, 1\].*percent / 100"),
        ("LC22_CH_230.tif", _set(-20), r"LC22_CH_230\.tif: layer 'canopy_height'.*outside.*m x 10"),
        ("LC20_Elev_220.tif", _set(np.nan, np.float32), r"LC20_Elev_220\.tif: layer 'elevation': 1 cell\(s\) are NaN"),
        ("LC20_Asp_220.tif", _set(400), r"LC20_Asp_220\.tif: layer 'aspect'.*outside \[0, 360\]"),
        ("LC22_F40_230.tif", _set(101.5, np.float32), r"layer 'fuel_model'.*not integer fuel codes"),
        ("LC22_CBD_230.tif", lambda d: d[:-1], r"LC22_CBD_230\.tif: layer 'canopy_bulk_density' has shape \(79, 96\).*same grid"),
    ],
)
@pytest.mark.filterwarnings("ignore:.*nodata")
def test_malformed_geotiffs(tmp_path, name, edit, expected):
    folder = _edit_copy(tmp_path, name, edit)
    with pytest.raises(LandscapeError, match=expected):
        load_landfire(folder)


def test_missing_layer_file(tmp_path):
    folder = tmp_path / "crop"
    shutil.copytree(CROP, folder)
    (folder / "LC22_CBH_230.tif").unlink()
    with pytest.raises(LandscapeError, match=r"no GeoTIFF found for layer\(s\) \['canopy_base_height'\]"):
        load_landfire(folder)


def test_nodata_refused_when_asked():
    with pytest.raises(LandscapeError, match=r"844 nodata cell\(s\).*nodata='nonburnable'"):
        load_landfire(CROP, nodata="error")


def test_duplicate_layer_files(tmp_path):
    folder = tmp_path / "crop"
    shutil.copytree(CROP, folder)
    shutil.copy(folder / "LC22_CC_230.tif", folder / "LF2016_CC_200.tif")
    with pytest.raises(LandscapeError, match=r"two files for layer token 'cc'"):
        load_landfire(folder)


def test_corrupt_and_foreign_npz(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(LandscapeError, match=r"garbage\.npz: not a readable \.npz bundle"):
        load_npz(garbage)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, fuel_model=np.zeros((2, 2)))
    with pytest.raises(LandscapeError, match=r"foreign\.npz: bundle format version -1"):
        load_npz(foreign)
    partial = tmp_path / "partial.npz"
    np.savez(partial, format_version=np.int64(1), fuel_model=np.zeros((2, 2)))
    with pytest.raises(LandscapeError, match=r"partial\.npz: bundle lacks key\(s\) \['slope'"):
        load_npz(partial)
    with pytest.raises(LandscapeError, match=r"missing\.npz: no such file"):
        load_npz(tmp_path / "missing.npz")


def test_tile_folder_missing_a_key(tmp_path):
    shutil.copytree(DATA / "cropped_raster", tmp_path / "cropped_raster")
    (tmp_path / "cropped_raster" / "cbd" / "cropped_raster_2_cbd.tif").unlink()
    with pytest.raises(LandscapeError, match=r"tile 2 has no file for key\(s\) \['cbd'\]"):
        load_tiles(tmp_path)


def test_bad_tiling_arguments():
    with pytest.raises(LandscapeError, match="exceeds the landscape's shape"):
        tile(synthetic_landscape((32, 32)), 64)
    with pytest.raises(LandscapeError, match="max_nodata_fraction"):
        tile(synthetic_landscape((32, 32)), 16, max_nodata_fraction=2)


def test_train_holdout_split_is_fixed_and_disjoint():
    train, holdout = sample_tiles(64, "train"), sample_tiles(64, "holdout")
    assert (len(train), len(holdout)) == (32, 8)
    windows = lambda tiles: {t.metadata["window"] for t in tiles}
    assert not windows(train) & windows(holdout)
    assert windows(train) | windows(holdout) == windows(sample_tiles(64))
    assert windows(load_landscapes("sample:64:holdout")) == windows(holdout)
    with pytest.raises(LandscapeError, match="expected 'sample:<size>'"):
        load_landscapes("sample:big")
