"""Many fires on a whole landscape, each simulated on a window around its ignition and kept sparse.

A fire on the bundled Worcester landscape (613 x 549 cells) burns about a thousand cells, but
`firebreak.fire.simulate` prepares fire behaviour and move costs for every cell of the grid it
is given (0.13 s a fire here). So each fire runs on a window around its ignition (65 x 65 cells
first), grown x 2 until no burned cell lies within 2 cells of a window edge that is not the
landscape's own edge. A move spans at most 2 cells, so no fastest path of such a fire ever
leaves its window, and the window's result equals the whole grid's cell for cell (the tests
compare them); it costs about 7 ms a fire here. Breaks only slow fires (barriers remove moves),
so a fire re-run with more breaks fits in the box its last run burned, plus that 2-cell margin.

What is kept of a fire (`FireRecord`) is its burned bounding box: burned mask, arrival times,
fastest-path predecessors and, when asked, the flame length in the direction the fire crossed
each cell: `firebreak.fire` gives each cell's head-fire flame length and spread ellipse, and
fireline intensity in a direction is heat per area x the elliptical rate that way (Behave's
"direction of interest"), so the flame length is the head value x (rate that way / head
rate) ** 0.46 (Byram's L ~ I ** 0.46; Thomas' I ** (2/3) on active crown fire cells), with the
direction taken from each cell's predecessor on the fastest path (FlamMap MTT's travel
direction). An ignition cell has no predecessor and gets the head value.

`burn_fires` runs a list of scenarios as Ray tasks when Ray is initialised (the landscape goes
to the object store once), in this process otherwise, with a tqdm bar either way.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import ray
from tqdm import tqdm

from .fire import Scenario, simulate, surface_fire
from .landscape import Landscape

#: A move of the spread stencil spans at most this many cells (knight moves: 2).
REACH = 2
#: Half-size (cells) of the first window around the ignitions.
FIRST_HALF_WINDOW = 32
#: Flame length ~ fireline intensity ** exponent: Byram (surface, passive crown) and Thomas (active crown).
BYRAM_EXPONENT, THOMAS_EXPONENT = 0.46, 2.0 / 3.0
ACTIVE_CROWN = 3

Box = tuple[int, int, int, int]  # (row0, col0, row1, col1), end-exclusive, in the landscape's grid


@dataclass(frozen=True)
class FireRecord:
    """One fire, cropped to its burned bounding box at (row, col) of the landscape's grid.

    burned: (h, w) bool. arrival: (h, w) minutes from ignition, inf where unburned.
    predecessor: (h, w) int32 flat index *in the box* (r * w + c) of the cell the fastest path
    came from, -1 for ignitions and unburned cells. flame_length: (h, w) float32 m in the
    direction the fire crossed the cell, 0 unburned (None when not asked for).
    """

    row: int
    col: int
    burned: np.ndarray
    arrival: np.ndarray
    predecessor: np.ndarray
    flame_length: np.ndarray | None = None

    @property
    def box(self) -> Box:
        h, w = self.burned.shape
        return self.row, self.col, self.row + h, self.col + w

    @property
    def cells(self) -> int:
        """Number of burned cells."""
        return int(self.burned.sum())

    def window(self, shape: tuple[int, int]) -> Box:
        """The box a re-run with more breaks needs: the burned box plus `REACH` cells, clipped."""
        r0, c0, r1, c1 = self.box
        return max(0, r0 - REACH), max(0, c0 - REACH), min(shape[0], r1 + REACH), min(shape[1], c1 + REACH)

    def add_to(self, grid: np.ndarray, values: np.ndarray | None = None, sign: int = 1) -> None:
        """grid[box] += sign * values (default: the burned mask), in place."""
        r0, c0, r1, c1 = self.box
        grid[r0:r1, c0:c1] += sign * (self.burned if values is None else values)


def _touches_inner_edge(burned: np.ndarray, box: Box, shape: tuple[int, int]) -> bool:
    """True if a burned cell lies within REACH cells of a window edge that is not the landscape's."""
    r0, c0, r1, c1 = box
    rows, cols = np.nonzero(burned)
    if rows.size == 0:
        return False
    h, w = burned.shape
    return bool((r0 > 0 and rows.min() < REACH) or (c0 > 0 and cols.min() < REACH)
                or (r1 < shape[0] and rows.max() >= h - REACH) or (c1 < shape[1] and cols.max() >= w - REACH))


def _initial_box(scenario: Scenario, shape: tuple[int, int], half: int) -> Box:
    rows, cols = scenario.ignitions[:, 0], scenario.ignitions[:, 1]
    return (max(0, int(rows.min()) - half), max(0, int(cols.min()) - half),
            min(shape[0], int(rows.max()) + half + 1), min(shape[1], int(cols.max()) + half + 1))


def _directional_flame_length(window: Landscape, weather, burned: np.ndarray, predecessor: np.ndarray) -> np.ndarray:
    """Flame length (m) of each burned cell of `window` in the direction the fire crossed it;
    `predecessor` holds flat indices into `window`."""
    behaviour = surface_fire(window, weather)
    rows, cols = np.nonzero(burned)
    flame = np.zeros(burned.shape, np.float32)
    head = behaviour.flame_length[rows, cols]
    pred = predecessor[rows, cols]
    moved = pred >= 0
    from_row, from_col = np.divmod(pred[moved], burned.shape[1])
    # Azimuth of the move, degrees clockwise from north (row 0 is the north edge).
    azimuth = np.degrees(np.arctan2(cols[moved] - from_col, -(rows[moved] - from_row))) % 360.0
    r, c = rows[moved], cols[moved]
    e = behaviour.eccentricity[r, c]
    share = (1.0 - e) / (1.0 - e * np.cos(np.radians(azimuth - behaviour.direction[r, c])))
    exponent = np.where(behaviour.fire_type[r, c] == ACTIVE_CROWN, THOMAS_EXPONENT, BYRAM_EXPONENT)
    values = head.copy()
    values[moved] = head[moved] * share**exponent
    flame[rows, cols] = values
    return flame


