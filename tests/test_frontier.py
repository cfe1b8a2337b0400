"""Evaluation at a simulation budget (`firebreak.evaluate --planning-fires`) and the search
planner (`GreedySearchPolicy`): exact marginal gains, the per-N tables, the saved frontier."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
from checkpoint_helpers import tiny_checkpoint

from firebreak.env import FuelBreakEnv
from firebreak.evaluate import (best_heuristic, checkpoint_policy, checkpoint_search, eval_landscapes, evaluate,
                                format_frontier, format_table, load_frontier, main, policy_factory)
from firebreak.fire import IncrementalSimulator, ScenarioSampler, simulate_many
from firebreak.landscape import synthetic_landscape
from firebreak.placement import PLANNERS, BurnProbabilityPolicy, GreedySearchPolicy, run_episode


@pytest.fixture(scope="module")
def grassland():
    """A 24 x 24 grass/shrub landscape: fires burn much of it, so breaks change them."""
    return synthetic_landscape((24, 24), 5, kind="grass_shrub")


def _burned_cells(landscape, scenarios, breaks) -> int:
    return int(simulate_many(landscape, scenarios, breaks).burned.sum())


def test_burned_with_is_a_fresh_simulation_and_leaves_the_simulator_alone(grassland):
    env = FuelBreakEnv([grassland], n_scenarios=6)
    env.reset(seed=3)
    sim = env.simulator
    cells = np.argwhere(sim.burned.any(axis=0))[:3]
    mask = np.zeros(grassland.shape, bool)
    mask[tuple(cells.T)] = True
    before = sim.burned.copy(), sim.version.copy()
    counts = sim.burned_with(mask)
    fresh = simulate_many(grassland, sim.scenarios, mask).burned.sum(axis=(1, 2))
    np.testing.assert_array_equal(counts, fresh)
    assert counts.sum() < sim.burned.sum(), "three burned cells as breaks must save something here"
    np.testing.assert_array_equal(sim.burned, before[0])
    np.testing.assert_array_equal(sim.version, before[1])
    np.testing.assert_array_equal(sim.burned_with(mask, among=[4, 1]), fresh[[4, 1]])


def test_search_gains_are_exact_at_every_step_with_its_trial_cache(grassland):
    """Each step's gains (kept across steps where the cache says they still hold) equal a fresh
    simulation of every candidate on top of the current breaks."""
    env = FuelBreakEnv([grassland], n_scenarios=6, budget=0.02)
    env.reset(seed=11)
    policy = GreedySearchPolicy(candidates=12)
    scenarios = env.simulator.scenarios
    positive = 0
    for _ in range(env._budget_cells):
        gains = policy.gains(env)
        breaks = env.simulator.breaks
        now = _burned_cells(grassland, scenarios, breaks)
        for cell, gain in gains.items():
            trial = breaks.copy()
            trial.flat[cell] = True
            assert gain == now - _burned_cells(grassland, scenarios, trial), cell
        positive += max(gains.values()) > 0
        action = policy(env)
        assert gains[action] == max(gains.values())
        env.step(action)
    assert positive >= 3, "the test needs steps where a break saves cells"


def test_search_plans_burn_less_than_dpv_on_their_own_fires(grassland):
    env = FuelBreakEnv([grassland], n_scenarios=8, budget=0.03)
    burned = {}
    for name, policy in {"dpv": lambda e: int(np.where(e.action_masks(), e.downstream_protection.ravel(),
                                                       -np.inf).argmax()),
                         "search": GreedySearchPolicy(candidates=16)}.items():
        env.reset(seed=21)
        done = False
        while not done:
            _, _, done, _, info = env.step(policy(env))
        burned[name] = info["burned_fraction"]
    assert burned["search"] < burned["dpv"], burned


def test_search_tries_its_priors_top_cells_and_with_one_candidate_plays_the_prior(grassland):
    env = FuelBreakEnv([grassland], n_scenarios=6, budget=0.02)
    prior = lambda e: e.burn_probability
    env.reset(seed=5)
    gains = GreedySearchPolicy(candidates=5, prior=prior).gains(env)
    score = np.where(env.action_masks(), env.burn_probability.ravel(), -np.inf)
    assert list(gains) == np.argsort(-score, kind="stable")[:5].tolist()
    assert (run_episode(env, GreedySearchPolicy(candidates=1, prior=prior), 5)["breaks"]
            == run_episode(env, BurnProbabilityPolicy(), 5)["breaks"])


def test_search_with_k_candidates_is_a_heuristic_trying_the_top_k_dpv_cells(grassland):
    """``search:<K>``: the search planner on the top K DPV cells; with one it is DPV, and the
    tables count it among the heuristics a learned policy is compared with."""
    env = FuelBreakEnv([grassland], n_scenarios=6, budget=0.02)
    policy = policy_factory("search:7")(0)
    env.reset(seed=5)
    score = np.where(env.action_masks(), env.downstream_protection.ravel(), -np.inf)
    assert list(policy.gains(env)) == np.argsort(-score, kind="stable")[:7].tolist()
    assert (run_episode(env, policy_factory("search:1")(0), 5)["breaks"]
            == run_episode(env, PLANNERS["dpv"](0), 5)["breaks"])
    for bad in ("search:0", "search:-3", "search:7.5"):
        with pytest.raises(ValueError, match="search:<K>"):
            policy_factory(bad)
    untreated = np.array([0.3, 0.4])
    results = {name: {"burned": np.array(b), "untreated": untreated}
               for name, b in {"dpv": [0.05, 0.1], "search:192": [0.04, 0.08], "learned": [0.03, 0.07]}.items()}
    assert best_heuristic(results) == "search:192", "the learned row is no heuristic"


def test_search_on_a_checkpoint_tries_its_top_q_cells(tmp_path):
    """``search:<checkpoint>``: the network proposes (its top-K Q cells), the planning fires decide;
    with one candidate it is the checkpoint's own greedy policy."""
    path = str(tiny_checkpoint(tmp_path / "net.pt", tile=24))
    landscape = synthetic_landscape((24, 24), 5, kind="grass_shrub")
    env = FuelBreakEnv([landscape], n_scenarios=6, budget=0.02)
    greedy = run_episode(env, checkpoint_policy(path)(0), 9)["breaks"]
    assert run_episode(env, checkpoint_search(path, candidates=1)(0), 9)["breaks"] == greedy
    policy = policy_factory(f"search:{path}")(0)
    assert policy.candidates == 64
    env.reset(seed=9)
    q = np.where(env.action_masks(), policy.prior(env), -np.inf)
    assert list(policy.gains(env)) == np.argsort(-q, kind="stable")[:64].tolist()
    searched = run_episode(env, policy, 9)
    assert searched["breaks"] != greedy, "on these fires the exact gains re-order the network's picks"
    with pytest.raises(ValueError, match="search:<checkpoint.pt>"):
        policy_factory("search:dpv")


