"""Fire simulator benchmark: `python benchmarks/bench_fire.py` prints tables, all measured in this
one run (one core, best of `--repeats` per fire; the machine may be shared, noise only adds time).

1. JIT compile time (a fresh process with an empty Numba cache) and the first call with the
   on-disk cache.
2. Small real fires, side by side with pyretechnics: the 8 held-out 64 x 64 tiles of the bundled
   real landscape, 16 fires each from the default fire season with 3-6 h burns (about 30 cells,
   0.7 % of a tile, the fires a burn-probability run simulates by the thousand). Ours: a whole
   `simulate()` per burned cell (target <= 2 us). pyretechnics: its level-set spread
   (`spread_fire_with_phi_field`) on the same layers (rows flipped: its row 0 is the south edge),
   ignition cell, weather and duration; the ratio is its time per burned cell over ours (target
   >= 10). pyretechnics is optional and never a dependency: install it from its source
   distribution into its own environment and name that environment's python with
   ``--pyretechnics`` (default /tmp/pyretechnics-venv/bin/python); without it the table has our
   rows only.
3. Per tile size (64, 128, 256) and landscape kind (mixed grass/shrub patches, the landscape
   layer's `synthetic_landscape`, windows of the bundled real landscape) under the env's fire
   season (12-24 h burns): `simulate()`, which computes fire behaviour only where the fire goes,
   against the previous pipeline, every cell's behaviour up front and then the search (the
   "all cells" column); fires covering most of a tile must be no slower.
4. Incremental vs full re-simulation in an episode-like sequence: 64 x 64, 32 scenarios, breaks
   on 5 % of the cells placed one at a time on burned cells (how `FuelBreakEnv` steps).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firebreak.env import DEFAULT_SEASON  # noqa: E402
from firebreak.fire import (FireSeason, IncrementalSimulator, ScenarioSampler, simulate, simulate_many,  # noqa: E402
                            surface_fire)
from firebreak.fire import spread  # noqa: E402
from firebreak.fire.fuel_models import FUEL_ARRAY  # noqa: E402
from firebreak.landscape import Landscape, sample_landscape, sample_tiles, synthetic_landscape  # noqa: E402

simulation = sys.modules["firebreak.fire.simulation"]
GRASS_SHRUB = [101, 102, 104, 107, 121, 122, 123, 124, 141, 142, 145, 147, 149]
SMALL_FIRES = FireSeason(duration_min=(180.0, 360.0))
PEER = Path(__file__).with_name("_pyretechnics_peer.py")


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
    best = max(((r, c) for r in range(0, rows - n, max(1, (rows - n) // 4))
                for c in range(0, cols - n, max(1, (cols - n) // 4))),
               key=lambda rc: land.burnable[rc[0]:rc[0] + n, rc[1]:rc[1] + n].sum())
    return land.window(best[0], best[1], n, n)


def first_call_seconds() -> float:
    land = mixed_grass_shrub(16)
    start = time.perf_counter()
    simulate(land, ScenarioSampler(0).sample(land, 1)[0])
    IncrementalSimulator(land, ScenarioSampler(0).sample(land, 1))
    return time.perf_counter() - start


def cold_compile_seconds() -> float:
    """First-call time in a fresh process with an empty Numba cache: the full JIT compile."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        code = "import bench_fire; print(bench_fire.first_call_seconds())"
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=Path(__file__).parent, check=True,
                             capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def best_seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def every_cell_up_front(land, scenario):
    """The previous pipeline: fire behaviour of every cell, then the search."""
    behaviour = surface_fire(land, scenario.weather)
    cells = spread.Cells.from_behaviour(behaviour, land.slope, FUEL_ARRAY.shape[0], keep_costs=False)
    args = simulation._burn_args(land, scenario, "scott_reinhardt", None)
    return simulation._burn(args, scenario, np.zeros(land.shape, bool), cells.args())


