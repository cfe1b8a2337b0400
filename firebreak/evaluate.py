"""Evaluate placement policies on held-out landscapes at a simulation budget:
``python -m firebreak.evaluate``.

Every policy faces the same fires on each landscape (common random numbers): landscape i is
played from ``reset(seed=EVAL_SEED_BASE + i)``, whose N *planning fires* the policy may look at
while it places breaks (heuristics rank on them; a checkpoint's observation layers are computed
from them). Its final breaks are then scored on a second, independent set of fires from the
same fire season (seed ``SCORING_SEED_BASE + i``; ``--scenarios`` of them, the same for every
N): the score is the expected burned area under fires the policy never saw, so fitting the
planning fires earns nothing. Training seeds stay below 2**31 and both evaluation bases lie
above 2**40, so evaluation fires are never trained on. The default landscapes are the held-out
split of the bundled real tiles (`firebreak.landscape.sample_tiles`): they neighbour the
training tiles on one raster. ``synthetic:<size>[:<kind>]`` gives a second held-out set of
different terrain: synthetic landscapes from seeds 2**31 + i (training draws below 2**31), the
kinds cycling unless one is named. Besides the planners by name and training checkpoints (.pt),
``search:<K>`` is the search planner trying the top K DPV cells per step (``search`` tries 64),
and ``search:<checkpoint.pt>`` the search planner trying the checkpoint's top 64 Q cells instead
of DPV's (the network proposes, the planning fires decide).

Fires are free to sample, so a planner is judged at a simulation budget: with
``--planning-fires 64,256,1024`` every policy plans on each N in turn, and each N gets its own
table: mean burned fraction (of burnable cells) under the scoring fires with a 95 % confidence
interval over landscapes, reduction vs untreated, CPU seconds per landscape (planning: the
fires, the policy's choices), and per-landscape ratios to random, to the best heuristic at that
N and to the best heuristic at 4N (when 4N is among the budgets), with their 95 % CIs. With
``--out DIR`` the run also writes frontier.json, frontier.md and frontier.png (burned fraction
vs CPU seconds per landscape, one line per policy), after each N (a long run keeps what it finished).
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from .env import FuelBreakEnv
from .fire import ScenarioSampler, simulate_many
from .env import SYNTHETIC_KINDS
from .landscape import Landscape, load_landscapes, synthetic_landscape
from .placement import PLANNERS, GreedySearchPolicy, Policy, run_episode

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
    planning_fires: int | None = None,
    first_index: int = 0,
    progress: bool = True,
    warm: bool = True,
) -> dict[str, dict[str, np.ndarray]]:
    """Per policy, per landscape: burned fraction under the `n_scenarios` scoring fires with the
    policy's breaks ("burned"), untreated ("untreated"), and the CPU seconds the policy's episode
    took ("cpu_seconds": simulating its `planning_fires` planning fires, default `n_scenarios`,
    and choosing every break).

    `policies` maps a name to a factory taking a seed (the landscape's evaluation seed).
    `first_index`: the index of ``landscapes[0]`` in its set (its seeds; for a share of a set).
    `warm`: first compile and run every policy once untimed (one break on two fires), so that
    "cpu_seconds" holds no compilation; off when those seconds are not used (training's evaluation)."""
    planning_fires = n_scenarios if planning_fires is None else int(planning_fires)
    results = {name: {"burned": [], "untreated": [], "cpu_seconds": []} for name in policies}
    bar = tqdm(total=len(landscapes) * len(policies), desc=f"evaluating at {planning_fires} fires",
               unit="episode", disable=not progress, file=sys.stderr)
    for i, landscape in enumerate(landscapes, first_index):
        if warm and i == first_index:  # compile (numba) and warm every policy untimed: one break on two fires
            warm_env = FuelBreakEnv([landscape], budget=0.5 / landscape.fuel_model.size, n_scenarios=2)
            for make_policy in policies.values():
                run_episode(warm_env, make_policy(EVAL_SEED_BASE + i), EVAL_SEED_BASE + i)
        env = FuelBreakEnv([landscape], budget=budget, n_scenarios=planning_fires)
        seed = EVAL_SEED_BASE + i
        scoring = ScenarioSampler(SCORING_SEED_BASE + i, env.season).sample(landscape, n_scenarios)
        untreated = burned_fraction(landscape, scoring)
        for name, make_policy in policies.items():
            policy = make_policy(seed)
            started = time.process_time()
            run_episode(env, policy, seed)
            results[name]["cpu_seconds"].append(time.process_time() - started)
            results[name]["burned"].append(burned_fraction(landscape, scoring, env.simulator.breaks))
            results[name]["untreated"].append(untreated)
            bar.update()
    bar.close()
    return {name: {k: np.asarray(v) for k, v in r.items()} for name, r in results.items()}


#: The placement heuristics (`firebreak.placement.PLANNERS` less random): the bar a learned
#: policy has to clear. "search" spends simulations on the objective itself (3.5-4 x DPV's CPU
#: time on the held-out tiles, README "Learning quality"); so does "search:<K>", with K candidates.
HEURISTICS = ("burnprob", "dpv", "domirank", "search")


def is_heuristic(name: str) -> bool:
    """Whether policy `name` is a non-learned planner: one of `HEURISTICS` or ``search:<K>``."""
    return name in HEURISTICS or (name.startswith("search:") and name[len("search:"):].isdigit())


def best_heuristic(results: dict[str, dict[str, np.ndarray]]) -> str | None:
    """The heuristic of `results` with the lowest mean burned fraction (None without any)."""
    heuristics = [name for name in results if is_heuristic(name)]
    return min(heuristics, key=lambda name: results[name]["burned"].mean()) if heuristics else None


def format_table(results: dict[str, dict[str, np.ndarray]],
                 four_n: dict[str, dict[str, np.ndarray]] | None = None) -> str:
    """A Markdown table of `evaluate`'s results. With a 'random' row, a column of per-landscape
    ratios to random; with any heuristic rows, a column of per-landscape ratios to the best of
    them (lowest mean burned fraction), and with `four_n` (`evaluate` on the same landscapes and
    scoring fires at 4x the planning fires) one to the best heuristic there; each with its 95 % CI."""
    columns = []  # (header, per-landscape burned of the reference)
    if "random" in results:
        columns.append(("burned / random", results["random"]["burned"]))
    best = best_heuristic(results)
    if best:
        columns.append((f"burned / best heuristic ({best})", results[best]["burned"]))
    best_4n = best_heuristic(four_n) if four_n else None
    if best_4n:
        columns.append((f"burned / best heuristic at 4N ({best_4n})", four_n[best_4n]["burned"]))
    timed = all("cpu_seconds" in r for r in results.values())
    lines = ["| policy | burned fraction (95 % CI) | reduction vs untreated |"
             + (" CPU s per landscape |" if timed else "")
             + "".join(f" {header} (95 % CI) |" for header, _ in columns),
             "|---|---|---|" + "---|" * (len(columns) + timed)]
    for name, r in results.items():
        burned, half = mean_ci(r["burned"])
        reduction = float(np.mean(1.0 - r["burned"] / r["untreated"]))
        cpu = f" {r['cpu_seconds'].mean():.2f} |" if timed else ""
        ratios = "".join(" {:.3f} ± {:.3f} |".format(*mean_ci(r["burned"] / reference)) for _, reference in columns)
        lines.append(f"| {name} | {burned:.4f} ± {half:.4f} | {reduction:.1%} |{cpu}{ratios}")
    untreated, half = mean_ci(next(iter(results.values()))["untreated"])
    lines.append(f"| untreated | {untreated:.4f} ± {half:.4f} | 0.0% |" + " |" * (len(columns) + timed))
    return "\n".join(lines)


def eval_landscapes(source: str, split: str = "holdout", n: int | None = None) -> list[Landscape]:
    """The landscapes of `source`: the bundled tiles (``sample:<size>``, of `split`), a path, or
    ``synthetic:<size>[:<kind>]`` (held-out synthetic terrain: seeds 2**31 + i, above every
    training draw; the kinds cycle unless one is named). `n` keeps the first n (synthetic: 8 by
    default)."""
    if source.startswith("synthetic:"):
        _, size, *kind = source.split(":")
        if not size.isdigit() or len(kind) > 1 or (kind and kind[0] not in SYNTHETIC_KINDS + ("timber",)):
            raise ValueError(f"landscapes {source!r}: give synthetic:<size>[:<kind>], kind one of "
                             f"{', '.join(SYNTHETIC_KINDS + ('timber',))}")
        kinds = kind or list(SYNTHETIC_KINDS + ("timber",))
        return [synthetic_landscape((int(size),) * 2, 2**31 + i, kind=kinds[i % len(kinds)]) for i in range(n or 8)]
    if source.startswith("sample:") and source.count(":") == 1:
        source = f"{source}:{split}"
    landscapes = load_landscapes(source)
    return landscapes[:n] if n else landscapes


def _checkpoint_q(path: str):
    """(the checkpoint's Q-network as a CPU `QPolicy`, the observation layers it reads)."""
    from .dqn.checkpoint import load_checkpoint
    from .dqn.exploration import QPolicy

    payload = load_checkpoint(path)
    model = payload["model"]
    greedy = QPolicy(model["kind"], model["kwargs"], int(model["obs_shape"][0]), epsilon=0.0, torch_threads=None)
    greedy.set_weights({"weights": payload["learner"]["dqn"]["q_network"], "epsilon": 0.0})
    return greedy, model.get("obs_layers") or None  # the layers it was trained on, in their order


def checkpoint_policy(path: str) -> Callable[[int], Policy]:
    """A policy factory for a training checkpoint: greedy masked argmax of its Q-network."""
    greedy, layers = _checkpoint_q(path)
    return lambda seed: (lambda env: greedy.greedy(env.observation(layers), env.action_masks()))


def checkpoint_search(path: str, candidates: int = 64) -> Callable[[int], Policy]:
    """A policy factory for ``search:<checkpoint>``: the search planner (`GreedySearchPolicy`)
    trying the checkpoint's top-`candidates` Q cells, not DPV's: the network proposes, the
    planning fires decide."""
    greedy, layers = _checkpoint_q(path)
    q_values = lambda env: greedy.q_values(env.observation(layers))
    return lambda seed: GreedySearchPolicy(candidates, prior=q_values)


def policy_factory(name: str) -> Callable[[int], Policy]:
    """The factory of a `PLANNERS` name, ``search:<K>`` (the search planner on the top K DPV
    cells), a training checkpoint path (.pt) or ``search:<checkpoint>``."""
    if name in PLANNERS:
        return PLANNERS[name]
    if is_heuristic(name):  # search:<K>
        candidates = int(name[len("search:"):])
        if candidates < 1:
            raise ValueError(f"policy {name!r}: give search:<K> with K >= 1 candidate cells per step")
        return lambda seed: GreedySearchPolicy(candidates)
    if str(name).endswith(".pt"):
        if str(name).startswith("search:"):
            return checkpoint_search(name[len("search:"):])
        return checkpoint_policy(name)
    raise ValueError(f"policy {name!r}: not a planner ({', '.join(PLANNERS)}), search:<K> (K a whole "
                     "number of candidate cells), a .pt checkpoint nor search:<checkpoint.pt>")


def _start_worker(parent_pid: int) -> None:
    """A worker process ends with the evaluation that started it, even one killed outright
    (SIGKILL leaves no chance to stop the pool): Linux sends it SIGKILL when its parent dies."""
    import ctypes
    import os
    import signal

    import torch

    torch.set_num_threads(1)  # one process per core: the workers are the parallelism
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent_pid:  # the parent died before the line above
            os._exit(1)


def _evaluate_worker(names: list[str], landscape: Landscape, index: int, **kwargs):
    """`_evaluate_at` in a worker process, returning the landscape's index with its results."""
    return index, _evaluate_at(names, landscape, index, **kwargs)


def _kill_pool(pool) -> None:
    """Stop a ProcessPoolExecutor now: its running jobs too (`shutdown` would wait for them)."""
    for process in list(pool._processes.values()):  # no public way before Python 3.14 (kill_workers)
        process.kill()
    pool.shutdown(wait=True, cancel_futures=True)


def _evaluate_at(names, landscape, index, **kwargs):
    """`evaluate` of the named policies on one landscape, number `index` of its set (its seeds)."""
    policies = {name: policy_factory(name) for name in names}
    return evaluate(policies, [landscape], first_index=index, progress=False, **kwargs)


def evaluate_budgets(names: Sequence[str], landscapes: Sequence[Landscape], budgets: Sequence[int], *,
                     budget: float = 0.05, n_scenarios: int = 64, workers: int = 1, progress: bool = True,
                     on_budget: Callable[[dict], None] | None = None) -> dict[int, dict[str, dict[str, np.ndarray]]]:
    """`evaluate` of the named policies (`policy_factory`) at each planning-fire count of
    `budgets`; {N: results}. With `workers` > 1 the landscapes run in that many processes (CPU
    seconds stay per landscape and per policy, as in one process). `on_budget(frontier)` is
    called after each count (e.g. to save what is done: a long run keeps its finished budgets)."""
    frontier = {}
    for n in budgets:
        kwargs = dict(budget=budget, n_scenarios=n_scenarios, planning_fires=int(n))
        per_landscape = [None] * len(landscapes)
        bar = tqdm(total=len(landscapes), desc=f"planning on {n} fires", unit="landscape",
                   disable=not progress, file=sys.stderr)
        if workers > 1:
            import multiprocessing
            import os
            from concurrent.futures import ProcessPoolExecutor, as_completed

            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_start_worker, initargs=(os.getpid(),))
            try:
                jobs = [pool.submit(_evaluate_worker, list(names), landscape, i, **kwargs)
                        for i, landscape in enumerate(landscapes)]
                for job in as_completed(jobs):
                    i, per_landscape[i] = job.result()
                    bar.update()
            except BaseException:  # Ctrl-C, SIGTERM (main), a failed job: no worker goes on computing
                _kill_pool(pool)
                raise
            pool.shutdown()
        else:
            for i, landscape in enumerate(landscapes):
                per_landscape[i] = _evaluate_at(names, landscape, i, **kwargs)
                bar.update()
        bar.close()
        frontier[int(n)] = {name: {key: np.concatenate([r[name][key] for r in per_landscape])
                                   for key in per_landscape[0][name]} for name in names}
        if on_budget:
            on_budget(frontier)
    return frontier


def format_frontier(frontier: dict[int, dict[str, dict[str, np.ndarray]]]) -> str:
    """One Markdown table per planning-fire count (`format_table`, with the 4N column where 4N was run)."""
    return "\n\n".join(f"**{n} planning fires per landscape**\n\n{format_table(results, frontier.get(4 * n))}"
                       for n, results in sorted(frontier.items()))


def save_frontier(frontier, out: Path, meta: dict) -> None:
    """frontier.json (every per-landscape figure and `meta`), frontier.md and frontier.png in `out`."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta, "budgets": {str(n): {name: {k: v.tolist() for k, v in r.items()}
                                               for name, r in results.items()} for n, results in frontier.items()}}
    (out / "frontier.json").write_text(json.dumps(data, indent=1))
    (out / "frontier.md").write_text(format_frontier(frontier) + "\n")
    plot_frontier(frontier, out / "frontier.png")


def load_frontier(path: Path) -> dict[int, dict[str, dict[str, np.ndarray]]]:
    """The frontier saved by `save_frontier` (frontier.json)."""
    import json

    data = json.loads(Path(path).read_text())
    return {int(n): {name: {k: np.asarray(v) for k, v in r.items()} for name, r in results.items()}
            for n, results in data["budgets"].items()}


def plot_frontier(frontier, path: Path) -> None:
    """Mean burned fraction vs mean CPU seconds per landscape, one line per policy through its
    planning-fire counts (log CPU axis), with 95 % CI bars over landscapes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(next(iter(frontier.values())))
    fig, ax = plt.subplots(figsize=(7.5, 4.5 + 0.2 * len(names)))
    for name in names:
        points = [(r[name]["cpu_seconds"].mean(), *mean_ci(r[name]["burned"]), n)
                  for n, r in sorted(frontier.items()) if name in r]
        cpu, burned, half, ns = map(np.asarray, zip(*points))
        line = ax.errorbar(cpu, burned, yerr=np.nan_to_num(half), marker="o", capsize=3, label=name)
        for x, y, n in zip(cpu, burned, ns):
            ax.annotate(f"{int(n)}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7,
                        color=line[0].get_color())
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # labelled minor ticks overlap
    ax.set_xlabel("CPU seconds per landscape (planning)")
    ax.set_ylabel("burned fraction under the scoring fires")
    ax.set_title("burned vs compute (labels: planning fires)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)  # below: the lines overlap
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firebreak.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", action="append", metavar="NAME|CHECKPOINT",
                        help=f"a planner ({', '.join(PLANNERS)}), search:<K> (the search planner trying the "
                             "top K DPV cells; search is search:64), a training checkpoint (.pt), or "
                             "search:<checkpoint.pt> (the search planner trying the checkpoint's top cells); "
                             "repeatable; default: every planner")
    parser.add_argument("--landscapes", default="sample:64",
                        help="landscape source (default: sample:64, the bundled 64x64 tiles; "
                             "synthetic:<size>[:<kind>] for held-out synthetic terrain)")
    parser.add_argument("--split", choices=["train", "holdout", "all"], default="holdout",
                        help="for the bundled sample tiles: which split (default holdout)")
    parser.add_argument("--tiles", type=int, default=None, help="use the first N landscapes (default: all; "
                        "synthetic: 8)")
    parser.add_argument("--budget", type=float, default=0.05, help="share of cells treated (default 0.05)")
    parser.add_argument("--scenarios", type=int, default=64, help="scoring fires per landscape (default 64)")
    parser.add_argument("--planning-fires", default=None, metavar="N[,N...]",
                        help="planning fires per landscape, one table per count (default: --scenarios)")
    parser.add_argument("--workers", type=int, default=1, help="processes, one landscape each (default 1)")
    parser.add_argument("--out", type=Path, default=None,
                        help="write frontier.json, frontier.md and frontier.png there")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminated)  # as Ctrl-C: the workers are stopped, finished budgets kept
    try:
        budgets = [int(n) for n in (args.planning_fires or str(args.scenarios)).split(",")]
    except ValueError:
        parser.error(f"--planning-fires {args.planning_fires!r}: give whole numbers separated by commas, e.g. 64,256,1024")
    if min(budgets) < 1 or args.scenarios < 1 or args.workers < 1:
        parser.error("--planning-fires, --scenarios and --workers must be positive")
    names = args.policy or list(PLANNERS)
    if "random" not in names:
        names = ["random"] + names  # the ratio column needs it
    for name in names:
        try:
            policy_factory(name)  # fail before any work: unknown names, unreadable checkpoints
        except ValueError as err:
            parser.error(str(err))
        except OSError as err:  # a checkpoint that cannot be read (CheckpointError is a ValueError)
            parser.error(f"--policy {name}: {err}")
    try:
        landscapes = eval_landscapes(args.landscapes, args.split, args.tiles)
    except ValueError as err:
        parser.error(str(err))
    started = time.perf_counter()
    meta = {"landscapes": args.landscapes, "split": args.split, "tiles": len(landscapes), "budget": args.budget,
            "scoring_fires": args.scenarios, "policies": names}
    save = (lambda frontier: save_frontier(frontier, args.out, meta)) if args.out else None
    frontier = evaluate_budgets(names, landscapes, budgets, budget=args.budget, n_scenarios=args.scenarios,
                                workers=args.workers, on_budget=save)
    print(f"{len(landscapes)} landscapes from {args.landscapes} ({args.split}), budget {args.budget:.0%} of cells, "
          f"{args.scenarios} scoring fires each, planning on {', '.join(map(str, budgets))}; "
          f"{time.perf_counter() - started:.0f} s wall with {args.workers} worker(s)")
    print(format_frontier(frontier))
    if args.out:
        print(f"wrote {args.out / 'frontier.json'}, frontier.md, frontier.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
