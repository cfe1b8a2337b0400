"""A fuel-break treatment plan for a whole landscape, for GIS: ``python -m firebreak.plan``.

    python -m firebreak.plan --policy dpv --budget 0.05 --fires 256 --out plan/      # the bundled landscape
    python -m firebreak.plan landscape.lcp --policy runs/benchmark/checkpoints/best.pt --out plan/ --ray local
    python -m firebreak.plan --policy dpv --refine plan/breaks.tif --budget 0.08 --out plan2/

1. Planning: `--fires` fires of the fire season (`firebreak.env.DEFAULT_SEASON`, seed
   `--seed`) burn the landscape; the policy places ``round(budget x cells inside the
   landscape)`` breaks on burnable cells (`firebreak.plan_placement`: the greedy heuristics
   exactly as `firebreak.placement` plays them, fresh batches of fires when a batch is used
   up; DomiRank once; a checkpoint's Q-network on overlapping tiles of its training size, in
   rounds). ``--refine`` starts from an earlier plan's breaks and adds the rest of the budget.
2. Scoring: `--scoring-fires` *other* fires of the same season (seed ``SCORING_SEED_BASE +
   seed``, as `firebreak.evaluate` scores) burn the landscape untreated and treated (same fires,
   paired): the burned share of the burnable cells per fire, with 95 % CIs over the fires.

Outputs in ``--out``, every raster on the source's grid (CRS, transform, shape, nodata value,
nodata outside the landscape):

- ``breaks.tif`` (int32): placement order, 1 = first break, 0 = untreated;
- ``burn_probability_before.tif`` / ``burn_probability_after.tif`` (float32, 0-1) and
  ``conditional_flame_length.tif`` / ``conditional_flame_length_after.tif`` (float32, m, 0 where
  no fire burned) from the scoring fires (`firebreak.burnprob` explains them);
- ``summary.json`` and ``summary.md``: budget, cells, policy, fires, seeds, burned before and
  after with CIs, wall times; ``preview.png``.

Fires run as Ray tasks with ``--ray`` (`firebreak.landscape_fires.connect_ray`), in this
process otherwise. Ctrl-C (or any error) leaves no partial file: outputs are staged and moved in
at the end (`firebreak.outputs`). Bad input (a source, a checkpoint, a breaks.tif on another
grid) ends with one error line and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .burnprob import BurnMaps, add_fire_arguments, burn_maps, burned_summary, one_landscape, write_burn_maps
from .env import DEFAULT_SEASON
from .evaluate import SCORING_SEED_BASE, mean_ci
from .fire import FireSeason, ScenarioSampler
from .landscape import Grid, Landscape, LandscapeError, load_breaks, write_geotiff
from .landscape_fires import burn_fires, connect_ray
from .outputs import staged_outputs, write_json
from .plan_placement import (GREEDY_SCORES, CheckpointPlanner, GreedyPlanner, PlanningFires, budget_cells,
                             domirank_scores, order_of, top_cells)

HEURISTICS = GREEDY_SCORES + ("domirank", "random")
#: A checkpoint places its breaks in this many rounds unless --per-round says otherwise.
CHECKPOINT_ROUNDS = 16


class PlanError(ValueError):
    """Bad plan input (policy, budget, an earlier plan); the message names it and the fix."""


@dataclass
class Plan:
    """A placed plan and its scoring. order: int32 placement order (0 untreated)."""

    landscape: Landscape
    policy: str
    budget: float
    order: np.ndarray
    before: BurnMaps
    after: BurnMaps
    summary: dict = field(default_factory=dict)


def _place(landscape: Landscape, policy: str, n_breaks: int, fires: PlanningFires, start: list[int], *,
           per_round: int | None, seed: int, progress: bool) -> tuple[list[int], dict]:
    """The cells of the plan in placement order (starting with `start`) and what placing cost."""
    info: dict = {}
    n_new = n_breaks - len(start)
    if policy in GREEDY_SCORES:
        planner = GreedyPlanner(fires, policy)
        order = planner.place(n_new, progress=progress)
        info["breaks_without_value"] = planner.without_value
    elif policy == "domirank":
        scores = domirank_scores(landscape, fires.scenarios, progress=progress)
        order = order_of(top_cells(scores, fires.treatable, n_new), landscape.shape)
    elif policy == "random":
        rng = np.random.default_rng(seed)
        order = order_of(rng.permutation(np.flatnonzero(fires.treatable))[:n_new], landscape.shape)
    else:
        per_round = per_round or max(1, -(-n_new // CHECKPOINT_ROUNDS))
        order = CheckpointPlanner(policy, fires, progress=progress).place(n_new, per_round)
        info["breaks_per_round"] = per_round
    new = np.flatnonzero(order.ravel())
    new = new[np.argsort(order.ravel()[new])]
    return start + [int(c) for c in new], info


def make_plan(landscape: Landscape, policy: str, *, budget: float = 0.05, fires: int = 256,
              scoring_fires: int | None = None, seed: int = 0, season: FireSeason = DEFAULT_SEASON,
              refine: np.ndarray | None = None, per_round: int | None = None, progress: bool = True) -> Plan:
    """Plan and score (module docstring). `policy`: a `HEURISTICS` name or a checkpoint path;
    `refine`: an earlier plan's order grid to start from."""
    if policy not in HEURISTICS and not str(policy).endswith(".pt"):
        raise PlanError(f"policy {policy!r}: choose one of {', '.join(HEURISTICS)} or a training checkpoint (.pt)")
    if fires < 1 or (scoring_fires is not None and scoring_fires < 2):
        raise PlanError(f"fires {fires} / scoring fires {scoring_fires}: give >= 1 planning and >= 2 scoring fires")
    try:
        n_breaks = budget_cells(landscape, budget)
    except ValueError as err:
        raise PlanError(str(err)) from None
    grid = Grid.of(landscape)
    if grid.nodata_value is not None and float(grid.nodata_value).is_integer() and 0 < grid.nodata_value <= n_breaks:
        raise PlanError(f"the source's nodata value {grid.nodata_value:g} is a placement order of this plan "
                        f"({n_breaks} breaks): breaks.tif could not tell them apart; lower --budget")
    start: list[int] = []
    if refine is not None:
        cells = np.flatnonzero(refine.ravel() > 0)
        start = [int(c) for c in cells[np.argsort(refine.ravel()[cells], kind="stable")]]
    if len(start) >= n_breaks:
        raise PlanError(f"the plan to refine already has {len(start)} breaks, the budget {budget} gives {n_breaks}: "
                        "raise --budget")
    started = time.perf_counter()
    planning = PlanningFires(landscape, ScenarioSampler(seed, season), fires, progress=progress)
    if start:
        planning.add_breaks(start)
    cells, info = _place(landscape, policy, n_breaks, planning, start, per_round=per_round, seed=seed,
                         progress=progress)
    placed_at = time.perf_counter()
    order = order_of(cells, landscape.shape)

    scoring_seed = SCORING_SEED_BASE + seed
    n_scoring = scoring_fires or fires
    scoring = ScenarioSampler(scoring_seed, season).sample(landscape, n_scoring)
    untreated = burn_fires(landscape, scoring, flame_length=True, progress=progress, desc="scoring fires, untreated")
    # Breaks only shrink fires: each treated fire fits in its untreated window.
    treated = burn_fires(landscape, scoring, order > 0, windows=[r.window(landscape.shape) for r in untreated],
                         flame_length=True, progress=progress, desc="scoring fires, treated")
    before, after = burn_maps(untreated, landscape.shape), burn_maps(treated, landscape.shape)
    finished = time.perf_counter()

    saved = before.burned_fraction(landscape) - after.burned_fraction(landscape)
    reduction, reduction_half = mean_ci(saved)
    summary = {
        "source": landscape.metadata.get("source", ""),
        "crs": landscape.metadata.get("crs", ""), "transform": landscape.metadata.get("transform", ""),
        "shape": list(landscape.shape), "cell_size_m": landscape.cell_size,
        "cells_inside": int((~landscape.nodata).sum()), "burnable_cells": int(landscape.burnable.sum()),
        "policy": str(policy), "budget": budget, "breaks": int((order > 0).sum()), "breaks_refined_from": len(start),
        "planning_fires": planning.fires, "planning_batches": planning.batches, "planning_fires_per_batch": fires,
        "planning_seed": seed, "scoring_fires": n_scoring, "scoring_seed": scoring_seed,
        "season": dataclasses.asdict(season),
        "before": burned_summary(landscape, before), "after": burned_summary(landscape, after),
        "burned_fraction_saved": reduction, "burned_fraction_saved_ci95": reduction_half,
        "relative_reduction": 1.0 - float(after.burned_cells.sum()) / max(float(before.burned_cells.sum()), 1.0),
        **info,
        "seconds_placement": placed_at - started, "seconds_scoring": finished - placed_at,
        "seconds_total": finished - started,
    }
    return Plan(landscape, str(policy), budget, order, before, after, summary)


