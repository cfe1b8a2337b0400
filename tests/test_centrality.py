"""Rankings the placement heuristics stand on: downstream counts and DomiRank."""

import numpy as np
import scipy.sparse as sp

from firebreak.centrality import domirank, downstream_counts, spread_adjacency


def test_downstream_counts_on_a_branching_tree():
    # 2x3 grid, flat index r*3+c. Ignition at 0; 0 -> 1 -> 2, 0 -> 3 -> 4; cell 5 unburned.
    arrival = np.array([[0.0, 1.0, 2.0], [1.5, 3.0, np.inf]])
    predecessor = np.array([[-1, 0, 1], [0, 3, -1]])
    counts = downstream_counts(arrival, predecessor)
    np.testing.assert_array_equal(counts, [[5, 2, 1], [2, 1, 0]])
    stacked = downstream_counts(np.stack([arrival, arrival]), np.stack([predecessor, predecessor]))
    assert stacked.shape == (2, 2, 3) and np.array_equal(stacked[1], counts)


def test_domirank_is_the_steady_state_of_its_dynamics():
    rng = np.random.default_rng(0)
    dense = rng.uniform(0, 1, (12, 12)) * (rng.uniform(size=(12, 12)) < 0.4)
    dense = np.triu(dense, 1)
    dense = dense + dense.T
    scores = domirank(sp.csr_matrix(dense), sigma_fraction=0.5)
    sigma = 0.5 / -np.linalg.eigvalsh(dense).min()
    # Integrate dG/dt = sigma A (1 - G) - G to convergence (independent of the linear solve).
    g = np.zeros(12)
    for _ in range(20000):
        g += 0.01 * (sigma * dense @ (1 - g) - g)
    np.testing.assert_allclose(scores, g, atol=1e-6)


def test_domirank_ranks_a_star_hub_first():
    star = np.zeros((6, 6))
    star[0, 1:] = star[1:, 0] = 1.0
    scores = domirank(sp.csr_matrix(star))
    assert scores.argmax() == 0 and np.allclose(scores[1:], scores[1])


def test_spread_adjacency_weights_links_by_rate_over_distance():
    burnable = np.ones((3, 3), bool)
    burnable[0, 0] = False
    rates = np.ones((8, 3, 3))
    adjacency = spread_adjacency(rates, burnable, cell_size=30.0).toarray()
    assert np.allclose(adjacency, adjacency.T)
    centre, east, south_east = 4, 5, 8
    assert np.isclose(adjacency[centre, east], 1.0)  # the fastest links scale to 1
    assert np.isclose(adjacency[centre, south_east], 1 / np.sqrt(2))
    assert (adjacency[0] == 0).all(), "a non-burnable cell has no links"
    assert np.count_nonzero(adjacency[centre]) == 7
