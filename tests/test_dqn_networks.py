"""Q-networks: shapes on any grid, receptive fields, registry, masked argmax."""

import numpy as np
import pytest
import torch

from firebreak.dqn import Q_NETWORKS, build_q_network, masked_argmax

SMALL = {"basic": {"hidden": 8}, "residual": {"channels": 8}, "dueling": {"hidden": 8}}


@pytest.mark.parametrize("kind", sorted(Q_NETWORKS))
@pytest.mark.parametrize("height, width", [(1, 1), (2, 2), (5, 7), (64, 64), (33, 17)])
def test_one_q_value_per_cell_on_any_grid(kind, height, width):
    torch.manual_seed(0)
    net = build_q_network(kind, 3, **SMALL[kind])
    obs = torch.randn(2, 3, height, width)
    q = net(obs)
    assert q.shape == (2, height * width)
    assert q.dtype == torch.float32 and torch.isfinite(q).all()
    # Row-major flattening: action row * W + col is the output of cell (row, col); the
    # network is translation-equivariant away from borders, so a shifted input shifts Q.
    if kind == "basic" and height >= 5 and width >= 7:
        bump = torch.zeros(1, 3, height, width)
        bump[0, :, 2, 3] = 5.0
        changed = (net(bump) - net(torch.zeros_like(bump))).abs().flatten() > 0
        assert changed[2 * width + 3]


def test_residual_receptive_field_spans_a_128_tile():
    torch.manual_seed(0)
    obs = torch.zeros(1, 2, 128, 128, dtype=torch.float64)
    corner = obs.clone()
    corner[0, :, 0, 0] = 10.0
    far = 127 * 128 + 127  # the opposite corner
    # float64: the far effect is small at initialisation and must not drown in rounding
    residual = build_q_network("residual", 2).double()
    with torch.no_grad():
        assert (residual(corner) - residual(obs))[0, far] != 0
    # The check can fail: the basic network's 7 x 7 field does not reach that far.
    basic = build_q_network("basic", 2, hidden=8).double()
    with torch.no_grad():
        assert (basic(corner) - basic(obs))[0, far] == 0


def test_registry_rebuilds_from_kind_and_kwargs():
    net = build_q_network("dueling", 4, hidden=6, num_layers=2)
    twin = build_q_network("dueling", 4, hidden=6, num_layers=2)
    twin.load_state_dict(net.state_dict())
    obs = torch.randn(1, 4, 8, 8)
    assert torch.equal(net(obs), twin(obs))
    with pytest.raises(ValueError, match="unknown Q-network kind 'unet'"):
        build_q_network("unet", 4)


def test_masked_argmax_never_returns_an_invalid_cell():
    generator = torch.Generator().manual_seed(0)
    q = torch.randn(500, 16, generator=generator)
    mask = torch.rand(500, 16, generator=generator) < 0.3
    mask[torch.arange(500), torch.randint(16, (500,), generator=generator)] = True
    q[~mask] += 100.0  # invalid cells hold the largest values
    actions = masked_argmax(q, mask)
    assert mask[torch.arange(500), actions].all()
    best_valid = q.masked_fill(~mask, -torch.inf).max(dim=1).values
    assert torch.equal(q[torch.arange(500), actions], best_valid)


def test_masked_argmax_rejects_a_row_without_valid_cells():
    mask = torch.tensor([[True, False], [False, False]])
    with pytest.raises(ValueError, match=r"rows \[1\] have no valid action"):
        masked_argmax(torch.zeros(2, 2), mask)


@pytest.mark.parametrize("scale", [100.0, 10.0])
def test_the_dpv_prior_starts_as_the_heuristic_in_reward_units(scale):
    from firebreak.env import OBSERVATION_LAYERS, FuelBreakEnv
    from firebreak.landscape import sample_tiles

    env = FuelBreakEnv(sample_tiles(64, "train")[:1], n_scenarios=8, budget=0.01)
    obs, _ = env.reset(seed=0)
    torch.manual_seed(0)
    net = build_q_network("residual", obs.shape[0], channels=8, dilations=[1, 2], dpv_prior=True, prior_kernel=5,
                          prior_channel=OBSERVATION_LAYERS.index("downstream_protection"), prior_scale=scale)
    q = net(torch.as_tensor(obs)[None])[0].detach().numpy()
    saved = scale * env.downstream_protection.ravel() / obs[0].size  # share of the tile's cells x scale, per fire
    assert saved.max() > 0.001 * scale
    np.testing.assert_allclose(q - q.mean(), saved - saved.mean(), atol=1e-6 * scale)
    # the learned filter and the residual network take it from there
    net(torch.as_tensor(obs)[None]).sum().backward()
    assert net.prior.filter.weight.grad.abs().sum() > 0 and net.head.weight.grad.abs().sum() > 0


def test_the_dpv_prior_needs_its_channel_among_the_inputs_and_an_odd_kernel():
    with pytest.raises(ValueError, match="dpv_prior needs prior_channel.*among the 18 input channels.*got None"):
        build_q_network("residual", 18, channels=8, dpv_prior=True)
    with pytest.raises(ValueError, match="among the 3 input channels.*got 15"):
        build_q_network("residual", 3, channels=8, dpv_prior=True, prior_channel=15)
    with pytest.raises(ValueError, match="prior_kernel must be a positive odd number"):
        build_q_network("residual", 18, channels=8, dpv_prior=True, prior_channel=15, prior_kernel=4)
    with pytest.raises(ValueError, match="prior_scale must be positive"):
        build_q_network("residual", 18, channels=8, dpv_prior=True, prior_channel=15, prior_scale=0)
