"""`DQN`: the algorithm without Ray: prioritized replay fed by fragments, expert
demonstrations, and Double-DQN updates (`DQNUpdate`). Plain PyTorch.

The Ray learner actor (`firebreak.rollout.Learner`) runs exactly this class, so the same code
trains in a test, on a GPU machine without Ray, and inside a cluster.

Replay persistence (optional, the run's ``learner.save_replay``): `save_replay(path)` writes the
replay next to a checkpoint; while the replay stays as saved, `state_dict` names that file and a
token, and `load_state_dict` reads it back, so a resumed or restarted learner continues with the
replay it had instead of refilling it.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import numpy as np
import torch

from .demonstrations import DemonstrationBuffer
from .exploration import linear_schedule
from .networks import build_q_network
from .replay import (PrioritizedReplayBuffer, check_replay_file, default_static_slots, read_replay_meta,
                     replay_fingerprint, replay_layout)
from .update import DQNConfig, DQNUpdate

log = logging.getLogger("firebreak.dqn")


class DQN:
    """Owns the replay buffer, the demonstrations and the `DQNUpdate` (online + target
    networks, optimizer).

    obs_shape: (C, H, W) of the env's observations; device: default CUDA when available.
    static_channels: the layers fixed for a whole episode, which the replay stores once per
    episode; episode_steps: the env's episode length (at most), which sizes that store
    (`default_static_slots`).
    """

    def __init__(self, config: DQNConfig, obs_shape: tuple[int, int, int], *, device: str | None = None,
                 seed: int = 0, static_channels: tuple[int, ...] = (), episode_steps: int | None = None):
        torch.manual_seed(seed)
        self.config = config
        self.obs_shape = tuple(obs_shape)
        network = build_q_network(config.network, obs_shape[0], **config.network_kwargs)
        self.dqn = DQNUpdate(network, config, device)
        self.replay = PrioritizedReplayBuffer(config.buffer_size, self.obs_shape, config.gamma, config.n_step,
                                              config.alpha, config.priority_eps, seed=seed,
                                              static_channels=static_channels,
                                              static_slots=default_static_slots(config.buffer_size, episode_steps))
        self.demonstrations = DemonstrationBuffer(config.gamma, config.n_step, seed=seed + 1)
        self.env_steps = 0
        self._replay_file: dict | None = None  # {"file", "token"} of the saved copy of the replay
        self._replay_changes = -1  # replay.changes when that copy was made

    @property
    def device(self) -> str:
        """Where the networks live, e.g. 'cpu' or 'cuda:0 (NVIDIA H100 80GB HBM3)'."""
        device = self.dqn.device
        if device.type == "cuda":
            return f"{device} ({torch.cuda.get_device_name(device)})"
        return str(device)

    def add_fragment(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, terminated: np.ndarray,
                     truncated: np.ndarray, next_obs: np.ndarray | None, next_masks: np.ndarray, *,
                     final_obs: list[np.ndarray] | None = None) -> None:
        """Store a fragment of E envs x T steps: obs/next_obs (E, T, C, H, W), actions, rewards
        (scaled by `reward_scale` here), terminated, truncated (E, T), next_masks (E, T, H*W).
        `final_obs` instead of next_obs: per env the next observations of its episode ends and
        last step (`PrioritizedReplayBuffer.add_fragment`)."""
        rewards = rewards * self.config.reward_scale
        for e in range(rewards.shape[0]):
            self.replay.add_fragment(obs[e], actions[e], rewards[e], terminated[e], truncated[e],
                                     None if next_obs is None else next_obs[e], next_masks[e],
                                     final_obs=None if final_obs is None else final_obs[e])
        self.env_steps += rewards.size

    def add_demonstration(self, obs: np.ndarray, masks: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                          values: np.ndarray, terminated: bool) -> None:
        """Keep one expert episode for the run (`DemonstrationBuffer.add_episode`; rewards and
        values are scaled by `reward_scale` here, like the agent's rewards)."""
        scale = self.config.reward_scale
        self.demonstrations.add_episode(obs, masks, actions, rewards * scale, values * scale, terminated)

    def pretrain(self, num_updates: int) -> dict[str, float]:
        """`num_updates` gradient steps on demonstrations alone (TD + expert-value loss), before
        the agent has experience of its own; returns the averaged metrics as `train` does."""
        if len(self.demonstrations) == 0:
            raise ValueError("pretrain: no demonstrations loaded (add_demonstration first)")
        return self._run(num_updates, replay_rows=0)

    @property
    def can_train(self) -> bool:
        """True once the replay holds `learning_starts` transitions (and at least one batch);
        after a resume without a saved replay the refilled replay must reach that size again."""
        return len(self.replay) >= max(self.config.learning_starts, self.config.batch_size)

    def train(self, num_updates: int) -> dict[str, float]:
        """`num_updates` gradient steps; returns the metrics averaged over them plus the update
        count, replay size and importance-sampling beta. With demonstrations loaded,
        `demo_batch_fraction` of each batch is expert transitions."""
        cfg = self.config
        demo_rows = round(cfg.batch_size * cfg.demo_batch_fraction) if len(self.demonstrations) else 0
        return self._run(num_updates, replay_rows=cfg.batch_size - demo_rows)

    def _run(self, num_updates: int, replay_rows: int) -> dict[str, float]:
        cfg = self.config
        demo_rows = cfg.batch_size - replay_rows
        totals: dict[str, float] = {}
        beta = cfg.beta_start
        for _ in range(num_updates):
            beta = linear_schedule(cfg.beta_start, cfg.beta_end, cfg.beta_anneal_updates, self.dqn.num_updates)
            batch = self.replay.sample(replay_rows, beta) if replay_rows else None
            demos = self.demonstrations.sample(demo_rows) if demo_rows else None
            metrics, priorities = self.dqn.update(batch, demos)
            if batch is not None:
                self.replay.update_priorities(batch.indices, priorities)
            for key, value in metrics.items():
                totals[key] = totals.get(key, 0.0) + value
        means = {key: value / max(num_updates, 1) for key, value in totals.items()}
        return {**means, "updates": self.dqn.num_updates, "replay_size": len(self.replay), "beta": beta}

    def get_weights(self) -> dict[str, torch.Tensor]:
        """Online network weights as CPU tensors."""
        return self.dqn.get_weights()

    def state_dict(self) -> dict:
        """Networks, optimizer and counters; plus ``replay`` ({"file", "token"}) while the replay
        is exactly as `save_replay` (or `load_replay`) left it."""
        state = {"dqn": self.dqn.state_dict(), "env_steps": torch.tensor(self.env_steps)}
        if self._replay_file is not None and self._replay_changes == self.replay.changes:
            state["replay"] = dict(self._replay_file)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Networks, optimizer and counters; and the replay file the state names, when it is there."""
        self.dqn.load_state_dict(state["dqn"])
        self.env_steps = int(state["env_steps"])
        if "replay" in state:
            self.load_replay(state["replay"]["file"], token=state["replay"]["token"])

    def save_replay(self, path: str | Path) -> Path:
        """Write the replay to `path` (an .npz, atomically; `PrioritizedReplayBuffer.save`), unless
        that file already holds it unchanged. Returns the absolute path."""
        path = Path(path).resolve()
        current = self._replay_file is not None and self._replay_file["file"] == str(path)
        if not (current and self._replay_changes == self.replay.changes and path.is_file()):
            token = uuid.uuid4().hex
            self.replay.save(path, token=token, reward_scale=self.config.reward_scale)
            self._replay_file, self._replay_changes = {"file": str(path), "token": token}, self.replay.changes
        return path

    def load_replay(self, path: str | Path, token: str | None = None) -> bool:
        """Fill the replay from a `save_replay` file; True when loaded. A missing file, or one
        whose token differs from `token` (a later checkpoint overwrote it), is logged and skipped:
        the replay refills. A file saved with another buffer size, observation shape, gamma, n_step,
        alpha or reward_scale raises `ReplayFileError` naming the file and the fix."""
        path = Path(path).resolve()
        if not path.is_file():
            log.warning("%s: saved replay not found (on a cluster it lives on the learner's node); "
                        "the replay refills from empty", path)
            return False
        meta = read_replay_meta(path)
        if token is not None and meta["extra"].get("token") != token:
            log.warning("%s holds the replay of a later checkpoint than the one loaded; the replay refills from "
                        "empty (resume from latest.pt to continue with it)", path)
            return False
        self.replay.load(path, reward_scale=self.config.reward_scale)
        self._replay_file = {"file": str(path), "token": meta["extra"].get("token")}
        self._replay_changes = self.replay.changes
        log.info("%s: replay restored, %d transitions", path, len(self.replay))
        return True


def check_saved_replay(state: dict, config: DQNConfig, obs_shape: tuple[int, int, int], *,
                       static_channels: tuple[int, ...] = (), episode_steps: int | None = None) -> None:
    """Raise `ReplayFileError` now if the replay file a learner state names is here and would not
    load into `DQN(config, obs_shape, static_channels=..., episode_steps=...)`: what its
    `load_state_dict` would raise, told by the driver before a learner actor starts (whose
    failure Ray would only report as a dead actor)."""
    replay = state.get("replay")
    if replay is not None and Path(replay["file"]).is_file():
        fingerprint = replay_fingerprint(config.buffer_size, obs_shape, config.gamma, config.n_step, config.alpha)
        static_slots = default_static_slots(config.buffer_size, episode_steps) if static_channels else 0
        check_replay_file(replay["file"], fingerprint, replay_layout(static_channels, static_slots),
                          reward_scale=config.reward_scale)
