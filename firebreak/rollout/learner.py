"""The learner actor: `firebreak.dqn.Learner` inside Ray, on a GPU when the cluster has one.

The driver creates it with `create_learner`; a restarted actor (``max_restarts``) rebuilds
itself from the run's latest checkpoint, so a learner crash costs the updates since that
checkpoint and the replay contents, never the run. Expert demonstrations are creation arguments
(ObjectRefs): Ray keeps them for restarts and every incarnation loads them again.
"""

from __future__ import annotations

import os
from pathlib import Path

import ray
import torch

from firebreak.dqn import DQNConfig
from firebreak.dqn.checkpoint import load_checkpoint
from firebreak.dqn.learner import Learner
from firebreak.rollout.fragment import Fragment


@ray.remote
class LearnerActor:
    """Args: the DQN config, observation shape (C, H, W), the run's latest checkpoint path
    (loaded when it exists: on a resume and after a restart), the seed, and ObjectRefs of
    `Demonstration`s to keep for the run (in a list, so that Ray passes the refs themselves)."""

    def __init__(self, config: DQNConfig, obs_shape: tuple[int, int, int], checkpoint_path: str | None, seed: int,
                 demonstrations: list | None = None):
        self.learner = Learner(config, obs_shape, seed=seed)
        for demonstration in ray.get(demonstrations or []):
            self.learner.add_demonstration(**demonstration.arrays)
        self.restored_from = None
        if checkpoint_path and Path(checkpoint_path).is_file():
            self.learner.load_state_dict(load_checkpoint(checkpoint_path)["learner"])
            self.restored_from = checkpoint_path

    def info(self) -> dict:
        """pid, device, restored checkpoint (None for a fresh learner), updates so far, expert
        episodes held."""
        return {"pid": os.getpid(), "device": self.learner.device, "restored_from": self.restored_from,
                "updates": self.learner.dqn.num_updates, "demonstrations": self.learner.demonstrations.episodes}

    def add_fragment(self, fragment: Fragment) -> int:
        """Store a fragment's transitions; returns the replay size."""
        self.learner.add_fragment(fragment.obs, fragment.actions, fragment.rewards, fragment.terminated,
                                  fragment.truncated, fragment.next_obs, fragment.next_masks)
        return len(self.learner.replay)

    def pretrain(self, num_updates: int) -> dict:
        """`num_updates` updates on the demonstrations alone (metrics)."""
        return self.learner.pretrain(num_updates)

    def train(self, num_updates: int) -> dict | None:
        """`num_updates` updates when the replay is ready (metrics), else None."""
        return self.learner.train(num_updates) if self.learner.can_train else None

    def get_weights(self) -> dict[str, torch.Tensor]:
        return self.learner.get_weights()

    def save_replay(self, path: str) -> None:
        """Write the replay to `path` on this actor's node (`Learner.save_replay`)."""
        self.learner.save_replay(path)

    def state_dict(self) -> dict:
        return self.learner.state_dict()


def create_learner(config: DQNConfig, obs_shape: tuple[int, int, int], checkpoint_path: str | None, seed: int,
                   *, num_gpus: float | str = "auto", num_cpus: float = 1.0,
                   resources: dict[str, float] | None = None, max_restarts: int = 3, demonstrations: list | None = None):
    """Start the learner actor: ``num_gpus``, or 1 when ``"auto"`` and the cluster has a GPU;
    custom ``resources`` (e.g. ``{"learner": 1}``) pin it to a node type; ``demonstrations``:
    ObjectRefs of expert episodes it keeps, through restarts. Its calls are never retried: the
    driver decides what to resend after a restart."""
    if num_gpus == "auto":
        num_gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    return LearnerActor.options(num_gpus=num_gpus, num_cpus=num_cpus, resources=resources or {},
                                max_restarts=max_restarts, max_task_retries=0).remote(
        config, obs_shape, checkpoint_path, seed, demonstrations)
