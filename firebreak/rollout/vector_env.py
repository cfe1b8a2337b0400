"""`RayVectorEnv`: a gymnasium ``VectorEnv`` whose sub-envs live in Ray actors and cannot hang it.

The migration path for users who keep their own loop: ``AsyncVectorEnv(fns)`` ->
``RayVectorEnv(fns)``. Spaces, ``reset(seed=)``, the ``step`` 5-tuple, the NEXT_STEP autoreset
and the info merging are those of gymnasium 1.2.2's ``SyncVectorEnv``: on deterministic envs
with the same seeds the outputs are identical.

What differs is failure: every ``step``/``reset`` has a deadline (``step_timeout_s``). A sub-env
that hangs, crashes or raises is restarted (or replaced by a fresh actor). A step lost that way
ends the episode as a truncation: its slot returns the last observation the sub-env produced,
reward 0, ``terminated=False``, ``truncated=True``, and ``info["lost"][i]=True``; the next
``step`` resets it with a fresh seed (NEXT_STEP autoreset, exactly as after any truncation), so
no transition joins the episode before the loss to the one after it. The lost step's reward is
not an outcome: skip transitions whose ``info["lost"]`` is True. A reset (or autoreset) that
fails is retried on the restarted sub-env and flagged in ``info["lost"]`` too. ``info["lost"]``
is always present, a bool array of ``num_envs`` (also ``self.lost``); nothing else is added to
the infos, and NEXT_STEP mode has no ``final_obs``/``final_info`` keys, as in gymnasium.

Resources: each sub-env reserves ``num_cpus`` CPUs; by default min(1, free CPUs / num_envs),
so ``RayVectorEnv([make_env] * 8)`` starts on a 2-core laptop. One env step costs one Ray round
trip per sub-env (about a millisecond): for throughput use `Supervisor` fragments instead.
"""

from __future__ import annotations

import logging
import math
import time
from copy import deepcopy
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
import ray
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array, iterate
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError, RayTaskError

from firebreak.rollout.metrics import RolloutMetrics
from firebreak.rollout.runner import create_runner
from firebreak.rollout.supervisor import RolloutError

log = logging.getLogger(__name__)