def test_every_budget_plans_on_its_own_fires_and_scores_on_the_same_ones(grassland):
    policies = {name: PLANNERS[name] for name in ("random", "dpv")}
    small = evaluate(policies, [grassland], n_scenarios=8, planning_fires=2, progress=False)
    large = evaluate(policies, [grassland], n_scenarios=8, planning_fires=8, progress=False)
    np.testing.assert_array_equal(small["dpv"]["untreated"], large["dpv"]["untreated"])
    assert small["dpv"]["burned"][0] != large["dpv"]["burned"][0], "two planning-fire counts, one plan?"
    assert (small["dpv"]["cpu_seconds"] > 0).all() and (large["dpv"]["cpu_seconds"] > 0).all()
    env = FuelBreakEnv([grassland], n_scenarios=8)
    env.reset(seed=2**40)
    untreated = env.simulator.burned.sum() / grassland.burnable.sum() / 8
    scoring = ScenarioSampler(2**41, env.season).sample(grassland, 8)
    assert small["dpv"]["untreated"][0] == pytest.approx(
        IncrementalSimulator(grassland, scoring).burned.sum() / grassland.burnable.sum() / 8)
    assert small["dpv"]["untreated"][0] != pytest.approx(untreated), "scoring fires must not be the planning fires"


def test_the_table_at_n_compares_to_the_best_heuristic_at_n_and_at_4n():
    untreated = np.array([0.3, 0.4])
    at = lambda **b: {n: {"burned": np.array(v), "untreated": untreated, "cpu_seconds": np.array([1.0, 3.0])}
                      for n, v in b.items()}
    n64 = at(random=[0.1, 0.2], dpv=[0.05, 0.1], learned=[0.045, 0.09])
    n256 = at(random=[0.1, 0.2], dpv=[0.04, 0.08], search=[0.03, 0.075], learned=[0.04, 0.08])
    lines = format_table(n64, n256).splitlines()
    assert "CPU s per landscape" in lines[0] and "burned / best heuristic at 4N (search) (95 % CI)" in lines[0]
    learned = next(line for line in lines if line.startswith("| learned |"))
    # per landscape: 0.045 / 0.1 and 0.09 / 0.2; / dpv at N: 0.9, 0.9; / search at 4N: 1.5, 1.2
    # (mean 1.35, 95 % CI half-width t(0.975, 1) x 0.3 / 2 = 1.906)
    assert "| 2.00 | 0.450 ± 0.000 | 0.900 ± 0.000 | 1.350 ± 1.906 |" in learned
    tables = format_frontier({64: n64, 256: n256})
    assert tables.count("at 4N") == 1 and "**256 planning fires per landscape**" in tables


