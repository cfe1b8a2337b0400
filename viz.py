#!/usr/bin/env python
"""Plot what a trained fuel-break policy does: ``python viz.py --ckpt runs/<name>/checkpoints/best.pt``.

    python viz.py --ckpt runs/local/checkpoints/best.pt                   # held-out tile 0 of the run
    python viz.py --ckpt runs/local/checkpoints/best.pt --tile 3 --background fuel --gif --compare
    python viz.py --ckpt runs/local/checkpoints/best.pt --landscape my_tiles/ --tile 0

Plays one greedy episode of the checkpoint's Q-network (model kind and shapes come from the
checkpoint) on a landscape: by default tile --tile of the run's held-out ``run.eval_landscapes``;
--landscape takes any source ``firebreak.landscape.load_landscapes`` reads, of the checkpoint's
grid shape. The episode's fires are those firebreak.evaluate plans landscape i on
(reset(seed=EVAL_SEED_BASE + i)). Writes into --out:

  fuelbreaks_overlay.png  the background layer with the breaks coloured by placement order
  burn_probability.png    burn probability over the episode's fires, untreated / treated / change
  qvalue_evolution.png    masked Q-value maps at 0, 25, 50 and 75 % of the episode
  training_summary.png    the run's TensorBoard scalars (runs/<name>/tb) over env steps
  comparison.png          (--compare) DQN vs random, burn-probability, DPV, DomiRank breaks, scored
                          on independent fires like firebreak.evaluate
  episode.gif             (--gif) breaks appearing step by step, then one fire spreading

A treatment plan of ``python -m firebreak.plan`` needs no checkpoint:

    python viz.py --breaks plan/breaks.tif --landscape sample --background fuel

draws the plan's breaks (coloured by placement order) over the chosen layer of the landscape it
was made for (checked: same grid) into --out/fuelbreaks_overlay.png.

Bad input (missing or foreign checkpoint, bad tile index, wrong landscape shape, a breaks.tif
on another grid) ends with one error line and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BACKGROUND_CHOICES = ["slope", "fuel", "elevation", "aspect", "canopy_cover", "canopy_height", "canopy_base_height",
                      "canopy_bulk_density"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="viz.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", help="checkpoint, e.g. runs/<name>/checkpoints/best.pt")
    parser.add_argument("--breaks", metavar="BREAKS.TIF", help="draw a plan's breaks.tif instead (on --landscape, "
                        "default sample)")
    parser.add_argument("--landscape", default=None, metavar="SOURCE",
                        help="landscape source (sample:64:holdout, an .npz, a GeoTIFF folder, synthetic:<size>); "
                             "default: the checkpoint's run.eval_landscapes (held-out tiles)")
    parser.add_argument("--tile", type=int, default=0, metavar="N", help="which landscape of the source (default 0)")
    parser.add_argument("--background", choices=BACKGROUND_CHOICES, default="slope",
                        help="layer under the breaks (default slope)")
    parser.add_argument("--budget", type=float, default=None,
                        help="share of cells to treat (default: the checkpoint's env.budget)")
    parser.add_argument("--scenarios", type=int, default=32, help="fires of the episode (default 32)")
    parser.add_argument("--gif", action="store_true", help="also write episode.gif")
    parser.add_argument("--compare", action="store_true", help="also write comparison.png (runs the 4 baselines)")
    parser.add_argument("--out", default="viz_out", help="output folder (default viz_out)")
    args = parser.parse_args(argv)

    from firebreak.dqn.checkpoint import CheckpointError
    from firebreak.landscape import LandscapeError
    from firebreak import viz

    out = Path(args.out)
    if args.breaks:
        return _draw_plan(args, out)
    if not args.ckpt:
        parser.error("give --ckpt CHECKPOINT (or --breaks BREAKS.TIF for a plan)")
    try:
        if args.scenarios < 1:
            raise viz.VizError(f"--scenarios {args.scenarios}: give a positive number of fires")
        policy = viz.load_policy(args.ckpt)
        budget = policy.config.env.budget if args.budget is None else args.budget
        if not 0.0 < budget < 1.0:
            raise viz.VizError(f"--budget {budget}: give the share of cells to treat, in (0, 1), e.g. 0.05")
        landscape, label = viz.eval_landscape(policy.config, args.tile, args.landscape)
        viz.check_shape(policy, landscape, label)
    except (CheckpointError, LandscapeError, viz.VizError) as err:
        print(f"viz.py: error: {err}", file=sys.stderr)
        return 2

    episode = viz.play_episode(policy, landscape, label=label, tile=args.tile, budget=budget,
                               n_scenarios=args.scenarios)
    written = [
        viz.plot_overlay(episode, args.background, out / "fuelbreaks_overlay.png"),
        viz.plot_burn_probability(episode, out / "burn_probability.png"),
        viz.plot_q_evolution(episode, out / "qvalue_evolution.png"),
        viz.plot_training_summary(policy.run_dir / "tb", out / "training_summary.png"),
    ]
    if args.compare:
        results = viz.compare_policies(episode)
        written.append(viz.plot_comparison(episode, results, out / "comparison.png"))
        for name, r in results.items():
            print(f"  {name:<10} burned {r['burned']:.4f} (scoring fires)")
    if args.gif:
        written.append(viz.write_gif(episode, args.background, out / "episode.gif"))
    print(f"{label}: {len(episode.breaks)} breaks, burned fraction {episode.info['baseline_burned_fraction']:.4f} "
          f"untreated -> {episode.info['burned_fraction']:.4f} on the episode's {args.scenarios} fires")
    for path in written:
        print(f"wrote {path}")
    return 0


def _draw_plan(args, out: Path) -> int:
    from firebreak import viz
    from firebreak.landscape import LandscapeError, load_breaks, load_landscapes

    try:
        landscapes = load_landscapes(args.landscape or "sample")
        if args.tile >= len(landscapes):
            raise LandscapeError(f"--tile {args.tile}: {args.landscape} has {len(landscapes)} landscape(s)")
        landscape = landscapes[args.tile]
        order = load_breaks(args.breaks, landscape)
    except LandscapeError as err:
        print(f"viz.py: error: {err}", file=sys.stderr)
        return 2
    path = viz.plot_breaks(landscape, order, args.background, out / "fuelbreaks_overlay.png",
                           f"{int((order > 0).sum())} breaks of {args.breaks}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
