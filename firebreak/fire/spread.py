"""Fire spread over a raster by minimum travel time (Finney 2002, as FlamMap's MTT).

Arrival time is the shortest travel time from the ignition cells over a 16-neighbour stencil:
the 8 neighbours plus the 8 knight moves. A move is a straight segment between cell centres;
its travel time is the sum, over the cells it crosses, of (length inside the cell / that cell's
elliptical rate in the segment's direction). A neighbour move spends half its length in each
end cell; a knight move (e.g. 1 row, 2 columns) crosses four cells, a quarter of its length in
each: the start, the two cells it passes through, the end.

Rates: each cell's rate toward azimuth t is R (1 - e) / (1 - e cos(t - head)) (the ellipse
about the ignition point, Behave's "from ignition point" rate), R the Behave head rate. Slope:
distances are horizontal (cell size * stencil length) and the rate is Behave's
slope-adjusted rate used as a horizontal rate, as FlamMap's MTT does with the planar grid.

Barriers: breaks and non-burnable cells never burn, and no move crosses them. A knight move
is blocked if any cell it crosses cannot burn; a diagonal move is blocked when both cells
beside it cannot burn (it would slip between two diagonally touching barrier cells). Every
allowed move therefore follows a 4-connected chain of burnable cells, so a 4- or 8-connected
line of barrier cells is never crossed.

Dijkstra uses a binary heap keyed by (time, cell index), so ties break by cell index and the
result is deterministic and independent of the order moves were relaxed in.
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
def edge_costs(rate, direction, eccentricity, cell_size, azimuths, lengths, crossed, share):
    """Travel time (min) of every move out of every cell, shape (rows, cols, 16), float32;
    inf where the move leaves the grid or crosses a cell that cannot burn (rate 0).

    The 16 directional slownesses of each cell are computed once, then summed along moves.
    """
    rows, cols = rate.shape
    slowness = np.full((rows, cols, N_MOVES), np.inf)
    for i in range(rows):
        for j in range(cols):
            r = rate[i, j]
            if r <= 0.0:
                continue
            e = eccentricity[i, j]
            for k in range(N_MOVES):
                c = math.cos(math.radians(azimuths[k] - direction[i, j]))
                slowness[i, j, k] = (1.0 - e * c) / (r * (1.0 - e))
    costs = np.full((rows, cols, N_MOVES), np.inf, np.float32)
    for i in range(rows):
        for j in range(cols):
            if rate[i, j] <= 0.0:
                continue
            for k in range(N_MOVES):
                total = 0.0
                for p in range(4):
                    if share[k, p] == 0.0:
                        break
                    a = i + crossed[k, p, 0]
                    b = j + crossed[k, p, 1]
                    if a < 0 or a >= rows or b < 0 or b >= cols:
                        total = np.inf
                        break
                    total += share[k, p] * lengths[k] * cell_size * slowness[a, b, k]
                costs[i, j, k] = total
    return costs


@njit(cache=True)
def _push(keys, cells, size, key, cell):
    i = size
    keys[i] = key
    cells[i] = cell
    while i > 0:
        parent = (i - 1) >> 1
        if keys[parent] < keys[i] or (keys[parent] == keys[i] and cells[parent] <= cells[i]):
            break
        keys[parent], keys[i] = keys[i], keys[parent]
        cells[parent], cells[i] = cells[i], cells[parent]
        i = parent
    return size + 1


@njit(cache=True)
def _pop(keys, cells, size):
    key = keys[0]
    cell = cells[0]
    size -= 1
    keys[0] = keys[size]
    cells[0] = cells[size]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        child = left
        right = left + 1
        if right < size and (keys[right] < keys[left] or (keys[right] == keys[left] and cells[right] < cells[left])):
            child = right
        if keys[i] < keys[child] or (keys[i] == keys[child] and cells[i] <= cells[child]):
            break
        keys[child], keys[i] = keys[i], keys[child]
        cells[child], cells[i] = cells[i], cells[child]
        i = child
    return key, cell, size


@njit(cache=True)
def _move_allowed(blocked, i, j, k, offsets, crossed):
    rows, cols = blocked.shape
    a = i + offsets[k, 0]
    b = j + offsets[k, 1]
    if a < 0 or a >= rows or b < 0 or b >= cols or blocked[a, b]:
        return False
    if k >= 8:  # knight move: both cells it passes through must be able to burn
        return not (blocked[i + crossed[k, 1, 0], j + crossed[k, 1, 1]]
                    or blocked[i + crossed[k, 2, 0], j + crossed[k, 2, 1]])
    if offsets[k, 0] != 0 and offsets[k, 1] != 0:  # diagonal: not between two touching barriers
        return not (blocked[i, b] and blocked[a, j])
    return True


@njit(cache=True)
def travel_times(costs, blocked, ignitions, duration, offsets, crossed):
    """Dijkstra from the ignition cells (n, 2) over the move costs (rows, cols, 16).

    Returns (arrival min, inf beyond `duration` or never reached; predecessor flat index,
    -1 for ignitions and unburned cells; support mask: burned cells plus the cells that the
    fastest-path moves into them pass beside or through; a barrier added outside the
    support cannot change the result).
    """
    rows, cols = blocked.shape
    n = rows * cols
    arrival = np.full((rows, cols), np.inf)
    pred = np.full((rows, cols), -1, np.int32)
    done = np.zeros((rows, cols), np.bool_)
    support = np.zeros((rows, cols), np.bool_)
    keys = np.empty(n * N_MOVES + len(ignitions) + 1)
    cells = np.empty(n * N_MOVES + len(ignitions) + 1, np.int64)
    size = 0
    for q in range(len(ignitions)):
        i, j = ignitions[q, 0], ignitions[q, 1]
        if not blocked[i, j] and arrival[i, j] > 0.0:
            arrival[i, j] = 0.0
            size = _push(keys, cells, size, 0.0, i * cols + j)
    while size > 0:
        t, c, size = _pop(keys, cells, size)
        i = c // cols
        j = c % cols
        if done[i, j]:
            continue
        if t > duration:
            break
        done[i, j] = True
        support[i, j] = True
        p = pred[i, j]
        if p >= 0:
            pi = p // cols
            pj = p % cols
            di = i - pi
            dj = j - pj
            if abs(di) == 2 or abs(dj) == 2:
                for k in range(8, N_MOVES):
                    if offsets[k, 0] == di and offsets[k, 1] == dj:
                        support[pi + crossed[k, 1, 0], pj + crossed[k, 1, 1]] = True
                        support[pi + crossed[k, 2, 0], pj + crossed[k, 2, 1]] = True
            elif di != 0 and dj != 0:
                support[pi, j] = True
                support[i, pj] = True
        for k in range(N_MOVES):
            cost = costs[i, j, k]
            if cost == np.inf or not _move_allowed(blocked, i, j, k, offsets, crossed):
                continue
            a = i + offsets[k, 0]
            b = j + offsets[k, 1]
            candidate = t + cost
            if candidate < arrival[a, b] and not done[a, b]:
                arrival[a, b] = candidate
                pred[a, b] = c
                size = _push(keys, cells, size, candidate, a * cols + b)
    for i in range(rows):
        for j in range(cols):
            if not done[i, j]:
                arrival[i, j] = np.inf
                pred[i, j] = -1
    return arrival, pred, support
