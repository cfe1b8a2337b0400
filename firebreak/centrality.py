"""Cell rankings on fire-spread structure, used by the placement heuristics.

- `downstream_counts`: for each burned cell, how many cells' fastest fire path runs through it
  (its subtree in the minimum-travel-time tree, itself included).
- `downstream_protection`: those counts averaged over a simulator's scenarios, ignition cells
  excepted: the downstream protection value (DPV) of Pais et al. (2021) with unit cell values.
- `domirank`: DomiRank centrality (Engsig et al. 2024, Nature Communications 15, 56) of a
  weighted network: the steady state of dG/dt = sigma * A (1 - G) - G, that is
  G = sigma (sigma A + I)^-1 A 1, with sigma a fraction of its largest admissible value
  -1 / lambda_min(A). High DomiRank = a node that dominates its neighbourhood.
- `spread_adjacency`: the 8-neighbour spread-rate network of a landscape that DomiRank runs on.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numba import njit


@njit(cache=True)
def _subtree_sizes(arrival: np.ndarray, predecessor: np.ndarray) -> np.ndarray:
    order = np.argsort(-arrival)  # children arrive after their parents: leaves first
    size = np.zeros(arrival.size, np.float64)
    for i in order:
        if np.isfinite(arrival[i]):
            size[i] += 1.0
            parent = predecessor[i]
            if parent >= 0:
                size[parent] += size[i]
    return size


def downstream_counts(arrival: np.ndarray, predecessor: np.ndarray) -> np.ndarray:
    """Per-scenario subtree sizes of the fastest-path tree.

    Args:
        arrival: (S, H, W) or (H, W) arrival times in minutes, inf where unburned.
        predecessor: same shape, flat index (row * W + col) of the cell each cell was reached
            from, -1 for ignitions and unburned cells.
    Returns:
        float64 array of arrival's shape: number of burned cells whose fastest path from the
        ignition passes through each cell (the cell included; 0 where unburned).
    """
    arrival = np.asarray(arrival, np.float64)
    flat_arrival = arrival.reshape(-1, arrival.shape[-2] * arrival.shape[-1])
    flat_pred = np.asarray(predecessor, np.int64).reshape(flat_arrival.shape)
    out = np.stack([_subtree_sizes(a, p) for a, p in zip(flat_arrival, flat_pred)])
    return out.reshape(arrival.shape)


def downstream_protection(simulator) -> np.ndarray:
    """(H, W) mean over `simulator`'s scenarios (an `IncrementalSimulator`) of the burned cells
    a break in each cell would cut off from their fastest fire path, in cells.

    A break cannot stop a fire at its own ignition cell (see `firebreak.fire.simulate`), so the
    root of each scenario's tree protects nothing and counts 0.
    """
    counts = downstream_counts(simulator.arrival, simulator.predecessor)
    for s, scenario in enumerate(simulator.scenarios):
        counts[s, scenario.ignitions[:, 0], scenario.ignitions[:, 1]] = 0.0
    return counts.mean(axis=0)


def spread_adjacency(rate_toward: np.ndarray, burnable: np.ndarray, cell_size: float) -> sp.csr_matrix:
    """Symmetric 8-neighbour network between burnable cells, weighted by how fast fire crosses
    each link: w_ij = (r_i(j) + r_j(i)) / (2 d_ij), with r_i(j) the spread rate (m/min) of cell
    i toward cell j and d_ij the centre distance (m); weights are scaled to a maximum of 1.

    Args:
        rate_toward: (8, H, W) spread rate toward the neighbours N, NE, E, SE, S, SW, W, NW.
        burnable: (H, W) bool.
        cell_size: m.
    """
    rows, cols = burnable.shape
    index = np.arange(rows * cols).reshape(rows, cols)
    offsets = [(-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)]
    i_all, j_all, w_all = [], [], []
    for k, (dr, dc) in enumerate(offsets[:4]):  # each undirected link once
        back = k + 4
        src = (slice(max(0, -dr), rows - max(0, dr)), slice(max(0, -dc), cols - max(0, dc)))
        dst = (slice(max(0, dr), rows - max(0, -dr)), slice(max(0, dc), cols - max(0, -dc)))
        both = burnable[src] & burnable[dst]
        weight = (rate_toward[k][src] + rate_toward[back][dst]) / (2 * cell_size * np.hypot(dr, dc))
        i_all.append(index[src][both])
        j_all.append(index[dst][both])
        w_all.append(weight[both])
    i, j, w = (np.concatenate(a) for a in (i_all, j_all, w_all))
    w = w / w.max() if w.size and w.max() > 0 else w
    adjacency = sp.coo_matrix((w, (i, j)), shape=(rows * cols,) * 2)
    return (adjacency + adjacency.T).tocsr()


def domirank(adjacency: sp.spmatrix, sigma_fraction: float = 0.95) -> np.ndarray:
    """DomiRank of every node of a symmetric, non-negative weighted network.

    `sigma_fraction` in (0, 1) sets sigma = sigma_fraction / -lambda_min(A): close to 1 the
    ranking is dominated by competition between neighbours (Engsig et al. 2024, Fig. 2).
    Isolated nodes get 0.
    """
    if not 0.0 < sigma_fraction < 1.0:
        raise ValueError(f"domirank: sigma_fraction {sigma_fraction} must lie in (0, 1)")
    adjacency = sp.csr_matrix(adjacency, dtype=np.float64)
    n = adjacency.shape[0]
    if adjacency.nnz == 0:
        return np.zeros(n)
    lambda_min = spla.eigsh(adjacency, k=1, which="SA", return_eigenvectors=False, tol=1e-6)[0]
    sigma = sigma_fraction / -lambda_min if lambda_min < 0 else sigma_fraction
    system = (sigma * adjacency + sp.identity(n, format="csr")).tocsc()
    return sigma * spla.spsolve(system, adjacency @ np.ones(n))
