"""``python -m firebreak.landscape {info,tile,convert}``: inspect, tile and bundle landscapes.

SRC is anything `load_landscapes` reads: ``sample`` (the bundled Worcester landscape), an
``.npz`` bundle or a folder of them, a FARSITE / FlamMap ``.lcp`` file, a folder of LANDFIRE
GeoTIFFs, or a tile folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import LandscapeError, load_landscapes, save_npz, tile


def _info(args: argparse.Namespace) -> None:
    landscapes = load_landscapes(args.src)
    if len(landscapes) == 1:
        print(landscapes[0].summary())
        return
    cells = sum(ls.fuel_model.size for ls in landscapes)
    burnable = sum(int(ls.burnable.sum()) for ls in landscapes)
    nodata = sum(int(ls.nodata.sum()) for ls in landscapes)
    codes, counts = np.unique(np.concatenate([ls.fuel_model[~ls.nodata] for ls in landscapes]), return_counts=True)
    shapes = sorted({ls.shape for ls in landscapes})
    print(f"source:        {args.src}")
    print(f"landscapes:    {len(landscapes)} of shape(s) {', '.join(f'{r}x{c}' for r, c in shapes)}, "
          f"cell size {landscapes[0].cell_size:g} m")
    print(f"burnable:      {burnable / cells:.1%} of cells")
    print(f"nodata:        {nodata} cells ({nodata / cells:.1%})")
    print(f"fuel models:   {', '.join(f'{c}: {k}' for c, k in zip(codes.tolist(), counts.tolist()))}")


def _tile(args: argparse.Namespace) -> None:
    out = Path(args.out)
    written = 0
    for index, landscape in enumerate(load_landscapes(args.src)):
        windows = tile(landscape, args.size, args.stride, args.max_nodata)
        for window in tqdm(windows, desc=f"tiling {index}", unit="tile", disable=not sys.stderr.isatty()):
            row, col = window.metadata["window"].split(",")[:2]
            save_npz(window, out / f"tile_{index:03d}_r{int(row):04d}_c{int(col):04d}.npz")
            written += 1
    print(f"wrote {written} tiles of {args.size}x{args.size} to {out}")


def _convert(args: argparse.Namespace) -> None:
    landscapes = load_landscapes(args.src)
    if len(landscapes) != 1:
        raise LandscapeError(f"{args.src}: holds {len(landscapes)} landscapes; convert takes one (use tile for many)")
    print(f"wrote {save_npz(landscapes[0], args.out)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firebreak.landscape", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="print a summary of a landscape source")
    info.add_argument("src", nargs="?", default="sample")
    info.set_defaults(run=_info)
    tiles = commands.add_parser("tile", help="cut a source into square .npz tiles")
    tiles.add_argument("src")
    tiles.add_argument("out", help="output folder")
    tiles.add_argument("--size", type=int, default=64, help="tile side in cells (default 64)")
    tiles.add_argument("--stride", type=int, default=None, help="step between tiles in cells (default: size)")
    tiles.add_argument("--max-nodata", type=float, default=0.0, help="largest nodata share a tile may have (default 0)")
    tiles.set_defaults(run=_tile)
    convert = commands.add_parser("convert", help="bundle one landscape source into an .npz")
    convert.add_argument("src")
    convert.add_argument("out")
    convert.set_defaults(run=_convert)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except LandscapeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
