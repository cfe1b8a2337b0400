"""`Fragment` (a small stats record) and `Transitions` (its arrays): what one sample call returns.

The two travel apart. Through Ray, the supervisor reads a fragment's stats record and hands the
learner the `Transitions` by ObjectRef (``Fragment.transitions`` holds the refs, one per chunk),
so the driver never holds observation arrays; in one process (``Runner.sample``) the record
holds the `Transitions` themselves. `Fragment.arrays` gives the joined arrays either way.

Arrays are indexed ``[env, t]``: ``envs_per_runner`` envs, ``fragment_length`` steps each, in
the order they were taken. Row ``[e, t]`` is one real transition. Its next observation is
``obs[e, t + 1]`` unless the row ends a segment (``Transitions.ends``: ``terminated`` or
``truncated``, or the fragment's last step); only then is it shipped, in ``final_obs``: for a
finished episode the true final obs, never the obs of the reset that follows (which is
``obs[e, t + 1]``). ``Transitions.next_obs`` rebuilds the full ``(E, T, ...)`` array. A fragment
never contains made-up data: a fault ends it, the steps before the fault are kept as a shorter
fragment (or, for a runner that died, the chunks it had handed over), nothing crosses the fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import numpy as np

#: float16's largest finite value: a float observation space bounded within it ships as float16.
FLOAT16_MAX = float(np.finfo(np.float16).max)


def transport_dtype(space) -> np.dtype | None:
    """The dtype observations of ``space`` travel in: float16 for a float ``Box`` whose bounds
    are finite and within float16's range (the replay stores float16 anyway, so casting in the
    runner loses nothing the learner would have kept), else None (the env's own dtype)."""
    low, high = getattr(space, "low", None), getattr(space, "high", None)
    dtype = getattr(space, "dtype", None)
    if low is None or high is None or dtype is None or not np.issubdtype(dtype, np.floating):
        return None
    bounds = np.concatenate([np.ravel(low), np.ravel(high)]).astype(np.float64)
    return np.dtype(np.float16) if np.all(np.isfinite(bounds)) and np.all(np.abs(bounds) <= FLOAT16_MAX) else None


@dataclass
class Transitions:
    """The arrays of a fragment (or one chunk of it), ``[env, t]``.

    ``final_obs`` holds the next observation of each row in `ends`, in row-major ``(e, t)``
    order; every other row's next observation is the following row's ``obs``.
    ``next_masks[e, t]`` is the action mask of row ``[e, t]``'s next observation (None: the env
    has no ``action_masks()``): one mask per transition, never a copy of one already sent.
    """

    obs: np.ndarray  # (E, T, *obs_shape), float16 for float observations in float16's range
    actions: np.ndarray  # (E, T, *action_shape)
    rewards: np.ndarray  # (E, T) float32
    terminated: np.ndarray  # (E, T) bool
    truncated: np.ndarray  # (E, T) bool
    final_obs: np.ndarray  # (ends.sum(), *obs_shape), obs.dtype
    next_masks: np.ndarray | None  # (E, T, n_actions) bool

    @property
    def ends(self) -> np.ndarray:
        """(E, T) bool: rows whose next observation is in ``final_obs`` (episode ends and the last step)."""
        ends = self.terminated | self.truncated
        if ends.shape[1]:  # (a chunk an env process fault ended before its first step has none)
            ends[:, -1] = True
        return ends

    @property
    def length(self) -> int:
        return self.rewards.shape[1]

    @property
    def next_obs(self) -> np.ndarray:
        """(E, T, *obs_shape): the observation each row's action led to (a new array)."""
        out = np.empty_like(self.obs)
        out[:, :-1] = self.obs[:, 1:]
        out[self.ends] = self.final_obs
        return out

    def add_to(self, learner) -> None:
        """Store these transitions in a `firebreak.dqn.Learner` (its ``add_fragment``, final_obs form)."""
        learner.add_fragment(self.obs, self.actions, self.rewards, self.terminated, self.truncated, None,
                             self.next_masks, final_obs=self.finals_per_env())

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays (what travels, give or take a few hundred bytes of framing)."""
        arrays = (self.obs, self.actions, self.rewards, self.terminated, self.truncated, self.final_obs, self.next_masks)
        return sum(a.nbytes for a in arrays if a is not None)

    def finals_per_env(self) -> list[np.ndarray]:
        """``final_obs`` split by env: env ``e``'s rows in `ends`, in time order."""
        return np.split(self.final_obs, np.cumsum(self.ends.sum(axis=1))[:-1])


def join_transitions(parts: list[Transitions]) -> Transitions:
    """Consecutive chunks of one runner's call as one `Transitions`. A chunk's last row that
    ends no episode drops its ``final_obs``: it is the next chunk's first obs."""
    if len(parts) == 1:
        return parts[0]
    split = [p.finals_per_env() for p in parts]
    finals = []
    for e in range(parts[0].rewards.shape[0]):
        for i, part in enumerate(parts):
            rows = split[i][e]
            inner_cut = i < len(parts) - 1 and not (part.terminated[e, -1] or part.truncated[e, -1])
            finals.append(rows[:-1] if inner_cut else rows)
    cat = lambda name: None if getattr(parts[0], name) is None else np.concatenate([getattr(p, name) for p in parts], axis=1)
    return Transitions(cat("obs"), cat("actions"), cat("rewards"), cat("terminated"), cat("truncated"),
                       np.concatenate(finals), cat("next_masks"))


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
    """The stats record of ``num_envs`` envs x ``length`` steps: episode stats, timing and where
    its arrays are (``transitions``: one `Transitions` or ObjectRef of one per chunk, in order).

    Timing is in seconds: ``env_seconds`` inside ``env.step``/``env.reset``, ``policy_seconds``
    inside the policy, ``sample_seconds`` the whole call; ``median_step_seconds`` and
    ``median_reset_seconds`` feed the supervisor's stall detection. ``rss_bytes`` is the runner process's
    resident memory at the end of the call.
    """

    runner_index: int
    pid: int
    num_envs: int
    length: int
    episodes: list[EpisodeStats]
    env_seconds: float
    policy_seconds: float
    sample_seconds: float
    rss_bytes: int
    # medians over the runner's last 100 env.step / env.reset calls, seconds (nan: none yet)
    median_step_seconds: float = float("nan")
    median_reset_seconds: float = float("nan")
    node_id: str = ""  # the Ray node the runner ran on ("" outside Ray)
    transitions: list = field(default_factory=list)  # Transitions or ObjectRefs of them, one per chunk
    fault: EnvFault | None = None  # set on the last chunk of a call that an env process fault ended

    @property
    def num_steps(self) -> int:
        """Env steps in this fragment (``num_envs * length``)."""
        return self.num_envs * self.length

    def arrays(self, timeout: float | None = None) -> Transitions:
        """The fragment's `Transitions`, its chunks joined; refs are fetched with ``ray.get``
        (the learner does this; the driver never needs to)."""
        parts = list(self.transitions)
        refs = [i for i, p in enumerate(parts) if not isinstance(p, Transitions)]
        if refs:
            import ray

            for i, value in zip(refs, ray.get([parts[i] for i in refs], timeout=timeout)):
                parts[i] = value
        if not parts:
            raise ValueError(f"fragment of runner {self.runner_index} (pid {self.pid}) carries no transitions")
        return join_transitions(parts)
