"""Fire simulator benchmark: `python benchmarks/bench_fire.py` prints tables.

1. JIT compile time (a fresh process with an empty Numba cache) and first-call time with the
   on-disk cache.
2. Per tile size (64, 128, 256) and landscape kind (our mixed grass/shrub patches, the
   landscape layer's `synthetic_landscape`, windows of the bundled real Worcester tile):
   simulations per second (fire behaviour + move costs + Dijkstra), and microseconds per
   burned cell, for the Dijkstra alone and for the whole simulation; scenarios from the env's
   default fire season (`firebreak.env.DEFAULT_SEASON`, 12-24 h burns: the workload training
   runs), one core, best of 3 runs per scenario.
3. Incremental vs full re-simulation in an episode-like sequence: 64 x 64, 32 scenarios,
   breaks on 5 % of the cells placed one at a time on burned cells.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firebreak.fire import IncrementalSimulator, ScenarioSampler, simulate, simulate_many  # noqa: E402
from firebreak.fire.simulate import _prepare, _run  # noqa: E402
from firebreak.env import DEFAULT_SEASON  # noqa: E402
from firebreak.landscape import Landscape, sample_landscape, synthetic_landscape  # noqa: E402

GRASS_SHRUB = [101, 102, 104, 107, 121, 122, 123, 124, 141, 142, 145, 147, 149]


def mixed_grass_shrub(n: int, seed: int = 0, block: int = 8) -> Landscape:
    rng = np.random.default_rng(seed)
    codes = rng.choice(GRASS_SHRUB, size=(n // block, n // block))
    fuel = np.kron(codes, np.ones((block, block), int)).astype(np.int16)
    z = np.zeros((n, n), np.float32)
    return Landscape(fuel_model=fuel, slope=z + 0.15, aspect=z + 200.0, elevation=z, canopy_cover=z,
                     canopy_height=z, canopy_base_height=z, canopy_bulk_density=z)


def real_window(n: int) -> Landscape:
    land = sample_landscape()
    rows, cols = land.shape
    # the window with the most burnable cells among a few candidates
    best = max(((r, c) for r in range(0, rows - n, max(1, (rows - n) // 4)) for c in range(0, cols - n, max(1, (cols - n) // 4))),
               key=lambda rc: land.burnable[rc[0]:rc[0] + n, rc[1]:rc[1] + n].sum())
    return land.window(best[0], best[1], n, n)


def first_call_seconds() -> float:
    land = mixed_grass_shrub(16)
    start = time.perf_counter()
    simulate(land, ScenarioSampler(0).sample(land, 1)[0])
    return time.perf_counter() - start


def cold_compile_seconds() -> float:
    """First-call time in a fresh process with an empty Numba cache: the full JIT compile."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        code = "import bench_fire; print(bench_fire.first_call_seconds())"
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=Path(__file__).parent, check=True,
                             capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def bench_size(land: Landscape, n_scenarios: int = 16, repeats: int = 3) -> dict[str, float]:
    scenarios = ScenarioSampler(1, DEFAULT_SEASON).sample(land, n_scenarios)
    breaks = np.zeros(land.shape, bool)
    simulate_many(land, scenarios[:1])  # warm
    t_prep = t_dijkstra = 0.0
    burned = 0
    for scenario in scenarios:  # best of `repeats`: the machine is shared, noise only adds time
        prep, dijkstra = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            prepared = _prepare(land, scenario)
            prep.append(time.perf_counter() - start)
            start = time.perf_counter()
            result = _run(prepared, breaks)
            dijkstra.append(time.perf_counter() - start)
        t_prep += min(prep)
        t_dijkstra += min(dijkstra)
        burned += int(result[1].sum())
    total = t_prep + t_dijkstra
    return {
        "sims_per_s": n_scenarios / total,
        "us_per_burned_dijkstra": t_dijkstra / max(burned, 1) * 1e6,
        "us_per_burned_total": total / max(burned, 1) * 1e6,
        "burned_fraction": burned / (n_scenarios * land.fuel_model.size),
        "prep_ms": t_prep / n_scenarios * 1e3,
        "dijkstra_ms": t_dijkstra / n_scenarios * 1e3,
    }


