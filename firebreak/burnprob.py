"""Burn probability and conditional flame length of a landscape: ``python -m firebreak.burnprob``.

    python -m firebreak.burnprob sample --fires 2000 --out bp/                 # the bundled landscape
    python -m firebreak.burnprob landscape.lcp --fires 2000 --out bp/ --ray local
    python -m firebreak.burnprob sample --fires 2000 --breaks plan/breaks.tif --out bp_treated/

As FlamMap's MTT burn probability or FSim: `--fires` fires, each lit at one random burnable
cell of the landscape (uniform over them) and burning for one burn period under its own
weather, both drawn from the fire season (`firebreak.env.DEFAULT_SEASON`: 12-24 h burns, 10-30
km/h winds mostly from the west, dry fuels; the training and evaluation season) with
`ScenarioSampler(--seed)`. Per cell:

- burn probability: the share of the fires that burned it;
- conditional flame length: the mean flame length (m) of the fires that burned it, each taken
  in the direction that fire crossed the cell (`firebreak.landscape_fires`); 0 where none did.

With ``--breaks`` (a plan's breaks.tif) the same fires (same seed, same ignitions) burn the
treated landscape: breaks are bare ground, and a fire lit on a break still starts there (as in
`firebreak.fire.simulate`), so before and after are paired fire by fire.

Outputs (``--out``), on the source's grid (CRS, transform, shape, nodata value; nodata outside
the landscape): ``burn_probability.tif`` (float32, 0-1), ``conditional_flame_length.tif``
(float32, m) and ``burnprob.json`` (fires, seed, season, burned fraction with its 95 % CI,
wall time, fires/s). Fires run as Ray tasks with ``--ray`` (see `connect_ray`), in this process
otherwise; Ctrl-C leaves no partial file.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .env import DEFAULT_SEASON
from .evaluate import mean_ci
from .fire import FireSeason, ScenarioSampler
from .landscape import Grid, Landscape, LandscapeError, load_breaks, load_landscapes, write_geotiff
from .landscape_fires import FireRecord, burn_fires, connect_ray
from .outputs import staged_outputs, write_json


@dataclass(frozen=True)
class BurnMaps:
    """What `fires` fires did to each cell: burned (int32, how many burned it) and flame_sum
    (float64, the sum of their flame lengths there, m); burned_cells: (fires,) cells each burned."""

    fires: int
    burned: np.ndarray
    flame_sum: np.ndarray
    burned_cells: np.ndarray

    @property
    def probability(self) -> np.ndarray:
        """Burn probability, share of the fires (0-1)."""
        return self.burned / max(self.fires, 1)

    @property
    def conditional_flame_length(self) -> np.ndarray:
        """Mean flame length (m) over the fires that burned the cell; 0 where none did."""
        return np.divide(self.flame_sum, self.burned, out=np.zeros(self.burned.shape), where=self.burned > 0)

    def burned_fraction(self, landscape: Landscape) -> np.ndarray:
        """Per fire, the share of the landscape's burnable cells it burned."""
        return self.burned_cells / max(int(landscape.burnable.sum()), 1)


def burn_maps(records: Sequence[FireRecord], shape: tuple[int, int]) -> BurnMaps:
    """Sum sparse fire records (with flame lengths) into whole-grid maps."""
    burned = np.zeros(shape, np.int32)
    flame_sum = np.zeros(shape)
    for record in records:
        record.add_to(burned)
        if record.flame_length is not None:
            record.add_to(flame_sum, record.flame_length)
    return BurnMaps(len(records), burned, flame_sum, np.array([r.cells for r in records]))


#: Fires burnt per call of `burn_fires` by `burn_probability`: their records are summed into the
#: maps and dropped, so memory stays bounded however many fires a run has.
CHUNK = 2048


def burn_probability(landscape: Landscape, fires: int, *, seed: int = 0, season: FireSeason = DEFAULT_SEASON,
                     breaks: np.ndarray | None = None, progress: bool = True, desc: str = "fires") -> BurnMaps:
    """Burn `fires` fires of `season` (seeded) over `landscape`, with the boolean `breaks` mask
    as fuel breaks, and return their maps (module docstring)."""
    scenarios = ScenarioSampler(seed, season).sample(landscape, fires)
    parts = []
    for start in range(0, fires, CHUNK):
        chunk = scenarios[start:start + CHUNK]
        label = desc if fires <= CHUNK else f"{desc} {start + 1}-{start + len(chunk)} of {fires}"
        parts.append(burn_maps(burn_fires(landscape, chunk, breaks, flame_length=True, progress=progress, desc=label),
                               landscape.shape))
    return BurnMaps(fires, sum(p.burned for p in parts), sum(p.flame_sum for p in parts),
                    np.concatenate([p.burned_cells for p in parts]))


