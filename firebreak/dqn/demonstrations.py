"""`DemonstrationBuffer`: whole expert episodes, kept for the whole run (DQfD, Hester et al. 2018).

A demonstration is one episode played by an expert: observations obs[0..T] (obs[T] the final
one), the action masks of those observations, the expert's actions, the env's rewards and the
expert's value of every cell at every step (what it expects a break there to save, in reward
units). The learner pre-trains on these transitions alone, then keeps mixing a share of them
into every batch; `DQNUpdate.update` applies the expert-value loss to them, which pulls the
ranking of the Q-values over all valid cells towards the expert's, next to the same n-step TD
loss as the agent's own transitions. They are never overwritten: the expert stays an anchor.

Why every cell's value and not only the expert's action: one action per state among ~4,000
cells is a weak signal (a DQfD large-margin loss on it left the network worse than the expert
it copied, docs/experiments.md); a value per cell is 4,000 targets per state.

Storage: each episode's observations once (T + 1 of them, float16 like the replay) and its
values (float32), so an episode of T steps over C x H x W costs about
(T + 1) * (2 C H W + H W) + 4 T H W bytes; 32 episodes of 205 steps over 18 x 64 x 64 take 1 GiB.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .replay import n_step_returns


class DemonstrationBatch(NamedTuple):
    """B expert n-step transitions: the fields of `ReplayBatch` (no weights or indices: demos are
    sampled uniformly and have no priorities) plus `mask`, the valid actions in `obs`, and
    `values`, the expert's value of every cell in `obs`."""

    obs: np.ndarray  # (B, C, H, W)
    action: np.ndarray  # (B,) int64, the expert's cell
    returns: np.ndarray  # (B,) float32, sum_{m < k} gamma**m r_{t+m}
    n_steps: np.ndarray  # (B,) int64
    terminated: np.ndarray  # (B,) bool
    next_obs: np.ndarray  # (B, C, H, W)
    next_mask: np.ndarray  # (B, H*W) bool
    mask: np.ndarray  # (B, H*W) bool
    values: np.ndarray  # (B, H*W) float32, in (scaled) reward units


class DemonstrationBuffer:
    """Expert episodes with n-step returns (same gamma and n as the replay), sampled uniformly."""

    def __init__(self, gamma: float, n_step: int, obs_dtype: np.dtype | type = np.float16, seed: int | None = None):
        self.gamma, self.n_step, self.obs_dtype = gamma, n_step, obs_dtype
        self.rng = np.random.default_rng(seed)
        self._obs: list[np.ndarray] = []  # per episode (T + 1, C, H, W)
        self._mask: list[np.ndarray] = []  # per episode (T + 1, H*W)
        self._action: list[np.ndarray] = []  # per episode (T,)
        self._returns: list[np.ndarray] = []
        self._n_steps: list[np.ndarray] = []
        self._terminated: list[np.ndarray] = []
        self._values: list[np.ndarray] = []  # per episode (T, H*W)
        self._index = np.zeros((0, 2), np.int64)  # (episode, t) of every transition

    def __len__(self) -> int:
        return len(self._index)

    @property
    def episodes(self) -> int:
        return len(self._obs)

    @property
    def nbytes(self) -> int:
        return sum(o.nbytes + m.nbytes + v.nbytes for o, m, v in zip(self._obs, self._mask, self._values))

    def add_episode(self, obs: np.ndarray, masks: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                    values: np.ndarray, terminated: bool) -> None:
        """Store one expert episode of T steps: obs (T + 1, C, H, W), masks (T + 1, H*W) bool,
        actions (T,) int, rewards (T,) float and values (T, H, W) or (T, H*W) float, both
        already scaled like the replay's rewards, terminated: whether obs[T] ended the episode
        (False: it was cut and the last step bootstraps)."""
        steps = len(actions)
        if obs.shape[0] != steps + 1 or masks.shape[0] != steps + 1 or len(rewards) != steps or steps == 0:
            raise ValueError(f"add_episode: need T >= 1 actions and rewards with T + 1 observations and masks; "
                             f"got {steps} actions, {len(rewards)} rewards, {obs.shape[0]} observations, "
                             f"{masks.shape[0]} masks")
        values = np.asarray(values, np.float32).reshape(len(values), -1)
        if values.shape != (steps, masks.shape[1]):
            raise ValueError(f"add_episode: need values of shape ({steps}, {masks.shape[1]}) (one per step and "
                             f"cell); got {values.shape}")
        if not masks[np.arange(steps), actions].all():
            raise ValueError("add_episode: an expert action is not valid under its observation's mask")
        t = np.arange(steps)
        returns, n_steps = n_step_returns(np.asarray(rewards, np.float64), np.full(steps, steps - 1), self.gamma,
                                          self.n_step)
        episode = len(self._obs)
        self._obs.append(np.asarray(obs, self.obs_dtype))
        self._mask.append(np.asarray(masks, bool))
        self._action.append(np.asarray(actions, np.int64))
        self._returns.append(returns.astype(np.float32))
        self._n_steps.append(n_steps.astype(np.int64))
        # Only windows that reach the last step can see the episode's end.
        self._terminated.append((t + n_steps == steps) & bool(terminated))
        self._values.append(values)
        self._index = np.concatenate([self._index, np.stack([np.full(steps, episode), t], axis=1)])

    def sample(self, batch_size: int) -> DemonstrationBatch:
        """batch_size transitions drawn uniformly with replacement."""
        if len(self) == 0:
            raise ValueError("sample: the demonstration buffer is empty")
        picks = self._index[self.rng.integers(len(self), size=batch_size)]
        rows = []
        for episode, t in picks:
            k = self._n_steps[episode][t]
            rows.append((self._obs[episode][t], self._action[episode][t], self._returns[episode][t], k,
                         self._terminated[episode][t], self._obs[episode][t + k], self._mask[episode][t + k],
                         self._mask[episode][t], self._values[episode][t]))
        return DemonstrationBatch(*(np.stack(column) for column in zip(*rows)))


def demonstrations_nbytes(episodes: int, steps: int, obs_shape: tuple[int, int, int],
                          obs_dtype: np.dtype | type = np.float16) -> int:
    """`DemonstrationBuffer.nbytes` with `episodes` episodes of `steps` steps: observations and
    masks of T + 1 states and float32 expert values of T steps per episode."""
    channels, height, width = obs_shape
    per_episode = ((steps + 1) * (channels * height * width * np.dtype(obs_dtype).itemsize + height * width)
                   + steps * height * width * 4)
    return episodes * per_episode