def bench_incremental(land: Landscape, n_scenarios: int = 32, budget: float = 0.05, full_every: int = 8):
    n = land.shape[0]
    scenarios = ScenarioSampler(3, DEFAULT_SEASON).sample(land, n_scenarios)
    inc = IncrementalSimulator(land, scenarios)
    rng = np.random.default_rng(0)
    prepared = [_prepare(land, s) for s in scenarios]
    steps = int(budget * n * n)
    t_inc = t_full = t_full_dijkstra = 0.0
    n_full = 0
    reruns = 0
    for step in range(steps):
        candidates = np.argwhere(inc.burned.any(axis=0) & ~inc.breaks)
        if len(candidates) == 0:
            candidates = np.argwhere(~inc.breaks)
        mask = np.zeros(land.shape, bool)
        mask[tuple(candidates[rng.integers(len(candidates))])] = True
        start = time.perf_counter()
        reruns += inc.add_breaks(mask)
        t_inc += time.perf_counter() - start
        if step % full_every == 0:  # the full alternatives, timed on a subset of steps
            start = time.perf_counter()
            simulate_many(land, scenarios, inc.breaks)
            t_full += time.perf_counter() - start
            start = time.perf_counter()
            for p in prepared:
                _run(p, inc.breaks)
            t_full_dijkstra += time.perf_counter() - start
            n_full += 1
    per_step_inc = t_inc / steps
    return {
        "steps": steps,
        "reruns_per_step": reruns / steps,
        "inc_ms": per_step_inc * 1e3,
        "full_ms": t_full / n_full * 1e3,
        "full_dijkstra_ms": t_full_dijkstra / n_full * 1e3,
        "speedup": (t_full / n_full) / per_step_inc,
        "speedup_vs_cached_costs": (t_full_dijkstra / n_full) / per_step_inc,
        "final_burned": inc.burned.mean(),
    }


def main() -> None:
    print(f"JIT compile, empty cache (fresh process): {cold_compile_seconds():.1f} s")
    print(f"first call with the on-disk cache:        {first_call_seconds():.2f} s")
    print()
    header = f"{'landscape':<22}{'size':>6}{'sims/s':>9}{'burned':>8}{'prep ms':>9}{'MTT ms':>8}{'us/burned MTT':>15}{'us/burned all':>15}"
    print(header)
    print("-" * len(header))
    kinds = {
        "grass/shrub patches": mixed_grass_shrub,
        "synthetic_landscape": lambda n: synthetic_landscape((n, n), seed=0),
        "Worcester VT (real)": real_window,
    }
    for name, make in kinds.items():
        for n in (64, 128, 256):
            r = bench_size(make(n))
            print(f"{name:<22}{n:>6}{r['sims_per_s']:>9.0f}{r['burned_fraction']:>8.1%}{r['prep_ms']:>9.2f}"
                  f"{r['dijkstra_ms']:>8.2f}{r['us_per_burned_dijkstra']:>15.2f}{r['us_per_burned_total']:>15.2f}")
    print()
    print("episode: 64x64, 32 scenarios, 5 % of the cells made breaks one at a time, on burned cells")
    header = (f"{'landscape':<22}{'burned end':>11}{'re-run/32':>10}{'incr. ms':>9}{'full ms':>9}{'x full':>8}"
              f"{'Dijkstra ms':>12}{'x Dijkstra':>11}")
    print(header)
    print("-" * len(header))
    for name, make in kinds.items():
        r = bench_incremental(make(64))
        print(f"{name:<22}{r['final_burned']:>11.1%}{r['reruns_per_step']:>10.1f}{r['inc_ms']:>9.2f}{r['full_ms']:>9.2f}"
              f"{r['speedup']:>8.1f}{r['full_dijkstra_ms']:>12.2f}{r['speedup_vs_cached_costs']:>11.1f}")
    print("(x full: vs simulate_many of every scenario; x Dijkstra: vs re-running every scenario's "
          "search with its move costs cached)")


if __name__ == "__main__":
    main()
