"""`Learner`, the learner actor: `firebreak.dqn.DQN` inside Ray, on a GPU when the cluster has one.

The driver creates it with `create_learner`, next to a `RestorePoint`
(`firebreak.rollout.restore_point`): a small actor on the driver's node that holds the learner
state of the run's latest checkpoint (the driver updates it at every checkpoint, and right after
the actor starts and after pre-training). An incarnation
restarted by Ray (``max_restarts``) rebuilds itself from that state, so a learner crash costs the
updates since that checkpoint and the replay's contents (kept too with ``learner.save_replay``:
the state then names the replay file saved beside latest.pt), never the run. The state travels through
Ray, not the file system: on a cluster the learner's node cannot read the head's ``runs/``.
Expert demonstrations are creation arguments (ObjectRefs): Ray keeps them for restarts and every
incarnation loads them again.

Fragments arrive as `Fragment` records whose ``transitions`` are ObjectRefs of the runners'
arrays: the actor fetches them from the runners' nodes itself (the driver never holds them). An
array lost on the way (its node died before the fetch) is counted in ``lost_steps`` and logged;
it never fails the learner.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any

import ray
import torch
from ray.exceptions import RayError

from firebreak.dqn import DQN, DQNConfig
from firebreak.rollout.fragment import Fragment
from firebreak.rollout.restore_point import restore_state

log = logging.getLogger(__name__)


@ray.remote
class Learner:
    """Args: the DQN config, observation shape (C, H, W), the run's `RestorePoint` handle (its
    state is loaded when it holds one: on a resume and after a restart), the seed, and
    ObjectRefs of `Demonstration`s to keep for the run (in a list, so that Ray passes the refs
    themselves), the env's episode-static channels and episode length (`Learner`).
    `incarnation` is new in every process: the driver tells a restart by it."""

    def __init__(self, config: DQNConfig, obs_shape: tuple[int, int, int], restore_point, seed: int,
                 demonstrations: list | None = None, static_channels: tuple[int, ...] = (),
                 episode_steps: int | None = None):
        self.incarnation = uuid.uuid4().hex
        self.learner = DQN(config, obs_shape, seed=seed, static_channels=static_channels,
                           episode_steps=episode_steps)
        for demonstration in ray.get(demonstrations or []):
            self.learner.add_demonstration(**demonstration.arrays)
        state = restore_state(restore_point) if restore_point is not None else None
        self.restored = state is not None
        self.lost_steps = 0  # env steps whose arrays could not be fetched (their node died)
        if state is not None:
            self.learner.load_state_dict(state)

    def info(self) -> dict:
        """pid, incarnation, device, whether a restore point was loaded, updates so far, replay
        size, expert episodes held."""
        return {"pid": os.getpid(), "incarnation": self.incarnation, "device": self.learner.device,
                "restored": self.restored, "updates": self.learner.dqn.num_updates,
                "replay_size": len(self.learner.replay),
                "demonstrations": self.learner.demonstrations.episodes, "lost_steps": self.lost_steps}

    def add_fragment(self, fragment: Fragment) -> int:
        """Fetch a fragment's arrays (ObjectRefs in ``fragment.transitions``) and store them;
        returns the replay size. Arrays that cannot be fetched are counted, not stored."""
        try:
            arrays = fragment.arrays()
        except RayError as err:
            self.lost_steps += fragment.num_steps
            log.error("fragment of runner %d (pid %d): its arrays are gone (%s); %d env steps lost",
                      fragment.runner_index, fragment.pid, type(err).__name__, fragment.num_steps)
            return len(self.learner.replay)
        arrays.add_to(self.learner)
        return len(self.learner.replay)

    def pretrain(self, num_updates: int) -> dict:
        """`num_updates` updates on the demonstrations alone (metrics, updates, incarnation)."""
        return {**self.learner.pretrain(num_updates), "incarnation": self.incarnation}

    def train(self, num_updates: int) -> dict:
        """`num_updates` updates when the replay is ready (metrics with ``loss``), else only the
        update count and replay size; always the incarnation and its ``lost_steps`` so far."""
        if self.learner.can_train:
            result = self.learner.train(num_updates)
        else:
            result = {"updates": self.learner.dqn.num_updates, "replay_size": len(self.learner.replay)}
        return {**result, "incarnation": self.incarnation, "lost_steps": self.lost_steps}

    def get_weights(self) -> dict[str, torch.Tensor]:
        return self.learner.get_weights()

    def save_replay(self, path: str) -> None:
        """Write the replay to `path` on this actor's node (`DQN.save_replay`)."""
        self.learner.save_replay(path)

    def state_dict(self) -> dict:
        """The learner's state with every tensor on the CPU: the driver that checkpoints it may
        run on a node without CUDA, where a CUDA tensor cannot even be unpickled."""
        return to_cpu(self.learner.state_dict())


def to_cpu(state: Any) -> Any:
    """``state`` (nested dicts, lists and tuples, as state_dicts are) with its tensors on the CPU."""
    if isinstance(state, torch.Tensor):
        return state.detach().cpu()
    if isinstance(state, dict):
        return {key: to_cpu(value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(to_cpu(value) for value in state)
    return state


def create_learner(config: DQNConfig, obs_shape: tuple[int, int, int], restore_point, seed: int,
                   *, num_gpus: float | str = "auto", num_cpus: float = 1.0,
                   resources: dict[str, float] | None = None, max_restarts: int = 3, demonstrations: list | None = None,
                   static_channels: tuple[int, ...] = (), episode_steps: int | None = None):
    """Start the learner actor: ``num_gpus``, or 1 when ``"auto"`` and the cluster has a GPU;
    custom ``resources`` (e.g. ``{"learner": 1}``) pin it to a node type; ``restore_point``: a
    `RestorePoint` handle (or None: never restored); ``demonstrations``: ObjectRefs of expert
    episodes it keeps, through restarts; ``static_channels``, ``episode_steps``: see `Learner`.
    Its calls are never retried: the driver decides what to resend after a restart."""
    if num_gpus == "auto":
        num_gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    return Learner.options(num_gpus=num_gpus, num_cpus=num_cpus, resources=resources or {},
                                max_restarts=max_restarts, max_task_retries=0).remote(
        config, obs_shape, restore_point, seed, demonstrations, tuple(static_channels), episode_steps)