def test_held_out_synthetic_terrain_lies_outside_training_seeds():
    tiles = eval_landscapes("synthetic:24", n=5)
    assert len(tiles) == 5
    again = synthetic_landscape((24, 24), 2**31 + 4, kind="timber")  # mixed, grass, grass_shrub, shrub, timber
    np.testing.assert_array_equal(tiles[4].fuel_model, again.fuel_model)  # seed 2**31 + i, kinds cycling
    assert not np.array_equal(tiles[0].fuel_model, tiles[1].fuel_model)
    with pytest.raises(ValueError, match="synthetic:<size>"):
        eval_landscapes("synthetic:24:lava")


def test_evaluate_cli_writes_the_frontier(tmp_path, capsys):
    assert main(["--landscapes", "synthetic:24:grass_shrub", "--tiles", "2", "--scenarios", "4",
                 "--planning-fires", "2,8", "--policy", "dpv", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "**2 planning fires per landscape**" in printed and "at 4N (dpv)" in printed
    frontier = load_frontier(tmp_path / "frontier.json")
    assert sorted(frontier) == [2, 8] and sorted(frontier[8]) == ["dpv", "random"]
    assert frontier[2]["dpv"]["burned"].shape == (2,)
    assert json.loads((tmp_path / "frontier.json").read_text())["meta"]["scoring_fires"] == 4
    assert (tmp_path / "frontier.md").read_text().strip() == format_frontier(frontier).strip()
    assert (tmp_path / "frontier.png").stat().st_size > 10_000
    with pytest.raises(SystemExit) as exit_:
        main(["--planning-fires", "64,lots"])
    assert exit_.value.code == 2 and "whole numbers separated by commas" in capsys.readouterr().err


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_stopped_evaluation_leaves_no_worker_computing(sig, tmp_path):
    """`ray job stop`, a scheduler or Ctrl-C ends an evaluation with its workers: SIGTERM stops
    the pool; SIGKILL leaves the parent no say, so the workers die with it (PR_SET_PDEATHSIG)."""
    command = [sys.executable, "-m", "firebreak.evaluate", "--policy", "search", "--landscapes", "synthetic:64",
               "--tiles", "4", "--planning-fires", "256", "--scenarios", "8", "--workers", "2"]
    evaluation = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parent = psutil.Process(evaluation.pid)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # until two workers are busy planning (spawn and imports come first)
        busy = [p for p in parent.children(recursive=True) if "multiprocessing.spawn" in " ".join(p.cmdline())
                and p.cpu_times().user > 3.0]
        if len(busy) == 2:
            break
        time.sleep(0.5)
    assert len(busy) == 2, "the evaluation's two workers never started computing"
    family = parent.children(recursive=True)
    evaluation.send_signal(sig)
    assert evaluation.wait(timeout=15) == (-signal.SIGKILL if sig == signal.SIGKILL else 128 + signal.SIGTERM)
    gone, alive = psutil.wait_procs(family, timeout=15)
    assert not alive, f"still running after the evaluation ended: {[p.cmdline() for p in alive]}"
