"""Fire spread over a raster by minimum travel time (Finney 2002, as FlamMap's MTT).

Arrival time is the shortest travel time from the ignition cells over a 16-neighbour stencil:
the 8 neighbours plus the 8 knight moves. A move is a straight segment between cell centres;
its travel time is the sum, over the cells it crosses, of (length inside the cell / that cell's
elliptical rate in the segment's direction). A neighbour move spends half its length in each
end cell; a knight move (e.g. 1 row, 2 columns) crosses four cells, a quarter of its length in
each: the start, the two cells it passes through, the end.

Rates: each cell's rate toward azimuth t is R (1 - e) / (1 - e cos(t - head)) (the ellipse
about the ignition point, Behave's "from ignition point" rate), R the head rate. Slope:
distances are horizontal (cell size * stencil length), and so are the rates: Behave's rates
are along the slope surface, and the horizontal rate is R cos(slope angle) = R / sqrt(1 + s^2)
(s = rise/run), FlamMap's horizontal rate of spread. FlamMap scales the whole ellipse so;
the exact projection of the surface ellipse would leave across-slope rates unscaled.

Barriers: breaks and non-burnable cells never burn, and no move crosses them. A knight move
is blocked if any cell it crosses cannot burn; a diagonal move is blocked when both cells
beside it cannot burn (it would slip between two diagonally touching barrier cells). Every
allowed move therefore follows a 4-connected chain of burnable cells, so a 4- or 8-connected
line of barrier cells is never crossed.

Dijkstra uses an indexed binary heap keyed by (time, cell index), so ties break by cell index
and the result is deterministic and independent of the order moves were relaxed in.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# (d_row, d_col) of the 16 moves: 8 neighbours then 8 knight moves.
OFFSETS = np.array([
    (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1),
    (-2, 1), (-1, 2), (1, 2), (2, 1), (2, -1), (1, -2), (-1, -2), (-2, -1),
], np.int64)
N_MOVES = 16
#: Azimuth of each move, degrees clockwise from north (row 0 is north).
AZIMUTHS = np.degrees(np.arctan2(OFFSETS[:, 1], -OFFSETS[:, 0])) % 360.0
#: Horizontal length of each move in cells.
LENGTHS = np.hypot(OFFSETS[:, 0], OFFSETS[:, 1])


def _crossed() -> tuple[np.ndarray, np.ndarray]:
    """For each move, the (d_row, d_col) of the cells it crosses and the share of its length in each."""
    cells = np.zeros((N_MOVES, 4, 2), np.int64)
    share = np.zeros((N_MOVES, 4))
    for k, (dr, dc) in enumerate(OFFSETS):
        if max(abs(dr), abs(dc)) == 1:
            cells[k, :2] = [(0, 0), (dr, dc)]
            share[k, :2] = 0.5
        elif abs(dc) == 2:
            cells[k] = [(0, 0), (0, dc // 2), (dr, dc // 2), (dr, dc)]
            share[k] = 0.25
        else:
            cells[k] = [(0, 0), (dr // 2, 0), (dr // 2, dc), (dr, dc)]
            share[k] = 0.25
    return cells, share


CROSSED, SHARE = _crossed()


@njit(cache=True)
def edge_costs(rate, direction, eccentricity, slope, cell_size, azimuths, lengths, crossed, share):
    """Travel time (min) of every move out of every cell, shape (rows * cols, 16) float64 in
    row-major cell order; inf where the move leaves the grid or crosses a cell that cannot
    burn (rate 0). `rate` is along the slope (m/min), `slope` rise/run.

    A cell's horizontal slowness toward azimuth t, (1 - e cos(t - head)) / (R_h (1 - e)) with
    R_h = R / sqrt(1 + s^2), is linear in (cos t, sin t): three numbers per cell give its 16
    directional rates without more trigonometry.
    """
    rows, cols = rate.shape
    a = np.full((rows, cols), np.inf)
    bx = np.zeros((rows, cols))
    by = np.zeros((rows, cols))
    for i in range(rows):
        for j in range(cols):
            r = rate[i, j]
            if r > 0.0:
                e = eccentricity[i, j]
                s = slope[i, j]
                a[i, j] = math.sqrt(1.0 + s * s) / (r * (1.0 - e))
                head = math.radians(direction[i, j])
                bx[i, j] = a[i, j] * e * math.cos(head)
                by[i, j] = a[i, j] * e * math.sin(head)
    cos_k = np.cos(np.radians(azimuths))
    sin_k = np.sin(np.radians(azimuths))
    costs = np.full((rows * cols, N_MOVES), np.inf)
    for i in range(rows):
        for j in range(cols):
            if rate[i, j] <= 0.0:
                continue
            for k in range(N_MOVES):
                total = 0.0
                for p in range(4):
                    if share[k, p] == 0.0:
                        break
                    u = i + crossed[k, p, 0]
                    v = j + crossed[k, p, 1]
                    if u < 0 or u >= rows or v < 0 or v >= cols:
                        total = np.inf
                        break
                    total += share[k, p] * (a[u, v] - bx[u, v] * cos_k[k] - by[u, v] * sin_k[k])
                costs[i * cols + j, k] = total * lengths[k] * cell_size
    return costs


@njit(cache=True)
def _before(arrival, a, b):
    # heap order: earlier arrival first, ties by cell index
    return arrival[a] < arrival[b] or (arrival[a] == arrival[b] and a < b)


@njit(cache=True)
def _sift_up(heap, pos, arrival, i):
    c = heap[i]
    while i > 0:
        parent = (i - 1) >> 1
        p = heap[parent]
        if not _before(arrival, c, p):
            break
        heap[i] = p
        pos[p] = i
        i = parent
    heap[i] = c
    pos[c] = i


@njit(cache=True)
def _pop(heap, pos, arrival, size):
    top = heap[0]
    size -= 1
    if size > 0:
        c = heap[size]
        i = 0
        while True:
            child = 2 * i + 1
            if child >= size:
                break
            if child + 1 < size and _before(arrival, heap[child + 1], heap[child]):
                child += 1
            if not _before(arrival, heap[child], c):
                break
            heap[i] = heap[child]
            pos[heap[i]] = i
            i = child
        heap[i] = c
        pos[c] = i
    return top, size


@njit(cache=True)
def travel_times(costs, cannot_burn, breaks, cell_fire_type, ignitions, duration, offsets, crossed):
    """Dijkstra from the ignition cells (n, 2) over the move costs (rows * cols, 16).

    Cells that cannot burn (`cannot_burn`: non-burnable or no spread) and `breaks` (both
    (rows, cols) bool) are barriers. An indexed binary heap (each cell at most once, keyed by
    (arrival, cell index)) makes the settle order depend only on arrival times.

    Returns, all (rows, cols): arrival (min; inf beyond `duration` or never reached), burned,
    fire type (`cell_fire_type` where burned, else 0), predecessor (flat index of the cell the
    fastest path came from; -1 for ignitions and unburned cells) and support (burned cells plus
    the cells that fastest-path moves into them pass beside or through: a barrier added
    outside the support cannot change any of these outputs).
    """
    rows, cols = cannot_burn.shape
    n = rows * cols
    blocked_2d = cannot_burn | breaks
    blocked = blocked_2d.ravel()
    step = np.empty(N_MOVES, np.int64)
    via1 = np.empty(N_MOVES, np.int64)  # knight: cells passed through; diagonal: cells beside
    via2 = np.empty(N_MOVES, np.int64)
    for k in range(N_MOVES):
        step[k] = offsets[k, 0] * cols + offsets[k, 1]
        if k >= 8:
            via1[k] = crossed[k, 1, 0] * cols + crossed[k, 1, 1]
            via2[k] = crossed[k, 2, 0] * cols + crossed[k, 2, 1]
        else:
            via1[k] = offsets[k, 1]
            via2[k] = offsets[k, 0] * cols
    diagonal = np.zeros(N_MOVES, np.bool_)
    for k in range(8):
        diagonal[k] = offsets[k, 0] != 0 and offsets[k, 1] != 0
    arrival = np.full(n, np.inf)
    pred = np.full(n, -1, np.int32)
    pred_move = np.full(n, -1, np.int8)
    pos = np.full(n, -1, np.int64)  # heap slot; -1 never queued, -2 settled
    heap = np.empty(n, np.int64)
    burned = np.zeros(n, np.bool_)
    fire_type = np.zeros(n, np.int8)
    support = np.zeros(n, np.bool_)
    flat_type = cell_fire_type.ravel()
    size = 0
    for q in range(len(ignitions)):
        c = ignitions[q, 0] * cols + ignitions[q, 1]
        if not blocked[c] and pos[c] == -1:
            arrival[c] = 0.0
            heap[size] = c
            _sift_up(heap, pos, arrival, size)
            size += 1
    while size > 0:
        c = heap[0]
        t = arrival[c]
        if t > duration:
            break
        c, size = _pop(heap, pos, arrival, size)
        pos[c] = -2
        burned[c] = True
        fire_type[c] = flat_type[c]
        support[c] = True
        k = pred_move[c]
        if k >= 8 or (k >= 0 and diagonal[k]):
            support[pred[c] + via1[k]] = True
            support[pred[c] + via2[k]] = True
        for k in range(N_MOVES):
            cost = costs[c, k]
            if cost == np.inf:
                continue
            d = c + step[k]
            if pos[d] == -2 or blocked[d]:
                continue
            if k >= 8:
                if blocked[c + via1[k]] or blocked[c + via2[k]]:
                    continue
            elif diagonal[k] and blocked[c + via1[k]] and blocked[c + via2[k]]:
                continue
            candidate = t + cost
            if candidate < arrival[d]:
                arrival[d] = candidate
                pred[d] = c
                pred_move[d] = k
                if pos[d] == -1:
                    heap[size] = d
                    size += 1
                    _sift_up(heap, pos, arrival, size - 1)
                else:
                    _sift_up(heap, pos, arrival, pos[d])
    for i in range(size):  # reached but not within the duration
        c = heap[i]
        arrival[c] = np.inf
        pred[c] = -1
    shape = (rows, cols)
    return (arrival.reshape(shape), burned.reshape(shape), fire_type.reshape(shape), pred.reshape(shape),
            support.reshape(shape))
