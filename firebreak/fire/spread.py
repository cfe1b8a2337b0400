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
    """Travel time (min) of every move out of every cell, shape (rows * cols, 16) float64 in
    row-major cell order; inf where the move leaves the grid or crosses a cell that cannot
    burn (rate 0).

    A cell's slowness toward azimuth t, (1 - e cos(t - head)) / (R (1 - e)), is linear in
    (cos t, sin t): three numbers per cell give its 16 directional rates without more trigonometry.
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
                a[i, j] = 1.0 / (r * (1.0 - e))
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
def travel_times(costs, blocked, ignitions, duration, offsets, crossed):
    """Dijkstra from the ignition cells (n, 2) over the move costs (rows * cols, 16).

    `blocked` (rows, cols) marks cells that cannot burn (non-burnable, breaks). Returns
    (arrival min, inf beyond `duration` or never reached; predecessor flat index, -1 for
    ignitions and unburned cells; support mask: burned cells plus the cells that the
    fastest-path moves into them pass beside or through: a barrier added outside the support
    cannot change the result).
    """
    rows, cols = blocked.shape
    n = rows * cols
    flat_blocked = blocked.ravel()
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
    arrival = np.full(n, np.inf)
    pred = np.full(n, -1, np.int32)
    pred_move = np.full(n, -1, np.int8)
    done = np.zeros(n, np.bool_)
    support = np.zeros(n, np.bool_)
    capacity = n * N_MOVES + len(ignitions) + 1
    keys = np.empty(capacity)
    cells = np.empty(capacity, np.int64)
    size = 0
    for q in range(len(ignitions)):
        c = ignitions[q, 0] * cols + ignitions[q, 1]
        if not flat_blocked[c] and arrival[c] > 0.0:
            arrival[c] = 0.0
            size = _push(keys, cells, size, 0.0, c)
    while size > 0:
        t, c, size = _pop(keys, cells, size)
        if done[c]:
            continue
        if t > duration:
            break
        done[c] = True
        support[c] = True
        k = pred_move[c]
        if k >= 0 and (k >= 8 or (offsets[k, 0] != 0 and offsets[k, 1] != 0)):
            support[pred[c] + via1[k]] = True
            support[pred[c] + via2[k]] = True
        for k in range(N_MOVES):
            cost = costs[c, k]
            if cost == np.inf:
                continue
            d = c + step[k]
            if done[d] or flat_blocked[d]:
                continue
            if k >= 8:
                if flat_blocked[c + via1[k]] or flat_blocked[c + via2[k]]:
                    continue
            elif via1[k] != 0 and via2[k] != 0:
                if flat_blocked[c + via1[k]] and flat_blocked[c + via2[k]]:
                    continue
            candidate = t + cost
            if candidate < arrival[d]:
                arrival[d] = candidate
                pred[d] = c
                pred_move[d] = k
                size = _push(keys, cells, size, candidate, d)
    for c in range(n):
        if not done[c]:
            arrival[c] = np.inf
            pred[c] = -1
    return arrival.reshape(rows, cols), pred.reshape(rows, cols), support.reshape(rows, cols)
