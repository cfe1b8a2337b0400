"""Q-networks that output one Q-value per grid cell, and the masked argmax over them.

Every network maps observations (B, C, H, W) float32 to Q-values (B, H*W) float32 for any
H x W: they are fully convolutional, and the output is flattened row-major so that
`action = row * W + col` indexes it directly (the env's Discrete(H*W) action space).

Checkpoints name a network by its registry kind plus keyword arguments, so
`build_q_network(kind, in_channels, **kwargs)` rebuilds it without further flags.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: The observation layer `DPVPrior` reads (named in checkpoints' obs_layers).
DPV_LAYER = "downstream_protection"


def _conv_layers(in_channels: int, hidden: int, num_layers: int) -> list[nn.Module]:
    """`num_layers` x (3x3 conv to `hidden` channels + ReLU), resolution kept."""
    layers: list[nn.Module] = []
    for i in range(num_layers):
        layers += [nn.Conv2d(in_channels if i == 0 else hidden, hidden, 3, padding=1), nn.ReLU()]
    return layers


class BasicQNetwork(nn.Module):
    """`num_layers` 3x3 conv + ReLU layers, then a 1x1 conv to one Q-value per cell.

    Receptive field: (2 * num_layers + 1) cells square, 7 x 7 by default: each cell's value
    sees only its neighbourhood. The cheap baseline.
    """

    def __init__(self, in_channels: int, hidden: int = 32, num_layers: int = 3):
        super().__init__()
        head = nn.Conv2d(hidden if num_layers else in_channels, 1, 1)
        self.net = nn.Sequential(*_conv_layers(in_channels, hidden, num_layers), head)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).flatten(1)


class DilatedResidualBlock(nn.Module):
    """Pre-activation residual block: x + conv1x1(relu(conv3x3_dilated(relu(x)))).

    The dilated 3x3 conv widens the receptive radius by `dilation` cells at the cost of
    an ordinary 3x3 conv; zero padding keeps H x W unchanged.
    """

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.spatial = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.mix = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(torch.relu(self.spatial(torch.relu(x))))


class ResidualQNetwork(nn.Module):
    """Dilated residual blocks at half resolution with a full-resolution skip: a cell's Q
    sees the whole tile.

    Layout: 3x3 stem at full resolution -> 3x3 stride-2 conv to ceil(H/2) x ceil(W/2) ->
    residual blocks with 3x3 convs dilated (1, 2, 4, ..., 32) twice -> nearest upsampling
    to H x W plus the stem features (the skip keeps per-cell detail) -> 3x3 conv -> 1x1 head.

    Receptive field: a 3x3 conv with dilation d widens the radius by d cells at its
    resolution, so the blocks add 2 * (1 + 2 + ... + 32) = 126 half-resolution cells, 252
    full-resolution cells, and the full-resolution convs a few more: radius about 256
    cells, a field about 513 x 513. The opposite corner of a 128 x 128 tile (127 cells
    away) lies well inside it, reached by many paths rather than the few at a field's edge,
    which ReLUs can switch off. Signed sums of {0, +-d} over the doubling dilations reach
    every offset, so the field has no holes ("gridding"). Running the blocks at half
    resolution makes them a quarter of the full-resolution cost.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int = 32,
        dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 1, 2, 4, 8, 16, 32),
        dpv_prior: bool = False,
        prior_kernel: int = 7,
        prior_channel: int | None = None,
        prior_scale: float = 100.0,
    ):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.down = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        self.blocks = nn.Sequential(*(DilatedResidualBlock(channels, d) for d in dilations))
        self.up = nn.Conv2d(channels, channels, 3, padding=1)
        self.head = nn.Conv2d(channels, 1, 1)
        self.prior = DPVPrior(in_channels, prior_channel, prior_kernel, prior_scale) if dpv_prior else None
        if self.prior is not None:
            # start as the DPV heuristic exactly: the learned part begins at a constant
            nn.init.zeros_(self.head.weight)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        skip = torch.relu(self.stem(obs))
        context = self.blocks(self.down(skip))
        x = F.interpolate(context, size=obs.shape[-2:], mode="nearest") + skip
        x = torch.relu(self.up(torch.relu(x)))
        q = self.head(x)
        if self.prior is not None:
            q = q + self.prior(obs)
        return q.flatten(1)


