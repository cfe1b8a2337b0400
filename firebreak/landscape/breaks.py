"""A treatment plan's ``breaks.tif`` read back onto its landscape.

``python -m firebreak.plan`` writes ``breaks.tif`` on the landscape's grid: the placement
order of each treated cell (1 = first), 0 untreated, the source's nodata value outside the
landscape. Read it back to evaluate, picture or refine the plan: `load_breaks` gives the order
grid, `apply_breaks` the treated landscape (`Landscape.with_breaks`). A raster on another grid,
or one that treats a cell no break can hold, is one `LandscapeError` naming the file and why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .core import Landscape, LandscapeError
from .grid import Grid, read_geotiff


def load_breaks(path: str | Path, landscape: Landscape) -> np.ndarray:
    """int32 (rows, cols) placement order from `path`: 1, 2, ... on treated cells, 0 elsewhere.

    Checks: the raster lies on the landscape's grid (shape, transform, CRS); its values are
    whole numbers >= 0; treated cells are inside the landscape and burnable (a break turns fuel
    into bare ground; outside or on rock it means nothing)."""
    values, outside = read_geotiff(path, Grid.of(landscape), "breaks")
    inside = ~outside
    bad = inside & ((values < 0) | (values != np.round(values)) | ~np.isfinite(values))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise LandscapeError(f"{path}: {int(bad.sum())} cell(s) are not a placement order (whole number >= 0), "
                             f"first at row {row}, col {col}: {float(values[row, col]):g}. 0 = untreated, 1, 2, ... = treated.")
    order = np.where(inside, values, 0).astype(np.int32)
    treated = order > 0
    for problem, cells in (("outside the landscape (nodata)", treated & landscape.nodata),
                           ("on non-burnable fuel", treated & ~landscape.nodata & ~landscape.burnable)):
        if cells.any():
            row, col = np.argwhere(cells)[0]
            raise LandscapeError(f"{path}: {int(cells.sum())} treated cell(s) lie {problem}, first at row {row}, "
                                 f"col {col}. Is this the plan of this landscape? Set those cells to 0.")
    return order


def apply_breaks(landscape: Landscape, path: str | Path) -> Landscape:
    """`landscape` with the breaks of the plan raster `path` as bare ground (`load_breaks`)."""
    treated = landscape.with_breaks(load_breaks(path, landscape) > 0)
    return treated.replace(metadata={**treated.metadata, "breaks": str(path)})
