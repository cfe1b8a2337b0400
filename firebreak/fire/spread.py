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

Ignitions: a point ignition reaches the centre of its cell at distance / (the cell's rate
toward the centre) (0 for a point at the centre); a whole-cell ignition burns the cell at time 0
and its moves start from the cell's edge (their share inside the cell is not travelled).

Lazy: `burn` computes a cell's fire behaviour (``behaviour.cell_fire``) and its slowness only
when the search first needs it: a move into or across the cell. Small fires therefore cost
what they burn, not the size of the landscape. `Cells` holds those per-cell results (and,
optionally, every move cost computed) so that re-running a scenario with more breaks reuses them.

Dijkstra uses an indexed binary heap keyed by (time, cell index), so ties break by cell index
and the result is deterministic and independent of the order moves were relaxed in.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import crown
from .behaviour import cell_fire, fuelbed_of
from .rothermel import FB_SIZE

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
#: Cells a move passes between: knight moves, the two cells it crosses between its ends;
#: diagonal moves, the two cells beside it (the move slips between them when both are barriers).
VIA = np.zeros((N_MOVES, 2, 2), np.int64)
VIA[8:] = CROSSED[8:, 1:3]
VIA[:8, 0, 1] = OFFSETS[:8, 1]
VIA[:8, 1, 0] = OFFSETS[:8, 0]
DIAGONAL = (OFFSETS[:, 0] != 0) & (OFFSETS[:, 1] != 0)
DIAGONAL[8:] = False
COS_K = np.cos(np.radians(AZIMUTHS))
SIN_K = np.sin(np.radians(AZIMUTHS))


class Cells:
    """Per-cell results of one (landscape, weather) the search fills lazily and may share
    between runs: `known` (int8: 1 once computed), `coef` ((n, 3) slowness a, b_x, b_y, see
    `slowness`; a = inf where the cell cannot burn), `kind` (fire type), the fuel beds by fuel
    code, and `costs` ((n, 16) move times, NaN until computed; (0, 16) keeps none)."""

    def __init__(self, n_cells: int, n_codes: int, keep_costs: bool = False):
        #: Every cell computed (`from_behaviour`): the search then reads barriers from one array.
        self.all_known = False
        self.known = np.zeros(n_cells, np.int8)
        self.coef = np.empty((n_cells, 3))
        self.kind = np.zeros(n_cells, np.int8)
        self.fuelbeds = np.empty((n_codes, FB_SIZE))
        self.fuelbeds_ready = np.zeros(n_codes, np.bool_)
        self.costs = np.full((n_cells if keep_costs else 0, N_MOVES), np.nan)

    @classmethod
    def from_behaviour(cls, behaviour, slope, n_codes: int, keep_costs: bool = True) -> "Cells":
        """Cells already known from `FireBehaviour` grids (the eager path)."""
        cells = cls(behaviour.rate.size, n_codes, keep_costs)
        fill_slowness(behaviour.rate, behaviour.direction, behaviour.eccentricity, slope, cells.coef)
        cells.kind[:] = behaviour.fire_type.ravel()
        cells.known[:] = 1
        cells.all_known = True
        return cells

    def args(self) -> tuple:
        """`burn`'s last arguments."""
        return (self.known, self.coef, self.kind, self.fuelbeds, self.fuelbeds_ready, self.costs,
                self.all_known)


#: `Cells.args()` of no cells: `burn` allocates its own and keeps no costs (a one-off run).
NO_CELLS: tuple = Cells(0, 0).args()


@njit(cache=True)
def slowness(rate, direction, eccentricity, slope):
    """A cell's horizontal slowness toward azimuth t (min/m) is a - b_x cos t - b_y sin t:
    (1 - e cos(t - head)) / (R_h (1 - e)) with R_h = R / sqrt(1 + s^2) the horizontal head rate,
    linear in (cos t, sin t), so three numbers give all 16 directions. Returns (a, b_x, b_y);
    a = inf where `rate` (m/min, along the slope) is 0."""
    if rate <= 0.0:
        return np.inf, 0.0, 0.0
    s = np.float64(slope)
    a = math.sqrt(1.0 + s * s) / (rate * (1.0 - eccentricity))
    head = math.radians(direction)
    return a, a * eccentricity * math.cos(head), a * eccentricity * math.sin(head)