def write_burn_maps(folder: Path, landscape: Landscape, maps: BurnMaps, probability: str = "burn_probability.tif",
                    flame_length: str = "conditional_flame_length.tif") -> list[Path]:
    """The burn probability and conditional flame length GeoTIFFs, named so, on the landscape's grid."""
    grid = Grid.of(landscape)
    return [
        write_geotiff(folder / probability, maps.probability, grid, outside=landscape.nodata,
                      description=f"burn probability, share of {maps.fires} fires"),
        write_geotiff(folder / flame_length, maps.conditional_flame_length, grid, outside=landscape.nodata,
                      description="conditional flame length (m)"),
    ]


def burned_summary(landscape: Landscape, maps: BurnMaps) -> dict:
    """Mean burned fraction of the burnable cells per fire, its 95 % CI half-width, and the mean cells."""
    mean, half = mean_ci(maps.burned_fraction(landscape))
    return {"burned_fraction": mean, "burned_fraction_ci95": half, "burned_cells_mean": float(maps.burned_cells.mean())}


def one_landscape(source: str) -> Landscape:
    """The one landscape of a source (`load_landscapes`); several is an error."""
    landscapes = load_landscapes(source)
    if len(landscapes) != 1:
        raise LandscapeError(f"{source}: holds {len(landscapes)} landscapes; give one (a .lcp, a GeoTIFF folder, "
                             "an .npz or 'sample')")
    return landscapes[0]


def add_fire_arguments(parser: argparse.ArgumentParser, fires: int) -> None:
    """The options firebreak.burnprob and firebreak.plan share."""
    parser.add_argument("src", nargs="?", default="sample",
                        help="landscape: a .lcp, a LANDFIRE GeoTIFF folder, an .npz, or 'sample' (default: the bundled "
                             "Worcester, VT landscape)")
    parser.add_argument("--fires", type=int, default=fires, help=f"number of fires (default {fires})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fires' ignitions and weather (default 0)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--ray", default=None, metavar="ADDRESS",
                        help="run fires as Ray tasks: 'local' starts Ray on this machine, or a cluster address "
                             "('auto', 'ray://host:10001'); default: in this process")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of a --ray local instance (default all)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firebreak.burnprob", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_fire_arguments(parser, fires=1000)
    parser.add_argument("--breaks", default=None, metavar="BREAKS.TIF", help="a plan's breaks.tif: burn the treated "
                        "landscape (same fires)")
    args = parser.parse_args(argv)
    if args.fires < 2:
        parser.error(f"--fires {args.fires}: give at least 2 fires")
    try:
        landscape = one_landscape(args.src)
        breaks = None if args.breaks is None else load_breaks(args.breaks, landscape) > 0
    except LandscapeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    stop_ray = connect_ray(args.ray, args.num_cpus)
    try:
        started = time.perf_counter()
        maps = burn_probability(landscape, args.fires, seed=args.seed, breaks=breaks)
        seconds = time.perf_counter() - started
        summary = {
            "source": args.src, "shape": list(landscape.shape), "cells_inside": int((~landscape.nodata).sum()),
            "breaks": args.breaks, "break_cells": int(breaks.sum()) if breaks is not None else 0,
            "fires": args.fires, "seed": args.seed, "season": dataclasses.asdict(DEFAULT_SEASON),
            **burned_summary(landscape, maps), "wall_seconds": seconds, "fires_per_second": args.fires / seconds,
            "ray": args.ray,
        }
        with staged_outputs(args.out) as stage:
            written = write_burn_maps(stage, landscape, maps) + [write_json(stage / "burnprob.json", summary)]
    finally:
        stop_ray()
    print(f"{args.fires} fires in {seconds:.1f} s ({args.fires / seconds:.1f} fires/s); burned "
          f"{summary['burned_fraction']:.2%} +/- {summary['burned_fraction_ci95']:.2%} of the burnable cells per fire")
    for path in written:
        print(f"wrote {Path(args.out) / path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
