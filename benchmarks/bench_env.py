"""Env steps per second in one process, incremental vs full re-simulation, on real tiles.

    python benchmarks/bench_env.py [--scenarios 16] [--budget 0.05] [--tiles 1]

For each tile size (64 and 128 cells of the bundled Worcester landscape), plays whole episodes
with the burn-probability policy (it treats burned cells, the case in which re-simulation is
needed) twice on the same fires: through `FuelBreakEnv.step` (incremental: only the scenarios a
new break can change are re-run) and with a full re-simulation of every scenario after every
break (what an env without incremental re-simulation does). Both produce the same burned areas
(checked); the table shows steps/s and the ratio. Reset time (the untreated fires and the
observation) is excluded from both.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from firebreak.env import FuelBreakEnv
from firebreak.fire import simulate_many
from firebreak.landscape import sample_tiles
from firebreak.placement import BurnProbabilityPolicy


def _episode(env: FuelBreakEnv, seed: int, full: bool) -> tuple[int, float, float]:
    """(steps, seconds in steps, final mean burned cells)."""
    env.reset(seed=seed)
    policy, steps, seconds, done = BurnProbabilityPolicy(), 0, 0.0, False
    scenarios = env.simulator.scenarios
    while not done:
        action = policy(env)
        started = time.perf_counter()
        if full:
            breaks = env.simulator.breaks.copy()
            breaks.flat[action] = True
            burned = simulate_many(env.landscape, scenarios, breaks).burned
            seconds += time.perf_counter() - started
            done = env.step(action)[2]  # keeps the policy's view in step; not timed
            assert np.array_equal(burned, env.simulator.burned)
        else:
            done = env.step(action)[2]
            seconds += time.perf_counter() - started
        steps += 1
    return steps, seconds, float(env.simulator.burned.sum(axis=(1, 2)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", type=int, default=16)
    parser.add_argument("--budget", type=float, default=0.05)
    parser.add_argument("--tiles", type=int, default=1, help="tiles per size")
    args = parser.parse_args()
    FuelBreakEnv(["synthetic:32"], n_scenarios=1).reset(seed=0)  # JIT warm-up
    print(f"machine: {platform.processor() or platform.machine()}, 1 process; {args.scenarios} scenarios, "
          f"budget {args.budget:.0%}, burn-probability policy")
    print("| tile | steps | incremental steps/s | full re-simulation steps/s | incremental / full |")
    print("|---|---|---|---|---|")
    for size in (64, 128):
        tiles = sample_tiles(size, "all")[: args.tiles]
        totals = {False: [0, 0.0], True: [0, 0.0]}
        for i, tile in enumerate(tiles):
            env = FuelBreakEnv([tile], n_scenarios=args.scenarios, budget=args.budget)
            for full in (False, True):
                steps, seconds, _ = _episode(env, i, full)
                totals[full][0] += steps
                totals[full][1] += seconds
        inc, full = (totals[k][0] / totals[k][1] for k in (False, True))
        print(f"| {size}x{size} real x{len(tiles)} | {totals[False][0]} | {inc:,.0f} | {full:,.0f} | {inc / full:.1f}x |")


if __name__ == "__main__":
    main()
