"""Baseline placement policies and the evaluation harness."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from firebreak.env import FuelBreakEnv
from firebreak.evaluate import evaluate, format_table
from firebreak.evaluate import main as evaluate_main
from firebreak.fire import Moisture, Scenario, simulate
from firebreak.landscape import sample_tiles, save_npz, synthetic_landscape
from firebreak.placement import BASELINES, DomiRankPolicy, DownstreamProtectionPolicy, run_episode

REPO = Path(__file__).parents[1]


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_each_baseline_plays_a_valid_episode(name):
    env = FuelBreakEnv(["synthetic:48:grass_shrub"], n_scenarios=4, budget=0.02)  # invalid actions would raise
    info = run_episode(env, BASELINES[name](0), seed=0)
    assert len(info["breaks"]) == len(set(info["breaks"])) == info["budget_cells"]
    assert env.landscape.burnable.ravel()[info["breaks"]].all()


def test_a_break_never_stops_a_fire_from_starting():
    landscape = synthetic_landscape((32, 32), seed=0, kind="grass", road_count=0)
    scenario = Scenario(ignitions=[(16, 16)], wind_speed_kmh=15.0, wind_from_deg=270.0,
                        moisture=Moisture(0.05, 0.06, 0.07, 0.6, 0.9), duration_min=60.0)
    breaks = np.zeros((32, 32), bool)
    breaks[16, 16] = True
    untreated, treated = simulate(landscape, scenario), simulate(landscape, scenario, breaks)
    assert treated.burned[16, 16] and treated.burned.sum() > 10
    np.testing.assert_array_equal(treated.arrival, untreated.arrival)


def test_dpv_skips_ignition_cells_and_domirank_ranks_once_per_episode():
    env = FuelBreakEnv(["synthetic:48:grass_shrub"], n_scenarios=4, budget=0.02)
    env.reset(seed=1)
    ignitions = {tuple(c) for s in env.simulator.scenarios for c in s.ignitions}
    action = DownstreamProtectionPolicy()(env)
    assert divmod(action, 48) not in ignitions
    policy = DomiRankPolicy()
    first = policy.scores(env)
    env.step(policy(env))
    assert policy.scores(env) is first, "the ranking is computed once per episode"
    env.reset(seed=2)
    assert policy.scores(env) is not first


def test_a_heuristic_beats_random_on_held_out_real_tiles():
    holdout = sample_tiles(64, "holdout")
    results = evaluate({n: BASELINES[n] for n in ("random", "burnprob")}, holdout, n_scenarios=16, progress=False)
    ratio = results["burnprob"]["burned"] / results["random"]["burned"]
    # Unseen scoring fires: the heuristic must win on average, with the 95 % CI below parity.
    assert ratio.mean() < 0.95
    assert ratio.mean() + 2.37 * ratio.std(ddof=1) / np.sqrt(len(ratio)) < 1.0  # t(0.975, 7) = 2.36
    table = format_table(results)
    assert "| burnprob |" in table and "| untreated |" in table


def test_the_table_compares_every_policy_to_random_and_to_the_best_heuristic():
    untreated = np.array([0.3, 0.4])
    results = {name: {"burned": np.array(burned), "untreated": untreated} for name, burned in [
        ("random", [0.1, 0.2]), ("learned", [0.045, 0.09]), ("burnprob", [0.06, 0.12]), ("dpv", [0.05, 0.1])]}
    lines = format_table(results).splitlines()
    assert "burned / random (95 % CI)" in lines[0] and "burned / best heuristic (dpv) (95 % CI)" in lines[0]
    learned = next(line for line in lines if line.startswith("| learned |"))
    assert "| 0.450 ± 0.000 | 0.900 ± 0.000 |" in learned  # per landscape: 0.045 / 0.1, 0.045 / 0.05, ...
    assert lines[-1].startswith("| untreated | 0.3500") and lines[-1].count("|") == lines[0].count("|")


def test_evaluate_cli(tmp_path):
    for i, tile in enumerate(sample_tiles(64, "holdout")[:2]):
        save_npz(tile, tmp_path / f"tile_{i}.npz")
    out = subprocess.run([sys.executable, "-m", "firebreak.evaluate", "--landscapes", str(tmp_path),
                          "--policy", "burnprob", "--scenarios", "4"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "2 landscapes" in out.stdout and "| random |" in out.stdout and "| burnprob |" in out.stdout


def test_evaluate_cli_rejects_unknown_policies_and_checkpoints(tmp_path, capsys):
    out = subprocess.run([sys.executable, "-m", "firebreak.evaluate", "--policy", "greedy-oracle"], capture_output=True,
                         text=True, cwd=REPO)
    assert out.returncode == 2 and ("not a planner (random, burnprob, dpv, domirank, search), search:<K> (K a whole "
                                    "number of candidate cells), a .pt checkpoint nor search:<checkpoint.pt>") in out.stderr
    with pytest.raises(SystemExit) as exit_:  # the same argument check, without a second interpreter start
        evaluate_main(["--policy", str(tmp_path / "missing.pt")])
    assert exit_.value.code == 2 and "no such checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        evaluate_main(["--policy", f"search:{tmp_path / 'missing.pt'}"])
    assert exit_.value.code == 2 and "no such checkpoint" in capsys.readouterr().err
