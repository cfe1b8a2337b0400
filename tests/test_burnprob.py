"""Whole-landscape fires (firebreak.landscape_fires) and burn probability maps (firebreak.burnprob)."""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio

from firebreak.burnprob import burn_maps
from firebreak.burnprob import main as burnprob_main
from firebreak.env import DEFAULT_SEASON
from firebreak.fire import Moisture, Scenario, ScenarioSampler, Weather, fire_behaviour_at, simulate, simulate_many
from firebreak.landscape import Grid, Landscape, load_landfire, sample_landscape, write_geotiff
from firebreak.landscape_fires import FIRST_HALF_WINDOW, burn_fire, burn_fires

REPO = Path(__file__).parents[1]
CROP = REPO / "tests" / "data" / "landfire_crop"


@pytest.fixture(scope="module")
def fire_prone():
    """A 200 x 200 part of the bundled landscape around its grass and shrub patches (big fires)."""
    return sample_landscape().window(150, 0, 200, 200)


@pytest.fixture(scope="module")
def crop():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*nodata")
        return load_landfire(CROP)


def _same_fire(record, full, shape):
    r0, c0, r1, c1 = record.box
    assert record.cells == int(full.burned.sum())
    np.testing.assert_array_equal(record.burned, full.burned[r0:r1, c0:c1])
    np.testing.assert_array_equal(record.arrival[record.burned], full.arrival[r0:r1, c0:c1][record.burned])
    pred = full.predecessor[r0:r1, c0:c1][record.burned]
    rows, cols = np.divmod(pred, shape[1])
    expected = np.where(pred >= 0, (rows - r0) * record.burned.shape[1] + (cols - c0), -1)
    np.testing.assert_array_equal(record.predecessor[record.burned], expected)


def test_windowed_fires_equal_whole_grid_fires(fire_prone):
    sampled = ScenarioSampler(3, DEFAULT_SEASON).sample(fire_prone, 24)
    scenarios = sampled[:6] + [sampled[13], sampled[23]]  # 13 and 23 outgrow the first window
    breaks = np.random.default_rng(0).random(fire_prone.shape) < 0.03
    grown = 0
    for scenario in scenarios:
        for mask in (None, breaks):
            record = burn_fire(fire_prone, scenario, mask)
            _same_fire(record, simulate(fire_prone, scenario, mask), fire_prone.shape)
            r0, c0, r1, c1 = record.box
            grown += max(r1 - r0, c1 - c0) > 2 * FIRST_HALF_WINDOW
        # Re-run with more breaks in the window of the untreated run: still the whole grid's fire.
        rerun = burn_fire(fire_prone, scenario, breaks, window=burn_fire(fire_prone, scenario).window(fire_prone.shape))
        _same_fire(rerun, simulate(fire_prone, scenario, breaks), fire_prone.shape)
    assert grown, "no fire outgrew the first window: the growth is untested"


def test_flame_length_in_the_direction_of_travel_follows_byram():
    shape = (41, 41)
    grass = Landscape(fuel_model=np.full(shape, 102), slope=np.zeros(shape), aspect=np.zeros(shape),
                      elevation=np.zeros(shape), canopy_cover=np.zeros(shape), canopy_height=np.zeros(shape),
                      canopy_base_height=np.zeros(shape), canopy_bulk_density=np.zeros(shape))
    moisture = Moisture(0.06, 0.07, 0.08, 0.6, 0.9)
    scenario = Scenario(ignitions=[(20, 20)], wind_speed_kmh=15.0, wind_from_deg=270.0, moisture=moisture,
                        duration_min=180.0)
    record = burn_fire(grass, scenario, flame_length=True)
    head = fire_behaviour_at(102, Weather(15.0, 270.0, moisture))
    e = head["eccentricity"]
    # Byram (1959) in SI: L = 0.0775 I^0.46 (m, kW/m); the backing fire moves at R (1-e)/(1+e).
    byram = lambda intensity: 0.0775 * intensity**0.46  # noqa: E731
    row, col = 20 - record.row, 20 - record.col
    assert col >= 3 and record.burned[row, col + 3] and record.burned[row, col - 3]
    east, west = record.flame_length[row, col + 3], record.flame_length[row, col - 3]
    np.testing.assert_allclose(east, head["flame_length"], rtol=1e-5)
    np.testing.assert_allclose(east, byram(head["intensity"]), rtol=1e-3)
    np.testing.assert_allclose(west, byram(head["intensity"] * (1 - e) / (1 + e)), rtol=1e-3)


@pytest.fixture
def ray_local(tmp_path_factory):
    """Ray for one test: the instance already running (an earlier module's, in any test order), else
    a private one, shut down afterwards so that the later tests here run without Ray."""
    import ray

    if ray.is_initialized():
        yield
        return
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             _temp_dir=str(tmp_path_factory.mktemp("ray")))
    yield
    ray.shutdown()