def small_fires():
    tiles = sample_tiles(64, "holdout")
    return tiles, [ScenarioSampler(1000 + i, SMALL_FIRES).sample(tile, 16) for i, tile in enumerate(tiles)]


def bench_small_fires(repeats: int) -> dict:
    tiles, scenarios = small_fires()
    simulate(tiles[0], scenarios[0][0])  # warm
    seconds = burned = fires = 0
    for tile, fires_of_tile in zip(tiles, scenarios):
        for scenario in fires_of_tile:
            seconds += best_seconds(lambda: simulate(tile, scenario), repeats)
            burned += int(simulate(tile, scenario).burned.sum())
            fires += 1
    return {"fires": fires, "burned": burned / fires, "us_per_fire": seconds / fires * 1e6,
            "us_per_burned": seconds / burned * 1e6}


def peer_inputs(path: Path) -> None:
    """The small fires as plain arrays for the pyretechnics process (which cannot import us)."""
    tiles, scenarios = small_fires()
    layers, fires = [], []
    for t, (tile, fires_of_tile) in enumerate(zip(tiles, scenarios)):
        layers.append(np.stack([tile.fuel_model, tile.slope, tile.aspect, tile.canopy_cover, tile.canopy_height,
                                tile.canopy_base_height, tile.canopy_bulk_density]).astype(np.float32))
        for s in fires_of_tile:
            m = s.moisture
            fires.append([t, *s.ignitions[0], s.wind_speed_kmh, s.wind_from_deg, m.dead_1h, m.dead_10h,
                          m.dead_100h, m.live_herb, m.live_woody, s.foliar_moisture, s.duration_min])
    np.savez(path, layers=np.stack(layers), fires=np.array(fires, np.float64), cell_size=tiles[0].cell_size)


def bench_pyretechnics(python: str, repeats: int) -> dict | str:
    """Run the peer in its own environment; a sentence instead of figures when it cannot run."""
    if not Path(python).exists():
        return f"pyretechnics not measured: no interpreter at {python} (see --pyretechnics)"
    with tempfile.TemporaryDirectory() as folder:
        inputs = Path(folder) / "fires.npz"
        peer_inputs(inputs)
        out = subprocess.run([python, str(PEER), str(inputs), str(repeats)], capture_output=True, text=True)
    if out.returncode != 0:
        return "pyretechnics not measured: " + (out.stderr.strip().splitlines() or ["it failed"])[-1]
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_size(land: Landscape, repeats: int, n_scenarios: int = 16) -> dict[str, float]:
    scenarios = ScenarioSampler(1, DEFAULT_SEASON).sample(land, n_scenarios)
    simulate(land, scenarios[0])  # warm
    every_cell_up_front(land, scenarios[0])
    t_lazy = t_eager = 0.0
    burned = 0
    for scenario in scenarios:
        t_lazy += best_seconds(lambda: simulate(land, scenario), repeats)
        t_eager += best_seconds(lambda: every_cell_up_front(land, scenario), repeats)
        burned += int(simulate(land, scenario).burned.sum())
    return {"sims_per_s": n_scenarios / t_lazy, "burned_fraction": burned / (n_scenarios * land.fuel_model.size),
            "us_lazy": t_lazy / max(burned, 1) * 1e6, "us_eager": t_eager / max(burned, 1) * 1e6,
            "speedup": t_eager / t_lazy}