def summary_markdown(plan: Plan) -> str:
    """summary.md: the plan's figures for a reader."""
    s = plan.summary
    pct = lambda x: f"{100 * x:.3f} %"  # noqa: E731
    rows = [
        ("source", s["source"]), ("grid", f"{s['shape'][0]} x {s['shape'][1]} cells of {s['cell_size_m']:g} m, "
                                         f"{s['crs'] or 'no CRS'}"),
        ("policy", s["policy"]),
        ("budget", f"{s['budget']:.1%} of the {s['cells_inside']} cells inside the landscape = {s['breaks']} breaks"
                   + (f" ({s['breaks_refined_from']} from the refined plan)" if s["breaks_refined_from"] else "")),
        ("planning fires", f"{s['planning_fires']} ({s['planning_batches']} batch(es) of {s['planning_fires_per_batch']},"
                           f" seed {s['planning_seed']})"),
        ("scoring fires", f"{s['scoring_fires']} independent fires (seed {s['scoring_seed']}), the same before and after"),
        ("burned before", f"{pct(s['before']['burned_fraction'])} +/- {pct(s['before']['burned_fraction_ci95'])} of "
                          "the burnable cells per fire (95 % CI over fires)"),
        ("burned after", f"{pct(s['after']['burned_fraction'])} +/- {pct(s['after']['burned_fraction_ci95'])}"),
        ("saved", f"{pct(s['burned_fraction_saved'])} +/- {pct(s['burned_fraction_saved_ci95'])} of the burnable cells "
                  f"per fire; {s['relative_reduction']:.1%} less burned area"),
        ("wall time", f"{s['seconds_total']:.1f} s ({s['seconds_placement']:.1f} s placing, {s['seconds_scoring']:.1f} s "
                      f"scoring) on {s.get('machine', '')}"),
    ]
    if s.get("breaks_without_value"):
        rows.append(("warning", f"{s['breaks_without_value']} breaks were placed when no planning fire was left to "
                                "stop (lowest cell index first); plan with more --fires"))
    lines = [f"# Fuel-break plan: {s['policy']}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += ["", "Files: breaks.tif (placement order, 0 = untreated), burn_probability_before.tif, "
              "burn_probability_after.tif, conditional_flame_length.tif (untreated), conditional_flame_length_after.tif, "
              "preview.png; all on the source's grid."]
    return "\n".join(lines) + "\n"


