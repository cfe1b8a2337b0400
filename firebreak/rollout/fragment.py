"""`Fragment`: what one `EnvRunner.sample` call returns.

Arrays are indexed ``[env, t]``: ``envs_per_runner`` envs, ``fragment_length`` steps each, in
the order they were taken. Row ``[e, t]`` is one real transition: ``next_obs[e, t]`` is the obs
the env returned for ``actions[e, t]`` (for a finished episode the true final obs, never the
obs of the reset that follows), and ``obs[e, t + 1]`` is the reset obs when
``terminated[e, t] or truncated[e, t]``. A fragment never contains made-up data: a fault ends
it, the steps before the fault are kept as a shorter fragment, nothing crosses the fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class EpisodeStats:
    """One episode that ended inside a fragment.

    ``return_`` and ``length`` cover the whole episode, also its steps taken in earlier
    fragments of the same runner incarnation; ``info`` keeps the scalar items of the final info.
    """

    env_index: int
    step: int  # index t in the fragment of the episode's last transition
    return_: float
    length: int
    terminated: bool
    info: dict[str, float | int | bool] = field(default_factory=dict)


@dataclass
class EnvFault:
    """A fault of one env process that its runner recovered from by itself, respawning the
    process (`RunnerSpec.isolate_envs`): the fragment it comes with ends just before it."""

    kind: str  # the supervisor counter it goes to: "hangs", "crashes" or "env_errors"
    env_index: int
    lost_steps: int  # transitions of the fault's time step that were lost (one per env stepped)
    message: str


@dataclass
class Fragment:
    """Transitions of ``num_envs`` envs x ``length`` steps, plus episode stats and timing.

    Timing is in seconds: ``env_seconds`` inside ``env.step``/``env.reset``, ``policy_seconds``
    inside the policy, ``sample_seconds`` the whole call; ``median_step_seconds`` and
    ``median_reset_seconds`` feed the supervisor's stall detection. ``rss_bytes`` is the runner process's
    resident memory at the end of the call.
    """

    runner_index: int
    pid: int
    obs: np.ndarray  # (E, T, *obs_shape)
    actions: np.ndarray  # (E, T, *action_shape)
    rewards: np.ndarray  # (E, T) float32
    terminated: np.ndarray  # (E, T) bool
    truncated: np.ndarray  # (E, T) bool
    next_obs: np.ndarray  # (E, T, *obs_shape)
    next_masks: np.ndarray | None  # (E, T, n_actions) bool; None when the env has no action_masks()
    episodes: list[EpisodeStats]
    env_seconds: float
    policy_seconds: float
    sample_seconds: float
    rss_bytes: int
    # medians over the runner's last 100 env.step / env.reset calls, seconds (nan: none yet)
    median_step_seconds: float = float("nan")
    median_reset_seconds: float = float("nan")
    node_id: str = ""  # the Ray node the runner ran on ("" outside Ray)
    fault: EnvFault | None = None  # set on the last chunk of a call that an env process fault ended

    @property
    def num_envs(self) -> int:
        return self.rewards.shape[0]

    @property
    def length(self) -> int:
        return self.rewards.shape[1]

    @property
    def num_steps(self) -> int:
        """Env steps in this fragment (``num_envs * length``)."""
        return self.rewards.size