class _Lost(Exception):
    """A sub-env call failed (``kind``: hangs, crashes or env_errors); internal to this module."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class RayVectorEnv(VectorEnv):
    """``num_envs = len(env_fns)`` sub-envs, one per `EnvRunner` actor.

    Args:
        env_fns: picklable zero-argument env factories, one per sub-env.
        step_timeout_s: deadline of one ``step``/``reset`` of all sub-envs, seconds.
        restart_timeout_s: how long a restarting sub-env may take to come back, seconds.
        max_restarts: Ray restarts of one actor before it is replaced by a fresh one (-1: unlimited).
        max_consecutive_failures: failures of one sub-env without a successful step in between
            before `RolloutError` (a deterministic bug must not loop).
        num_cpus: CPUs reserved per sub-env. None: min(1, free CPUs of the Ray instance /
            ``len(env_fns)``), rounded down to Ray's 0.0001. An explicit value whose total exceeds
            the instance's CPUs raises `RolloutError` at once. The value used is ``self.num_cpus``.
        resources: custom Ray resources reserved per sub-env.
        copy: return a copy of the batched observations (as ``SyncVectorEnv(copy=True)``).
    """

    def __init__(
        self,
        env_fns: Sequence[Callable[[], gym.Env]],
        *,
        step_timeout_s: float = 30.0,
        restart_timeout_s: float = 60.0,
        max_restarts: int = -1,
        max_consecutive_failures: int = 5,
        num_cpus: float | None = None,
        resources: dict[str, float] | None = None,
        copy: bool = True,
        metrics: RolloutMetrics | None = None,
    ):
        super().__init__()
        self._actors: list = []  # close() works even when the checks below raise
        self.env_fns = list(env_fns)
        self.num_envs = len(self.env_fns)
        self.copy = copy
        self.metrics = metrics or RolloutMetrics()
        self._step_timeout_s = step_timeout_s
        self._restart_timeout_s = restart_timeout_s
        self._max_restarts = max_restarts
        self._max_failures = max_consecutive_failures
        self.num_cpus = _cpus_per_env(num_cpus, self.num_envs)
        self._actor_options = {"num_cpus": self.num_cpus, "resources": resources, "max_restarts": max_restarts}
        self._actors = [self._create(i) for i in range(self.num_envs)]
        self._restarts_used = [0] * self.num_envs
        self._failures = [0] * self.num_envs
        try:
            self._pids = ray.get([actor.ready.remote() for actor in self._actors], timeout=restart_timeout_s)
            obs_space, act_space, metadata = ray.get(self._actors[0].spaces.remote(), timeout=restart_timeout_s)
        except GetTimeoutError as err:
            self.close_extras()
            raise RolloutError(
                f"the sub-envs did not all start within restart_timeout_s={restart_timeout_s:g} s; each reserves "
                f"num_cpus={self.num_cpus:g} CPUs and resources={resources or {}}, the Ray instance has "
                f"{ray.available_resources()} free: pass a smaller num_cpus or start more nodes"
            ) from err
        except RayActorError as err:
            self.close_extras()
            raise RolloutError(f"a sub-env failed to start:\n{err}") from err
        self.single_observation_space, self.single_action_space = obs_space, act_space
        self.observation_space = batch_space(obs_space, self.num_envs)
        self.action_space = batch_space(act_space, self.num_envs)
        self.metadata = {**metadata, "autoreset_mode": AutoresetMode.NEXT_STEP}
        self._observations = create_empty_array(obs_space, n=self.num_envs, fn=np.zeros)
        self._autoreset_envs = np.zeros(self.num_envs, dtype=bool)
        self._last_obs: list[Any] = [None] * self.num_envs  # per sub-env, what a lost step returns
        self.lost = np.zeros(self.num_envs, dtype=bool)  #: slots lost in the last step/reset

    def _create(self, i: int):
        return create_runner(self.env_fns[i], None, envs_per_runner=1, fragment_length=1, runner_index=i, **self._actor_options)

    # -- gymnasium API ----------------------------------------------------------------------

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        """Reset every sub-env; ``seed`` as in ``SyncVectorEnv`` (int ``s`` -> ``s + i``).
        ``options["reset_mask"]`` (partial resets) is not supported."""
        if options is not None and "reset_mask" in options:
            raise NotImplementedError("RayVectorEnv.reset does not support options['reset_mask']")
        if seed is None:
            seed = [None] * self.num_envs
        elif isinstance(seed, int):
            seed = [seed + i for i in range(self.num_envs)]
        refs = [actor.reset_env.remote(s, options) for actor, s in zip(self._actors, seed)]
        results = self._gather(refs, resets=np.ones(self.num_envs, dtype=bool))
        self._autoreset_envs[:] = False
        infos: dict[str, Any] = {}
        obs = []
        for i, (o, info) in enumerate(results):
            obs.append(o)
            infos = self._add_info(infos, info, i)
        return self._batch(obs), self._with_lost(infos)

    def step(self, actions):
        """Step every sub-env (NEXT_STEP autoreset: a finished sub-env is reset instead); a lost
        step comes back truncated with the sub-env's last observation (see the module docstring)."""
        resets = self._autoreset_envs.copy()
        refs = [
            actor.reset_env.remote(None, None) if resets[i] else actor.step_env.remote(action)
            for i, (actor, action) in enumerate(zip(self._actors, iterate(self.action_space, actions)))
        ]
        results = self._gather(refs, resets)
        obs = []
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminations = np.zeros(self.num_envs, dtype=bool)
        truncations = np.zeros(self.num_envs, dtype=bool)
        infos: dict[str, Any] = {}
        steps = 0
        for i, result in enumerate(results):
            if result is None:  # lost step: the episode ends, truncated, at its last real observation
                o, info = self._last_obs[i], {}
                truncations[i] = True
            elif resets[i]:  # an autoreset
                o, info = result
            else:
                o, rewards[i], terminations[i], truncations[i], info = result
                self._failures[i] = 0
                steps += 1
            obs.append(o)
            infos = self._add_info(infos, info, i)
        self._autoreset_envs = terminations | truncations
        self.metrics.add("env_steps", steps)
        return self._batch(obs), rewards, terminations, truncations, self._with_lost(infos)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call method ``name`` of every sub-env (or read the attribute); a failure raises."""
        return tuple(ray.get([a.call_env.remote(name, args, kwargs) for a in self._actors], timeout=self._step_timeout_s))

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Attribute ``name`` of every sub-env."""
        return self.call(name)

    def action_masks(self) -> np.ndarray:
        """``(num_envs, n_actions)`` bool: the sub-envs' ``action_masks()`` stacked."""
        return np.stack(self.call("action_masks")).astype(bool)

    def close_extras(self, **kwargs: Any) -> None:
        """Kill the actors."""
        for actor in self._actors:
            ray.kill(actor, no_restart=True)
        self._actors = []

    # -- internals --------------------------------------------------------------------------

    def _batch(self, obs: list) -> Any:
        self._last_obs = obs
        self._observations = concatenate(self.single_observation_space, obs, self._observations)
        return deepcopy(self._observations) if self.copy else self._observations

    def _with_lost(self, infos: dict) -> dict:
        infos["lost"] = self.lost.copy()
        return infos

    def _gather(self, refs: list, resets: np.ndarray) -> list:
        """Results of one call per sub-env (``resets[i]``: call ``i`` is a reset). A lost sub-env is
        restarted; its result is then the reset of the restarted sub-env for a reset call, or None
        for a step call (the step is lost; the next ``step`` resets it)."""
        deadline = time.monotonic() + self._step_timeout_s
        pending = list(refs)
        while pending and time.monotonic() < deadline:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=max(deadline - time.monotonic(), 0.0))
        results = []
        self.lost[:] = False
        for i, ref in enumerate(refs):
            try:
                if ref in pending:
                    raise _Lost("hangs", f"no answer within the {self._step_timeout_s:.1f} s deadline")
                results.append(self._get(ref))
            except _Lost as lost:
                self.lost[i] = True
                if not resets[i]:
                    self.metrics.add("lost_steps")
                results.append(self._recover(i, lost, reset=bool(resets[i])))
        return results

    def _get(self, ref) -> Any:
        """``ray.get`` of a finished call, failures turned into `_Lost`."""
        try:
            return ray.get(ref)
        except RayActorError as err:
            raise _Lost("crashes", f"actor died: {type(err).__name__}: {err}") from err
        except RayTaskError as err:
            raise _Lost("env_errors", f"env raised:\n{err}") from err

    def _recover(self, i: int, lost: _Lost, reset: bool) -> tuple[Any, dict] | None:
        """Count the loss and restart (or replace) sub-env ``i``; with ``reset``, reset it and
        return its ``(obs, info)``, else None (a step's autoreset resets it)."""
        while True:
            self.metrics.add(lost.kind)
            self._failures[i] += 1
            log.error("sub-env %d: %s (%s); restarting it", i, lost, lost.kind)
            if self._failures[i] >= self._max_failures:
                raise RolloutError(f"sub-env {i} failed {self._failures[i]} times in a row; last error:\n{lost}")
            down_since = time.monotonic()
            self._restart(i, alive=lost.kind != "crashes")
            try:
                self._wait_ready(i, down_since)
                result = self._get_in_time(self._actors[i].reset_env.remote(None, None)) if reset else None
            except _Lost as again:
                lost = again
                continue
            self.metrics.restart_latency(time.monotonic() - down_since)
            return result

    def _restart(self, i: int, alive: bool) -> None:
        if self._max_restarts != -1 and self._restarts_used[i] >= self._max_restarts:
            ray.kill(self._actors[i], no_restart=True)
            self._actors[i] = self._create(i)
            self._restarts_used[i] = 0
            self.metrics.add("replacements")
            log.warning("sub-env %d: restart budget spent, replaced by a fresh actor", i)
            return
        if alive:
            ray.kill(self._actors[i], no_restart=False)
        self._restarts_used[i] += 1
        self.metrics.add("restarts")

    def _wait_ready(self, i: int, since: float) -> None:
        deadline = since + self._restart_timeout_s
        while True:
            try:
                pid = ray.get(self._actors[i].ready.remote(), timeout=max(deadline - time.monotonic(), 0.0))
            except ActorUnavailableError:
                continue  # the call reached the old incarnation while Ray restarts it: ask again
            except GetTimeoutError as err:
                raise _Lost("hangs", f"not ready within {self._restart_timeout_s:.1f} s of restart") from err
            except RayActorError as err:
                raise _Lost("crashes", f"died while restarting: {err}") from err
            if pid != self._pids[i]:  # not the old incarnation, which ray.kill may not have reached yet
                self._pids[i] = pid
                return

    def _get_in_time(self, ref) -> Any:
        ready, _ = ray.wait([ref], timeout=self._step_timeout_s)
        if not ready:
            raise _Lost("hangs", f"reset after restart took over {self._step_timeout_s:.1f} s")
        return self._get(ref)