@njit(cache=True)
def fill_slowness(rate, direction, eccentricity, slope, coef):
    """`slowness` of every cell of the grids into `coef` (rows * cols, 3)."""
    cols = rate.shape[1]
    for i in range(rate.shape[0]):
        for j in range(cols):
            coef[i * cols + j] = slowness(rate[i, j], direction[i, j], eccentricity[i, j], slope[i, j])


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
def burn(fuel, slope, aspect, cc, ch, cbh, cr, cbd, nodata, table, moisture, wind, midflame_given, waf_given,
         wind_10m_kmh, wind_from_deg, foliar_moisture, method, cell_size, breaks, ign_points, whole_cell, duration,
         known, coef, kind, fuelbeds, fuelbeds_ready, costs, all_known):
    """Minimum travel times from the ignitions over the 16-move stencil, evaluating cells lazily.

    Landscape layers (rows, cols) with `cr` the crown ratio grid or a (1, 1) NaN grid (derive it);
    weather terms as ``behaviour.behaviour_grid`` takes them; `breaks` (rows, cols) bool barriers
    (ignored on ignition cells: a break never stops a fire from starting); `ign_points` (m, 2)
    positions in cell units; `whole_cell` lights whole ignition cells; `duration` min. The last
    seven are a `Cells` (read and filled), or `NO_CELLS` for a one-off run.

    Returns, all (rows, cols): arrival (min; inf beyond `duration` or never reached), burned,
    fire type (where burned, else 0), predecessor (flat index of the cell the fastest path came
    from; -1 for ignitions and unburned cells) and support (burned cells plus the cells that
    fastest-path moves into them pass beside or through: a barrier added outside the support
    cannot change any of these outputs).
    """
    rows, cols = fuel.shape
    n = rows * cols
    if known.shape[0] == 0:  # a one-off run: no `Cells` to keep
        known = np.zeros(n, np.int8)
        coef = np.empty((n, 3))
        kind = np.empty(n, np.int8)
        fuelbeds = np.empty((table.shape[0], FB_SIZE))
        fuelbeds_ready = np.zeros(table.shape[0], np.bool_)
    fb10 = fuelbed_of(crown.CROWN_FUEL_MODEL, fuelbeds, fuelbeds_ready, table, moisture)  # the crown fuel
    derive_ratio = math.isnan(cr[0, 0])  # the (1, 1) NaN grid: (CH - CBH) / CH per cell
    # flat views of the layers, indexed by cell number
    fuel_, slope_, aspect_, cc_, ch_, cbh_, cr_, cbd_, no_data = (
        fuel.ravel(), slope.ravel(), aspect.ravel(), cc.ravel(), ch.ravel(), cbh.ravel(), cr.ravel(), cbd.ravel(),
        nodata.ravel())
    brk = breaks.ravel()
    keep_costs = costs.shape[0] == n
    n_ign = ign_points.shape[0]
    ign = np.empty(n_ign, np.int64)
    for q in range(n_ign):
        ign[q] = int(math.floor(ign_points[q, 0] + 0.5)) * cols + int(math.floor(ign_points[q, 1] + 0.5))
    blocked = np.zeros(n if all_known else 0, np.bool_)
    if all_known:  # every cell known: the barriers at once, as one array
        for u in range(n):
            blocked[u] = brk[u] or coef[u, 0] == np.inf
        for q in range(n_ign):
            blocked[ign[q]] = coef[ign[q], 0] == np.inf

    def evaluate(u):
        # the cell's fire behaviour and slowness, once
        known[u] = 1
        if no_data[u]:
            coef[u, 0] = np.inf
            coef[u, 1] = 0.0
            coef[u, 2] = 0.0
            kind[u] = 0
            return
        fb = fuelbed_of(fuel_[u], fuelbeds, fuelbeds_ready, table, moisture)
        r, d, _, e, k, _, _, _, _, _, _ = cell_fire(
            fb, fb10, wind, midflame_given, waf_given, wind_10m_kmh, wind_from_deg, slope_[u], aspect_[u], cc_[u],
            ch_[u], cbh_[u], math.nan if derive_ratio else cr_[u], cbd_[u], foliar_moisture, moisture[0], method)
        a, bx, by = slowness(r, d, e, slope_[u])
        coef[u, 0] = a
        coef[u, 1] = bx
        coef[u, 2] = by
        kind[u] = k

    def is_barrier(u):
        # a break (unless an ignition: a break never stops a fire from starting) or a cell that
        # cannot burn, computed on first need
        if all_known:
            return blocked[u]
        if brk[u]:
            is_ignition = False
            for q in range(n_ign):
                is_ignition = is_ignition or ign[q] == u
            if not is_ignition:
                return True
        if not known[u]:
            evaluate(u)
        return coef[u, 0] == np.inf

    def part_cost(u, k, p):
        # share p of move k's length per unit length, spent in cell u
        return SHARE[k, p] * (coef[u, 0] - coef[u, 1] * COS_K[k] - coef[u, 2] * SIN_K[k])

    def move_cost(c, k, start_part):
        # travel time of move k out of c: `start_part` (its part in c: 0 from a burning cell's
        # edge) plus its parts in the other cells it crosses
        total = start_part
        for p in range(1, 4):
            if SHARE[k, p] == 0.0:
                break
            total += part_cost(c + CROSSED[k, p, 0] * cols + CROSSED[k, p, 1], k, p)
        return total * LENGTHS[k] * cell_size

    arrival = np.full(n, np.inf)
    pred = np.full(n, -1, np.int32)
    pred_move = np.full(n, -1, np.int8)
    pos = np.full(n, -1, np.int64)  # heap slot; -1 never queued, -2 settled
    heap = np.empty(n, np.int64)
    burned = np.zeros(n, np.bool_)
    fire_type = np.zeros(n, np.int8)
    support = np.zeros(n, np.bool_)

    def queue(u, size):
        # u's arrival just dropped: into the heap, or up in it; returns the heap's new size
        if pos[u] == -1:
            heap[size] = u
            _sift_up(heap, pos, arrival, size)
            return size + 1
        _sift_up(heap, pos, arrival, pos[u])
        return size

    size = 0
    for q in range(n_ign):
        if not known[ign[q]]:
            evaluate(ign[q])
    for q in range(n_ign):
        c = ign[q]
        if coef[c, 0] == np.inf:
            continue
        i = c // cols
        t = 0.0
        if not whole_cell:  # from the point to the cell centre at the cell's rate in that direction
            dr = i - ign_points[q, 0]
            dc = (c - i * cols) - ign_points[q, 1]
            t = (coef[c, 0] * math.hypot(dr, dc) + coef[c, 1] * dr - coef[c, 2] * dc) * cell_size
        if t < arrival[c]:
            arrival[c] = t
            size = queue(c, size)
    while size > 0:
        c = heap[0]
        t = arrival[c]
        if t > duration:
            break
        c, size = _pop(heap, pos, arrival, size)
        pos[c] = -2
        burned[c] = True
        fire_type[c] = kind[c]
        support[c] = True
        k = pred_move[c]
        if k >= 0 and (k >= 8 or DIAGONAL[k]):
            support[pred[c] + VIA[k, 0, 0] * cols + VIA[k, 0, 1]] = True
            support[pred[c] + VIA[k, 1, 0] * cols + VIA[k, 1, 1]] = True
        i = c // cols
        j = c - i * cols
        from_edge = whole_cell and pred[c] < 0  # a whole-cell ignition: moves start at its edge
        for k in range(N_MOVES):
            di = i + OFFSETS[k, 0]
            dj = j + OFFSETS[k, 1]
            if di < 0 or di >= rows or dj < 0 or dj >= cols:
                continue
            d = di * cols + dj
            if pos[d] == -2:
                continue
            cost = costs[c, k] if keep_costs and not from_edge else np.nan
            # Moves that cannot arrive within the duration are dropped before the cells ahead are
            # evaluated (exactly: they would only reach cells the search reports unburned). The
            # time spent in the start cell is the first term of the move's cost, and adding the
            # other (positive) terms in floating point can only increase it.
            start_part = 0.0
            if not math.isnan(cost):
                if t + cost > duration:
                    continue
            elif not from_edge:
                start_part = part_cost(c, k, 0)
                if t + start_part * LENGTHS[k] * cell_size > duration:
                    continue
            # The cells the move needs passable: its end, then for a knight move the two it
            # crosses, for a diagonal one either of the two beside it.
            if all_known:
                v1 = c + VIA[k, 0, 0] * cols + VIA[k, 0, 1]
                v2 = c + VIA[k, 1, 0] * cols + VIA[k, 1, 1]
                if blocked[d] or (k >= 8 and (blocked[v1] or blocked[v2])) or (
                        DIAGONAL[k] and blocked[v1] and blocked[v2]):
                    continue
            # Lazily, they are evaluated here only, in this order, so that the search computes no
            # cell it can do without.
            viable = True
            for q in range(0 if all_known else 3 if k >= 8 or DIAGONAL[k] else 1):
                u = d if q == 0 else c + VIA[k, q - 1, 0] * cols + VIA[k, q - 1, 1]
                barrier = is_barrier(u)
                if q == 0:
                    if barrier:
                        viable = False
                        break
                    if k >= 8 and not from_edge and math.isnan(cost):  # its ends bound a knight's cost
                        bound = (start_part + part_cost(d, k, 3)) * LENGTHS[k] * cell_size
                        if t + bound * (1.0 - 1e-12) > duration:  # the margin covers the sum's rounding
                            viable = False
                            break
                elif k >= 8:
                    if barrier:
                        viable = False
                        break
                elif not barrier:  # a diagonal move with a passable cell beside it
                    break
                elif q == 2:  # both cells beside the diagonal are barriers
                    viable = False
            if not viable:
                continue
            if math.isnan(cost):
                cost = move_cost(c, k, start_part)
                if keep_costs and not from_edge:
                    costs[c, k] = cost
            candidate = t + cost
            if candidate < arrival[d]:
                arrival[d] = candidate
                pred[d] = c
                pred_move[d] = k
                size = queue(d, size)
    for q in range(size):  # reached but not within the duration
        c = heap[q]
        arrival[c] = np.inf
        pred[c] = -1
    shape = (rows, cols)
    return (arrival.reshape(shape), burned.reshape(shape), fire_type.reshape(shape), pred.reshape(shape),
            support.reshape(shape))