def bench_incremental(land: Landscape, n_scenarios: int = 32, budget: float = 0.05, full_every: int = 8):
    n = land.shape[0]
    scenarios = ScenarioSampler(3, DEFAULT_SEASON).sample(land, n_scenarios)
    start = time.perf_counter()
    inc = IncrementalSimulator(land, scenarios)
    t_setup = time.perf_counter() - start
    rng = np.random.default_rng(0)
    steps = int(budget * n * n)
    t_inc = t_full = 0.0
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
        if step % full_every == 0:  # the full alternative, timed on a subset of steps
            start = time.perf_counter()
            simulate_many(land, scenarios, inc.breaks)
            t_full += time.perf_counter() - start
            n_full += 1
    per_step_inc = t_inc / steps
    return {"setup_ms": t_setup * 1e3, "reruns_per_step": reruns / steps, "inc_ms": per_step_inc * 1e3,
            "full_ms": t_full / n_full * 1e3, "speedup": (t_full / n_full) / per_step_inc,
            "final_burned": inc.burned.mean()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pyretechnics", default="/tmp/pyretechnics-venv/bin/python",
                        help="python of an environment with pyretechnics installed (optional peer)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per fire; the best counts")
    parser.add_argument("--no-sizes", action="store_true", help="skip tables 3 and 4")
    args = parser.parse_args()

    print(f"JIT compile, empty cache (fresh process): {cold_compile_seconds():.1f} s")
    print(f"first call with the on-disk cache:        {first_call_seconds():.2f} s")
    print()
    ours = bench_small_fires(args.repeats)
    peer = bench_pyretechnics(args.pyretechnics, args.repeats)
    print(f"small real fires: 8 held-out 64x64 tiles x 16 fires, 3-6 h burns ({ours['fires']} fires)")
    header = f"{'simulator':<28}{'burned cells':>13}{'us / fire':>11}{'us / burned cell':>18}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    print(f"{'firebreak simulate()':<28}{ours['burned']:>13.1f}{ours['us_per_fire']:>11.1f}"
          f"{ours['us_per_burned']:>18.2f}{1.0:>8.1f}")
    if isinstance(peer, str):
        print(peer)
    else:
        print(f"{'pyretechnics ' + peer['version']:<28}{peer['burned']:>13.1f}{peer['us_per_fire']:>11.1f}"
              f"{peer['us_per_burned']:>18.2f}{peer['us_per_burned'] / ours['us_per_burned']:>8.1f}")
        print("(ratio: pyretechnics' time per burned cell over ours; "
              f"per fire {peer['us_per_fire'] / ours['us_per_fire']:.1f}x)")
    if args.no_sizes:
        return
    print()
    print("env fire season (12-24 h burns), 16 fires per row: lazy simulate() vs every cell up front")
    header = (f"{'landscape':<22}{'size':>6}{'sims/s':>9}{'burned':>8}{'us/burned, lazy':>17}"
              f"{'us/burned, all cells':>22}{'all / lazy':>12}")
    print(header)
    print("-" * len(header))
    kinds = {
        "grass/shrub patches": mixed_grass_shrub,
        "synthetic_landscape": lambda n: synthetic_landscape((n, n), seed=0),
        "Worcester VT (real)": real_window,
    }
    for name, make in kinds.items():
        for n in (64, 128, 256):
            r = bench_size(make(n), args.repeats)
            print(f"{name:<22}{n:>6}{r['sims_per_s']:>9.0f}{r['burned_fraction']:>8.1%}{r['us_lazy']:>17.2f}"
                  f"{r['us_eager']:>22.2f}{r['speedup']:>12.1f}")
    print()
    print("episode: 64x64, 32 scenarios, 5 % of the cells made breaks one at a time, on burned cells")
    header = (f"{'landscape':<22}{'set-up ms':>10}{'burned end':>11}{'re-run/32':>10}{'incr. ms':>9}{'full ms':>9}"
              f"{'x full':>8}")
    print(header)
    print("-" * len(header))
    for name, make in kinds.items():
        r = bench_incremental(make(64))
        print(f"{name:<22}{r['setup_ms']:>10.1f}{r['final_burned']:>11.1%}{r['reruns_per_step']:>10.1f}"
              f"{r['inc_ms']:>9.2f}{r['full_ms']:>9.2f}{r['speedup']:>8.1f}")
    print("(x full: vs simulate_many of every scenario with the same breaks)")


if __name__ == "__main__":
    main()
