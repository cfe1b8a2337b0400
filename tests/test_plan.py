"""Treatment plans on whole landscapes: python -m firebreak.plan and firebreak.plan_placement."""

import json
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from checkpoint_helpers import tiny_checkpoint

from firebreak.config import load_config
from firebreak.env import DEFAULT_SEASON, FIRE_COUNT_LAYER, OBSERVATION_LAYERS, FuelBreakEnv
from firebreak.evaluate import SCORING_SEED_BASE, checkpoint_policy
from firebreak.fire import ScenarioSampler, simulate_many
from firebreak.landscape import load_breaks, load_landfire, sample_landscape, sample_tiles
from firebreak.outputs import staged_outputs
from firebreak.placement import BASELINES, run_episode
from firebreak.plan import PlanError, make_plan
from firebreak.plan import main as plan_main
from firebreak.plan_placement import (CheckpointPlanner, GreedyPlanner, PlanningFires, budget_cells, domirank_scores,
                                      top_cells)

REPO = Path(__file__).parents[1]
DATA = REPO / "tests" / "data"
CROP = DATA / "landfire_crop"


def _quiet(load, *args):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*nodata")
        return load(*args)


@pytest.fixture(scope="module")
def crop():
    return _quiet(load_landfire, CROP)


def _cells_in_order(order: np.ndarray) -> list[int]:
    cells = np.flatnonzero(order.ravel())
    return [int(c) for c in cells[np.argsort(order.ravel()[cells])]]


def _env_episode(tile, policy, seed, n_scenarios=16, budget=0.05):
    env = FuelBreakEnv([tile], budget=budget, n_scenarios=n_scenarios)
    info = run_episode(env, policy, seed)
    return env, info


@pytest.mark.parametrize("name", ["dpv", "burnprob"])
def test_greedy_at_scale_places_the_envs_breaks(name):
    for i, tile in enumerate(sample_tiles(64, "holdout")[:2]):
        env, info = _env_episode(tile, BASELINES[name](0), seed=7 + i)
        fires = PlanningFires(tile, ScenarioSampler(0), 16, scenarios=env.simulator.scenarios, progress=False)
        order = GreedyPlanner(fires, name, replenish=False).place(budget_cells(tile, 0.05), progress=False)
        assert _cells_in_order(order) == info["breaks"], f"tile {i}"
        np.testing.assert_array_equal(fires.burned, env.simulator.burned.sum(axis=0))


def test_domirank_at_scale_ranks_as_the_env_policy():
    tile = sample_tiles(64, "holdout")[1]
    env, info = _env_episode(tile, BASELINES["domirank"](0), seed=3)
    scores = domirank_scores(tile, env.simulator.scenarios, progress=False)
    assert [int(c) for c in top_cells(scores, tile.burnable, len(info["breaks"]))] == info["breaks"]


@pytest.mark.parametrize("layers", [OBSERVATION_LAYERS, OBSERVATION_LAYERS + (FIRE_COUNT_LAYER,)],
                         ids=["env layers", "with the fire count"])
def test_checkpoint_one_break_per_round_is_the_envs_greedy(tmp_path, layers):
    path = tiny_checkpoint(tmp_path / "net.pt", layers=layers)
    tile = sample_tiles(64, "holdout")[0].window(0, 0, 32, 32)
    cfg = load_config(REPO / "ray_configs" / "smoke.yaml").env
    # CheckpointPlanner resets its tile env with seed 0: the same episode fires as this env's.
    env, info = _env_episode(tile, checkpoint_policy(str(path))(0), seed=0, n_scenarios=cfg.n_scenarios,
                             budget=cfg.budget)
    fires = PlanningFires(tile, ScenarioSampler(0), cfg.n_scenarios, scenarios=env.simulator.scenarios, progress=False)
    order = CheckpointPlanner(str(path), fires, progress=False).place(len(info["breaks"]), per_round=1)
    assert _cells_in_order(order) == info["breaks"]