def burn_fire(landscape: Landscape, scenario: Scenario, breaks: np.ndarray | None = None, *,
              window: Box | None = None, flame_length: bool = False) -> FireRecord:
    """Simulate one fire (see the module docstring) and crop it to its burned box.

    `window`: where to simulate (a `FireRecord.window` of an earlier run of this scenario with
    fewer breaks); default: grown from a box around the ignitions until the fire fits."""
    shape = landscape.shape
    box = window or _initial_box(scenario, shape, FIRST_HALF_WINDOW)
    half = FIRST_HALF_WINDOW
    while True:
        r0, c0, r1, c1 = box
        part = landscape.window(r0, c0, r1 - r0, c1 - c0)
        local = dataclasses.replace(scenario, ignitions=scenario.ignitions - np.array([r0, c0]))
        result = simulate(part, local, None if breaks is None else breaks[r0:r1, c0:c1])
        if window is not None or box == (0, 0) + shape or not _touches_inner_edge(result.burned, box, shape):
            break
        half *= 2
        box = _initial_box(scenario, shape, half)
    rows, cols = np.nonzero(result.burned)
    if rows.size == 0:  # an ignition that cannot burn (no spread there)
        empty = np.zeros((0, 0))
        return FireRecord(r0, c0, empty.astype(bool), empty, empty.astype(np.int32),
                          empty.astype(np.float32) if flame_length else None)
    b0, b1, d0, d1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    crop = (slice(b0, b1), slice(d0, d1))
    pred = result.predecessor[crop]
    pred_row, pred_col = np.divmod(pred, part.shape[1])
    boxed = np.where(pred >= 0, (pred_row - b0) * (d1 - d0) + (pred_col - d0), -1).astype(np.int32)
    burned = result.burned[crop]
    flame = None
    if flame_length:  # fire behaviour of the burned box only: all the flame lengths need
        flame = _directional_flame_length(part.window(int(b0), int(d0), int(b1 - b0), int(d1 - d0)), scenario.weather,
                                          burned, boxed)
    return FireRecord(r0 + int(b0), c0 + int(d0), burned, result.arrival[crop], boxed, flame)


def _burn_chunk(landscape, scenarios, breaks, windows, flame_length) -> list[FireRecord]:
    return [burn_fire(landscape, s, breaks, window=w, flame_length=flame_length) for s, w in zip(scenarios, windows)]


_remote_chunk = ray.remote(num_cpus=1, max_retries=0)(_burn_chunk)


def burn_fires(landscape: Landscape, scenarios: Sequence[Scenario], breaks: np.ndarray | None = None, *,
               windows: Sequence[Box | None] | None = None, flame_length: bool = False, progress: bool = True,
               desc: str = "fires") -> list[FireRecord]:
    """`burn_fire` for every scenario, in order: as Ray tasks of a few fires each when Ray is
    initialised, in this process otherwise. A failing fire raises (never a made-up record)."""
    scenarios = list(scenarios)
    windows = list(windows) if windows is not None else [None] * len(scenarios)
    bar = tqdm(total=len(scenarios), desc=desc, unit="fire", disable=not progress, file=sys.stderr)
    try:
        if not ray.is_initialized():
            records = []
            for scenario, window in zip(scenarios, windows):
                records.append(burn_fire(landscape, scenario, breaks, window=window, flame_length=flame_length))
                bar.update()
            return records
        return _burn_on_ray(landscape, scenarios, breaks, windows, flame_length, bar)
    finally:
        bar.close()


def _burn_on_ray(landscape, scenarios, breaks, windows, flame_length, bar) -> list[FireRecord]:
    # Chunks of a few fires: ~1 ms of Ray overhead per task against ~7 ms per fire, and enough
    # chunks (4 per CPU) that the cluster stays busy to the end.
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    size = max(1, min(64, math.ceil(len(scenarios) / (4 * cpus))))
    landscape_ref, breaks_ref = ray.put(landscape), ray.put(breaks)
    chunks = {}
    for start in range(0, len(scenarios), size):
        ref = _remote_chunk.remote(landscape_ref, scenarios[start:start + size], breaks_ref,
                                   windows[start:start + size], flame_length)
        chunks[ref] = start
    results: dict[int, list[FireRecord]] = {}
    pending = list(chunks)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            records = ray.get(ready[0])
            results[chunks[ready[0]]] = records
            bar.update(len(records))
    except BaseException:  # Ctrl-C or a failed task: stop the rest, never leave them running
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    return [record for start in sorted(results) for record in results[start]]


def connect_ray(address: str | None, num_cpus: int | None = None):
    """Ray for `burn_fires`, as the command lines' ``--ray`` asks: None runs fires in this
    process; ``"local"`` starts a private Ray instance on this machine (`num_cpus`, default all
    cores; its own temp folder, so other Ray instances on the machine are never touched); any
    other value is an address to join (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``).
    Returns the function that undoes it (``ray.shutdown`` and the temp folder's removal)."""
    if address is None:
        return lambda: None
    if address == "local":
        import shutil
        import tempfile

        temp_dir = tempfile.mkdtemp(prefix="fb-ray-", dir="/tmp")
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _temp_dir=temp_dir,
                 log_to_driver=False)

        def stop():
            ray.shutdown()
            shutil.rmtree(temp_dir, ignore_errors=True)

        return stop
    ray.init(address=address, log_to_driver=False)
    return ray.shutdown