class DPVPrior(nn.Module):
    """Q-values a break would earn by the downstream-protection heuristic, through a learned
    `kernel` x `kernel` filter: the residual network learns corrections to the heuristic
    instead of rediscovering it.

    Channel `channel` of the observation is log1p(DPV) / log1p(H * W) with DPV in cells per
    fire (the env's "downstream_protection" layer, `firebreak.centrality.downstream_protection`);
    a break there saves about DPV cells, i.e. DPV / (H * W) of the tile, which is `scale` *
    DPV / (H * W) in Q units (scale = the learner's reward_scale; 100: percent of the tile).
    The app passes both (`firebreak.config` fills them in from the env's layers and
    reward_scale) and checkpoints store them with the network kwargs. The filter starts as the
    identity (the heuristic itself) and can learn to smooth it: DPV planned on a few fires is
    noisy, and smoothing it placed better breaks on unseen fires (docs/experiments.md).
    """

    def __init__(self, in_channels: int, channel: int | None, kernel: int = 7, scale: float = 100.0):
        super().__init__()
        if channel is None or not 0 <= channel < in_channels:
            raise ValueError(f"dpv_prior needs prior_channel, the index of the downstream_protection layer among the "
                             f"{in_channels} input channels (firebreak.env.OBSERVATION_LAYERS), got {channel!r}")
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"prior_kernel must be a positive odd number of cells, got {kernel}")
        if not scale > 0:
            raise ValueError(f"prior_scale must be positive (the learner's reward_scale), got {scale!r}")
        self.channel, self.scale = int(channel), float(scale)
        self.filter = nn.Conv2d(1, 1, kernel, padding=kernel // 2, bias=False)
        with torch.no_grad():
            self.filter.weight.zero_()
            self.filter.weight[0, 0, kernel // 2, kernel // 2] = 1.0

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        cells = obs.shape[-2] * obs.shape[-1]
        # full precision even under autocast: neighbouring DPV values differ by less than
        # bf16's 0.4 % resolution, and their order is the whole point of the prior
        with torch.autocast(obs.device.type, enabled=False):
            layer = obs[:, self.channel:self.channel + 1].float()
            value = torch.expm1(layer * math.log1p(cells)) * (self.scale / cells)
            return self.filter(value)


class DuelingQNetwork(nn.Module):
    """Dueling heads (Wang et al. 2016) on a conv trunk: Q = V + A - mean(A).

    The trunk is `num_layers` 3x3 conv + ReLU layers (receptive field of the advantage:
    (2 * num_layers + 1) cells square). The advantage is a 1x1 conv, one value per cell.
    The state value V is an MLP on the trunk features averaged over the whole tile, so V
    sees every cell. Subtracting the mean advantage (over all H*W cells, since the network
    does not see the action mask) makes the V / A split identifiable.
    """

    def __init__(self, in_channels: int, hidden: int = 32, num_layers: int = 3):
        super().__init__()
        self.trunk = nn.Sequential(*_conv_layers(in_channels, hidden, num_layers))
        self.advantage = nn.Conv2d(hidden, 1, 1)
        self.value = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        features = self.trunk(obs)
        advantage = self.advantage(features).flatten(1)
        value = self.value(features.mean(dim=(2, 3)))
        return value + advantage - advantage.mean(dim=1, keepdim=True)


Q_NETWORKS: dict[str, type[nn.Module]] = {
    "basic": BasicQNetwork,
    "residual": ResidualQNetwork,
    "dueling": DuelingQNetwork,
}


def build_q_network(kind: str, in_channels: int, **kwargs) -> nn.Module:
    """The Q-network registered as `kind` (a key of `Q_NETWORKS`), built with `kwargs`."""
    if kind not in Q_NETWORKS:
        raise ValueError(f"unknown Q-network kind {kind!r}; known kinds: {sorted(Q_NETWORKS)}")
    return Q_NETWORKS[kind](in_channels, **kwargs)


def masked_argmax(q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Index of the largest Q-value among valid actions, per row.

    q: (B, A) Q-values; mask: (B, A) bool, True where the action is valid.
    Returns (B,) int64 actions, always valid. Raises ValueError if a row has no valid action
    (an env must end the episode before it runs out of cells to treat).
    """
    empty = ~mask.any(dim=1)
    if empty.any():
        rows = empty.nonzero().flatten().tolist()
        raise ValueError(f"masked_argmax: rows {rows} have no valid action (mask all False)")
    return q.masked_fill(~mask, -torch.inf).argmax(dim=1)
