"""Cut a landscape into square training windows."""

from __future__ import annotations

from .core import Landscape, LandscapeError


def tile(landscape: Landscape, size: int, stride: int | None = None, max_nodata_fraction: float = 0.0) -> list[Landscape]:
    """Windows of `size` x `size` cells every `stride` cells (default: `size`, no overlap),
    row-major from the north-west corner. Windows whose nodata share exceeds
    `max_nodata_fraction` are skipped; each window's ``metadata["window"]`` is
    ``"row,col,rows,cols"`` in the parent's grid."""
    stride = size if stride is None else stride
    if size < 1 or stride < 1:
        raise LandscapeError(f"tile: size ({size}) and stride ({stride}) must be positive cell counts")
    if not 0.0 <= max_nodata_fraction <= 1.0:
        raise LandscapeError(f"tile: max_nodata_fraction {max_nodata_fraction} must lie in [0, 1]")
    rows, cols = landscape.shape
    if size > rows or size > cols:
        raise LandscapeError(f"tile: size {size} exceeds the landscape's shape {landscape.shape}")
    windows = []
    for row in range(0, rows - size + 1, stride):
        for col in range(0, cols - size + 1, stride):
            if landscape.nodata[row : row + size, col : col + size].mean() <= max_nodata_fraction:
                windows.append(landscape.window(row, col, size, size))
    return windows
