"""A small untrained training checkpoint, for the tests that play one."""

from pathlib import Path

import torch

from firebreak.config import load_config
from firebreak.dqn.checkpoint import save_checkpoint
from firebreak.dqn.networks import build_q_network
from firebreak.env import OBSERVATION_LAYERS

REPO = Path(__file__).parents[1]


def tiny_checkpoint(path: Path, tile: int = 32, layers=OBSERVATION_LAYERS) -> Path:
    """A seeded 2-layer basic Q-network over `layers`, saved as a training checkpoint at `path`."""
    torch.manual_seed(0)
    network = build_q_network("basic", len(layers), hidden=8, num_layers=2)
    model = {"kind": "basic", "kwargs": {"hidden": 8, "num_layers": 2}, "obs_shape": [len(layers), tile, tile],
             "obs_layers": list(layers)}
    config = load_config(REPO / "ray_configs" / "smoke.yaml").model_dump()
    return save_checkpoint(path, learner_state={"dqn": {"q_network": network.state_dict()}}, model=model,
                           config=config, counters={})