def write_plan(plan: Plan, out: str | Path) -> list[Path]:
    """Write the plan's files into `out` all at once (module docstring)."""
    from .viz import plot_plan  # matplotlib only when writing

    landscape, grid = plan.landscape, Grid.of(plan.landscape)
    with staged_outputs(out) as stage:
        written = [write_geotiff(stage / "breaks.tif", plan.order, grid, outside=landscape.nodata, dtype="int32",
                                 description="fuel break placement order (0 = untreated)")]
        written += write_burn_maps(stage, landscape, plan.before, "burn_probability_before.tif",
                                   "conditional_flame_length.tif")
        written += write_burn_maps(stage, landscape, plan.after, "burn_probability_after.tif",
                                   "conditional_flame_length_after.tif")
        written.append(write_json(stage / "summary.json", plan.summary))
        (stage / "summary.md").write_text(summary_markdown(plan))
        written.append(stage / "summary.md")
        s = plan.summary
        written.append(plot_plan(landscape, plan.order, plan.before.probability, plan.after.probability,
                                 stage / "preview.png",
                                 f"{s['policy']}: {s['breaks']} breaks ({s['budget']:.0%}); burned per fire "
                                 f"{100 * s['before']['burned_fraction']:.3f} % -> {100 * s['after']['burned_fraction']:.3f} %"
                                 f" of the burnable cells ({s['scoring_fires']} scoring fires)"))
    return [Path(out) / p.name for p in written]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firebreak.plan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_fire_arguments(parser, fires=256)
    parser.add_argument("--policy", default="dpv", metavar="|".join(HEURISTICS) + "|CHECKPOINT",
                        help="placement policy, or a training checkpoint (.pt) (default dpv)")
    parser.add_argument("--budget", type=float, default=0.05,
                        help="share of the cells inside the landscape to treat (default 0.05)")
    parser.add_argument("--scoring-fires", type=int, default=None, help="independent fires that score the plan "
                        "(default: as many as --fires)")
    parser.add_argument("--per-round", type=int, default=None, help=f"checkpoint policies: breaks per round "
                        f"(default: the budget in {CHECKPOINT_ROUNDS} rounds)")
    parser.add_argument("--refine", default=None, metavar="BREAKS.TIF",
                        help="start from this plan's breaks (same landscape) and add the rest of the budget")
    args = parser.parse_args(argv)
    from .dqn.checkpoint import CheckpointError

    stop_ray = lambda: None  # noqa: E731
    try:
        landscape = one_landscape(args.src)
        refine = None if args.refine is None else load_breaks(args.refine, landscape)
        stop_ray = connect_ray(args.ray, args.num_cpus)
        plan = make_plan(landscape, args.policy, budget=args.budget, fires=args.fires, scoring_fires=args.scoring_fires,
                         seed=args.seed, refine=refine, per_round=args.per_round)
        plan.summary.update(source=args.src, ray=args.ray, machine=f"{platform.machine()}, {os.cpu_count()} CPUs")
        written = write_plan(plan, args.out)
    except (LandscapeError, PlanError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        stop_ray()
    print(summary_markdown(plan))
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
