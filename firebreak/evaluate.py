"""Evaluate placement policies on held-out landscapes: ``python -m firebreak.evaluate``.

Every policy faces the same fires on each landscape (common random numbers): landscape i is
played from ``reset(seed=EVAL_SEED_BASE + i)``, whose scenarios the policy may look at while it
places breaks. Its final breaks are then scored on a second, independent set of fires from the
same fire season (seed ``SCORING_SEED_BASE + i``): the score is the expected burned area under
fires the policy never saw, so fitting the planning fires earns nothing. Training seeds stay
below 2**31 and both evaluation bases lie above 2**40, so evaluation fires are never trained
on; the default landscapes are the held-out split of the bundled real tiles
(`firebreak.landscape.sample_tiles`).

Printed per policy: mean burned fraction (of burnable cells) under the scoring fires, with a 95 %
confidence interval over landscapes, mean reduction vs untreated, and the mean per-landscape
ratios of burned area to random placement's and to the best heuristic's, with their 95 % CIs.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from .env import FuelBreakEnv
from .fire import ScenarioSampler, simulate_many
from .landscape import Landscape, load_landscapes
from .placement import BASELINES, Policy, run_episode

EVAL_SEED_BASE = 2**40
SCORING_SEED_BASE = 2**41


def burned_fraction(landscape: Landscape, scenarios, breaks: np.ndarray | None = None) -> float:
    """Mean share of the landscape's burnable cells that `scenarios` burn with `breaks`."""
    burned = simulate_many(landscape, scenarios, breaks).burned
    return float(burned.sum(axis=(1, 2)).mean() / max(int(landscape.burnable.sum()), 1))


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % confidence interval (Student t)."""
    from scipy import stats

    values = np.asarray(values, float)
    if values.size < 2:
        return float(values.mean()), math.nan
    half = stats.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size)
    return float(values.mean()), float(half)


def evaluate(
    policies: dict[str, Callable[[int], Policy]],
    landscapes: Sequence[Landscape],
    *,
    budget: float = 0.05,
    n_scenarios: int = 64,
    progress: bool = True,
) -> dict[str, dict[str, np.ndarray]]:
    """Per policy, per landscape: burned fraction under the scoring fires with the policy's
    breaks, and untreated.

    `policies` maps a name to a factory taking a seed (the landscape's evaluation seed)."""
    results = {name: {"burned": [], "untreated": []} for name in policies}
    bar = tqdm(total=len(landscapes) * len(policies), desc="evaluating", unit="episode",
               disable=not progress, file=sys.stderr)
    for i, landscape in enumerate(landscapes):
        env = FuelBreakEnv([landscape], budget=budget, n_scenarios=n_scenarios)
        seed = EVAL_SEED_BASE + i
        scoring = ScenarioSampler(SCORING_SEED_BASE + i, env.season).sample(landscape, n_scenarios)
        untreated = burned_fraction(landscape, scoring)
        for name, make_policy in policies.items():
            run_episode(env, make_policy(seed), seed)
            results[name]["burned"].append(burned_fraction(landscape, scoring, env.simulator.breaks))
            results[name]["untreated"].append(untreated)
            bar.update()
    bar.close()
    return {name: {k: np.asarray(v) for k, v in r.items()} for name, r in results.items()}


#: The placement heuristics (`firebreak.placement.BASELINES` less random): the bar a learned
#: policy has to clear.
HEURISTICS = ("burnprob", "dpv", "domirank")


def format_table(results: dict[str, dict[str, np.ndarray]]) -> str:
    """A Markdown table of `evaluate`'s results. With a 'random' row, a column of per-landscape
    ratios to random; with any heuristic rows, a column of per-landscape ratios to the best of
    them (lowest mean burned fraction), each with its 95 % CI."""
    columns = []  # (header, per-landscape burned of the reference)
    if "random" in results:
        columns.append(("burned / random", results["random"]["burned"]))
    heuristics = [name for name in HEURISTICS if name in results]
    if heuristics:
        best = min(heuristics, key=lambda name: results[name]["burned"].mean())
        columns.append((f"burned / best heuristic ({best})", results[best]["burned"]))
    lines = ["| policy | burned fraction (95 % CI) | reduction vs untreated |"
             + "".join(f" {header} (95 % CI) |" for header, _ in columns),
             "|---|---|---|" + "---|" * len(columns)]
    for name, r in results.items():
        burned, half = mean_ci(r["burned"])
        reduction = float(np.mean(1.0 - r["burned"] / r["untreated"]))
        ratios = "".join(" {:.3f} ± {:.3f} |".format(*mean_ci(r["burned"] / reference)) for _, reference in columns)
        lines.append(f"| {name} | {burned:.4f} ± {half:.4f} | {reduction:.1%} |{ratios}")
    untreated, half = mean_ci(next(iter(results.values()))["untreated"])
    lines.append(f"| untreated | {untreated:.4f} ± {half:.4f} | 0.0% |" + " |" * len(columns))
    return "\n".join(lines)


def checkpoint_policy(path: str) -> Callable[[int], Policy]:
    """A policy factory for a training checkpoint: greedy masked argmax of its Q-network."""
    from .dqn.checkpoint import load_checkpoint
    from .dqn.policy import QPolicy

    payload = load_checkpoint(path)
    model = payload["model"]
    greedy = QPolicy(model["kind"], model["kwargs"], int(model["obs_shape"][0]), epsilon=0.0, torch_threads=None)
    greedy.set_weights({"weights": payload["learner"]["dqn"]["q_network"], "epsilon": 0.0})
    return lambda seed: (lambda env: greedy.greedy(env.observation(), env.action_masks()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firebreak.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", action="append", metavar="NAME|CHECKPOINT",
                        help=f"a baseline ({', '.join(BASELINES)}) or a training checkpoint (.pt); "
                             "repeatable; default: all baselines")
    parser.add_argument("--landscapes", default="sample:64",
                        help="landscape source (default: sample:64, the bundled 64x64 tiles)")
    parser.add_argument("--split", choices=["train", "holdout", "all"], default="holdout",
                        help="for the bundled sample tiles: which split (default holdout)")
    parser.add_argument("--budget", type=float, default=0.05, help="share of cells treated (default 0.05)")
    parser.add_argument("--scenarios", type=int, default=64, help="fires per landscape (default 64)")
    args = parser.parse_args(argv)
    source = args.landscapes
    if source.startswith("sample:") and source.count(":") == 1:
        source = f"{source}:{args.split}"
    names = args.policy or list(BASELINES)
    if "random" not in names:
        names = ["random"] + names  # the ratio column needs it
    policies = {}
    for name in names:
        if name in BASELINES:
            policies[name] = BASELINES[name]
        elif name.endswith(".pt"):
            from .dqn.checkpoint import CheckpointError

            try:
                policies[name] = checkpoint_policy(name)
            except CheckpointError as err:
                parser.error(str(err))
        else:
            parser.error(f"--policy {name!r}: not a baseline ({', '.join(BASELINES)}) nor a .pt checkpoint")
    landscapes = load_landscapes(source)
    results = evaluate(policies, landscapes, budget=args.budget, n_scenarios=args.scenarios)
    print(f"{len(landscapes)} landscapes from {source}, budget {args.budget:.0%} of cells, "
          f"{args.scenarios} scenarios each")
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