def _cpus_per_env(num_cpus: float | None, n: int) -> float:
    """CPUs each of ``n`` sub-envs reserves: ``num_cpus`` once checked against the instance's
    CPUs, or, when None, min(1, free CPUs / n) rounded down to Ray's granularity (0.0001)."""
    if not ray.is_initialized():
        raise RolloutError("RayVectorEnv needs a running Ray: call ray.init(...) first "
                           "(ray.init(address='local') starts a private instance)")
    if num_cpus is None:
        free = ray.available_resources().get("CPU", 0.0)
        cpus = min(1.0, math.floor(free / n * 10_000) / 10_000)
        if cpus <= 0:
            raise RolloutError(f"RayVectorEnv: no CPU of the Ray instance is free for {n} sub-envs "
                               f"({free:g} free): pass num_cpus explicitly (num_cpus=0 shares the busy CPUs)")
        return cpus
    total = ray.cluster_resources().get("CPU", 0.0)
    if num_cpus < 0 or num_cpus * n > total + 1e-9:
        raise RolloutError(
            f"RayVectorEnv: num_cpus={num_cpus:g} per sub-env x {n} sub-envs needs {num_cpus * n:g} CPUs, the "
            f"Ray instance has {total:g}: pass num_cpus={math.floor(total / n * 10_000) / 10_000:g} or less, "
            f"or leave num_cpus out (default: min(1, free CPUs / {n}))"
        )
    return num_cpus