@pytest.mark.timeout(180)
def test_fires_as_ray_tasks_equal_fires_in_process(fire_prone, ray_local):
    scenarios = ScenarioSampler(4, DEFAULT_SEASON).sample(fire_prone, 12)
    on_ray = burn_fires(fire_prone, scenarios, flame_length=True, progress=False)
    import ray

    ray.shutdown()
    here = burn_fires(fire_prone, scenarios, flame_length=True, progress=False)
    for a, b in zip(on_ray, here):
        assert a.box == b.box
        np.testing.assert_array_equal(a.burned, b.burned)
        np.testing.assert_array_equal(a.flame_length, b.flame_length)


def test_burn_maps_equal_the_whole_grid_burn_probability(crop):
    scenarios = ScenarioSampler(5, DEFAULT_SEASON).sample(crop, 24)
    maps = burn_maps(burn_fires(crop, scenarios, flame_length=True, progress=False), crop.shape)
    np.testing.assert_array_equal(maps.probability, simulate_many(crop, scenarios).burned.mean(axis=0))
    burned = maps.burned > 0
    assert (maps.conditional_flame_length[burned] > 0).all() and (maps.conditional_flame_length[~burned] == 0).all()


def _run(*args):
    return subprocess.run([sys.executable, "-m", "firebreak.burnprob", *map(str, args)], capture_output=True,
                          text=True, cwd=REPO)


def test_cli_writes_geotiffs_on_the_source_grid(tmp_path, crop):
    out = tmp_path / "bp"
    run = _run(CROP, "--fires", 24, "--seed", 5, "--out", out)
    assert run.returncode == 0, run.stderr
    with rasterio.open(next(CROP.glob("*_F40_*.tif"))) as src:
        crs, transform, nodata, shape = src.crs, src.transform, src.nodata, src.shape
    scenarios = ScenarioSampler(5, DEFAULT_SEASON).sample(crop, 24)
    expected = simulate_many(crop, scenarios).burned.mean(axis=0)
    for name in ("burn_probability.tif", "conditional_flame_length.tif"):
        with rasterio.open(out / name) as tif:
            assert (tif.crs, tif.transform, tif.nodata, tif.shape) == (crs, transform, nodata, shape), name
            values = tif.read(1, masked=True)
        np.testing.assert_array_equal(np.ma.getmaskarray(values), crop.nodata)
        if name == "burn_probability.tif":
            np.testing.assert_allclose(values.data[~crop.nodata], expected[~crop.nodata], rtol=1e-6)
    summary = json.loads((out / "burnprob.json").read_text())
    assert summary["fires"] == 24 and summary["fires_per_second"] > 0
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "staging left behind"


@pytest.mark.filterwarnings("ignore:.*nodata")
def test_cli_with_breaks_burns_the_same_fires_treated(tmp_path, crop):
    order = np.zeros(crop.shape, np.int32)
    order[:, 40] = np.where(crop.burnable[:, 40], 1 + np.arange(crop.shape[0]), 0)  # a north-south line
    breaks_tif = write_geotiff(tmp_path / "breaks.tif", order, Grid.of(crop), outside=crop.nodata, dtype="int32")
    assert burnprob_main([str(CROP), "--fires", "24", "--seed", "5", "--breaks", str(breaks_tif), "--out",
                          str(tmp_path / "bp")]) == 0
    with rasterio.open(tmp_path / "bp" / "burn_probability.tif") as tif:
        treated = tif.read(1)
    scenarios = ScenarioSampler(5, DEFAULT_SEASON).sample(crop, 24)
    expected = simulate_many(crop, scenarios, order > 0).burned.mean(axis=0)
    np.testing.assert_allclose(treated[~crop.nodata], expected[~crop.nodata], rtol=1e-6)


@pytest.mark.filterwarnings("ignore:.*nodata")
def test_cli_refuses_breaks_on_another_grid(tmp_path, crop, capsys):
    part = crop.window(0, 0, 40, 40)
    breaks_tif = write_geotiff(tmp_path / "breaks.tif", np.zeros(part.shape, np.int32), Grid.of(part),
                               outside=part.nodata, dtype="int32")
    assert burnprob_main([str(CROP), "--fires", "4", "--breaks", str(breaks_tif), "--out", str(tmp_path / "bp")]) == 2
    assert "breaks.tif: the breaks raster has shape (40, 40) but the landscape has (80, 96)" in capsys.readouterr().err
    assert not (tmp_path / "bp").exists()


def test_burn_probability_in_chunks_equals_one_pass(crop, monkeypatch):
    import firebreak.burnprob as burnprob

    whole = burnprob.burn_probability(crop, 20, seed=2, progress=False)
    monkeypatch.setattr(burnprob, "CHUNK", 7)  # 7 + 7 + 6 fires, records dropped between chunks
    chunked = burnprob.burn_probability(crop, 20, seed=2, progress=False)
    np.testing.assert_array_equal(chunked.burned, whole.burned)
    np.testing.assert_allclose(chunked.flame_sum, whole.flame_sum)
    np.testing.assert_array_equal(chunked.burned_cells, whole.burned_cells)
    assert chunked.fires == 20