def test_checkpoint_on_overlapping_tiles_spends_the_budget(tmp_path, crop):
    path = tiny_checkpoint(tmp_path / "net.pt", tile=32)
    plan = make_plan(crop, str(path), budget=0.05, fires=16, scoring_fires=8, progress=False)
    n = budget_cells(crop, 0.05)
    assert int((plan.order > 0).sum()) == n == plan.summary["breaks"] and plan.order.max() == n
    assert crop.burnable[plan.order > 0].all()
    assert plan.summary["breaks_per_round"] == -(-n // 16)


def _run(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "firebreak.plan", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, **kwargs)


def _lcp(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_fixtures", DATA / "make_fixtures.py")
    fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixtures)
    return fixtures.write_lcp(CROP, tmp_path / "crop.lcp", "DEGREES")


@pytest.mark.parametrize("source", ["geotiff", "lcp"])
def test_plan_cli_writes_the_plan_on_the_source_grid(tmp_path, source):
    src = CROP if source == "geotiff" else _lcp(tmp_path)
    landscape = _quiet(load_landfire, src)
    out = tmp_path / "plan"
    args = ["--policy", "dpv", "--budget", 0.05, "--fires", 16, "--scoring-fires", 12, "--out", out]
    if source == "geotiff":  # the command line itself, once
        run = _run(src, *args)
        assert run.returncode == 0, run.stderr
    else:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*nodata")
            assert plan_main([str(a) for a in [src, *args]]) == 0
    names = ["breaks.tif", "burn_probability_before.tif", "burn_probability_after.tif", "conditional_flame_length.tif",
             "conditional_flame_length_after.tif"]
    nodata_value = -9999.0 if source == "lcp" else 32767.0
    with rasterio.open(src if source == "lcp" else next(CROP.glob("*_F40_*.tif"))) as reference:
        grid = (reference.crs, reference.transform, reference.shape)
    rasters = {}
    for name in names:
        with rasterio.open(out / name) as tif:
            assert (tif.crs, tif.transform, tif.shape) == grid and tif.nodata == nodata_value, name
            rasters[name] = tif.read(1, masked=True)
            np.testing.assert_array_equal(np.ma.getmaskarray(rasters[name]), landscape.nodata, err_msg=name)
    order = rasters["breaks.tif"].filled(0)
    n = round(0.05 * int((~landscape.nodata).sum()))
    assert int((order > 0).sum()) == n and sorted(order[order > 0]) == list(range(1, n + 1))
    assert landscape.burnable[order > 0].all()
    np.testing.assert_array_equal(load_breaks(out / "breaks.tif", landscape), order)
    # Burn probabilities: the scoring fires, independent of the planning fires, untreated and treated.
    scoring = ScenarioSampler(SCORING_SEED_BASE, DEFAULT_SEASON).sample(landscape, 12)
    inside = ~landscape.nodata
    for name, breaks in (("burn_probability_before.tif", None), ("burn_probability_after.tif", order > 0)):
        expected = simulate_many(landscape, scoring, breaks).burned.mean(axis=0)
        np.testing.assert_allclose(rasters[name].data[inside], expected[inside], rtol=1e-6, err_msg=name)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["breaks"] == n and summary["scoring_fires"] == 12 and summary["planning_seed"] == 0
    assert summary["before"]["burned_fraction"] >= summary["after"]["burned_fraction"]
    assert "| budget | 5.0% of the" in (out / "summary.md").read_text()
    assert (out / "preview.png").stat().st_size > 10_000
    assert sorted(p.name for p in out.iterdir()) == sorted(names + ["preview.png", "summary.json", "summary.md"])


def test_refining_a_plan_keeps_its_breaks_first(crop):
    first = make_plan(crop, "burnprob", budget=0.03, fires=16, scoring_fires=4, progress=False)
    refined = make_plan(crop, "burnprob", budget=0.05, fires=16, scoring_fires=4, refine=first.order, progress=False)
    k = int(first.order.max())
    np.testing.assert_array_equal(np.where(refined.order <= k, refined.order, 0), first.order)
    assert int(refined.order.max()) == budget_cells(crop, 0.05) and refined.summary["breaks_refined_from"] == k


def test_used_up_planning_fires_are_replenished(crop):
    # 4 fires on this crop are stopped long before 20 % of it is treated.
    plan = make_plan(crop, "dpv", budget=0.2, fires=4, scoring_fires=4, progress=False)
    assert plan.summary["planning_batches"] > 1 and plan.summary["planning_fires"] == 4 * plan.summary["planning_batches"]
    assert int((plan.order > 0).sum()) == budget_cells(crop, 0.2)


def test_bad_plan_inputs(tmp_path, crop, capsys):
    with pytest.raises(PlanError, match="policy 'best': choose one of dpv, burnprob, domirank, random"):
        make_plan(crop, "best")
    with pytest.raises(PlanError, match=r"budget 1\.5: give the share of cells to treat"):
        make_plan(crop, "dpv", budget=1.5)
    out = tmp_path / "plan"
    cases = [
        ([CROP, "--policy", tmp_path / "missing.pt", "--fires", 4], "missing.pt: no such checkpoint"),
        (["sample:64:holdout", "--fires", 2], "sample:64:holdout: holds 8 landscapes; give one"),
        ([CROP, "--refine", DATA / "cropped_raster" / "fbfm" / "cropped_raster_0_fbfm.tif"],
         "the breaks raster has shape (50, 50) but the landscape has (80, 96)"),
    ]
    for args, message in cases:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*nodata")
            assert plan_main([*map(str, args), "--out", str(out)]) == 2
        assert message in capsys.readouterr().err
    assert not out.exists()


def test_staged_outputs_leave_no_partial_file(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        with staged_outputs(out) as stage:
            (stage / "breaks.tif").write_bytes(b"half")
            raise KeyboardInterrupt
    assert list(out.iterdir()) == []


@pytest.mark.timeout(120)
def test_ctrl_c_leaves_no_partial_file(tmp_path):
    out = tmp_path / "plan"
    proc = subprocess.Popen([sys.executable, "-m", "firebreak.plan", "--fires", "256", "--out", str(out)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, seen = time.monotonic() + 90, ""
    while time.monotonic() < deadline and "planning fires" not in seen and proc.poll() is None:
        seen += proc.stderr.read(16)  # wait until the fires run
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.slow
def test_plan_the_whole_bundled_landscape(tmp_path):
    out = tmp_path / "plan"
    run = _run("--policy", "dpv", "--budget", 0.05, "--fires", 256, "--out", out)
    assert run.returncode == 0, run.stderr
    landscape = sample_landscape()
    with rasterio.open(out / "breaks.tif") as tif:
        assert tif.crs.to_epsg() == 5070 and tuple(tif.transform)[:6] == (30.0, 0.0, 1833825.0, 0.0, -30.0, 2617605.0)
        assert tif.shape == (613, 549) and tif.nodata == 32767
        order = tif.read(1, masked=True).filled(0)
    assert int((order > 0).sum()) == round(0.05 * int((~landscape.nodata).sum())) == 11398
    summary = json.loads((out / "summary.json").read_text())
    assert summary["after"]["burned_fraction"] < summary["before"]["burned_fraction"]
