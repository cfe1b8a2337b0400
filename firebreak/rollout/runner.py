"""`EnvRunner`: a Ray actor that hosts a few envs and a CPU copy of the policy.

One ``sample()`` call returns one whole `Fragment` (``fragment_length`` steps of every env),
its `Transitions` inside: one Ray round trip per fragment, never one per env step.
``sample_chunks()`` streams the same steps as a few chunks, so that the steps done before a
fault are not lost with it; each chunk is two items, its `Transitions` and then its small
`Fragment` stats record, so that the caller (who owns both) reads only the record and hands the
arrays on by ObjectRef: they stay in the object store of the runner's node, also when the
runner dies. Float observations travel as float16 when the observation space's bounds fit
(`transport_dtype`). By default the runner does not protect itself against its envs: a crash
kills it, a hang blocks it, and the driver-side `Supervisor` kills and restarts the whole
runner. With ``isolate_envs`` each env lives in a process of its own forked from a warm template
(`firebreak.rollout.env_process`): the runner finds a crashed or hung env itself (the hang
limits come from the supervisor with each call), respawns its process in milliseconds and ends
the call early with a shorter chunk that says what happened (`EnvFault`). The supervisor owns
deadlines, kills and restarts; ``heartbeat()`` runs in its own concurrency group so it answers
while ``sample()`` is busy (unless native code holds the GIL) and says which env operation
(``step``/``reset``) is running and for how long: the supervisor's stall detection compares
that with the median step time the fragments report.

The ``reset_env``/``step_env``/``call_env`` methods drive env 0 step by step for `RayVectorEnv`.
"""

from __future__ import annotations

import math
import os
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import gymnasium as gym
import numpy as np
import psutil
import ray

from firebreak.rollout.env_process import EnvHost, EnvProcessFault
from firebreak.rollout.fragment import EnvFault, EpisodeStats, Fragment, Transitions, transport_dtype
from firebreak.rollout.policy import Policy


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _thread_state(native_id: int) -> tuple[bool, float] | None:
    """(runnable now, CPU seconds used) of a thread of this process, from /proc (None elsewhere)."""
    try:
        with open(f"/proc/self/task/{native_id}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    # after the command: state, ppid, ... utime (field 14 of the whole line) and stime (15)
    return fields[0] == b"R", (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _scalar_items(info: dict) -> dict[str, float | int | bool]:
    """The items of an info dict that are Python or numpy scalars, as Python scalars."""
    return {k: np.asarray(v).item() for k, v in info.items() if np.isscalar(v) or (isinstance(v, np.ndarray) and v.ndim == 0)}


class _Chunk:
    """The arrays of one fragment (or chunk) being filled, ``[env, t]``; rows ``< done`` are complete."""

    def __init__(self, n_envs: int, length: int, obs0: np.ndarray, n_actions: int | None, obs_dtype: np.dtype | None):
        self.length, self.done, self.started = length, 0, time.monotonic()
        self.obs = np.empty((n_envs, length) + obs0.shape, obs_dtype or obs0.dtype)
        # every row's next obs, kept here so that salvage() reads completed rows only; only the
        # segment ends' ones travel (Transitions.final_obs)
        self.next_obs = np.empty_like(self.obs)
        self.rewards = np.empty((n_envs, length), np.float32)
        self.terminated = np.empty((n_envs, length), bool)
        self.truncated = np.empty((n_envs, length), bool)
        self.next_masks = None if n_actions is None else np.empty((n_envs, length, n_actions), bool)
        self.actions: np.ndarray | None = None  # shape known from the first actions
        self.episodes: list[EpisodeStats] = []
        self.env_seconds = self.policy_seconds = 0.0
        self.first_row = 0  # rows of the same sample call before this chunk


class Runner:
    """Hosts ``envs_per_runner`` envs built by ``env_factory()`` and steps them with ``policy``.

    Envs are built in the constructor (a factory that raises fails the actor's creation) and
    reset lazily on the first ``sample()``; env ``i`` is reset with ``seed + i`` (``seed=None``:
    fresh OS entropy). A plain class: `EnvRunner` is this class as a Ray actor, and the training
    driver's debugging mode (``rollout.runners: 0``) steps one in its own process.
    ``isolate_envs``: each env in a process of its own (see the module docstring).
    """

    def __init__(
        self,
        env_factory: Callable[[], gym.Env],
        policy: Policy | None = None,
        envs_per_runner: int = 1,
        fragment_length: int = 64,
        seed: int | None = None,
        runner_index: int = 0,
        isolate_envs: bool = False,
    ):
        # seconds an env op may take in an env process (None: no limit); set by each call
        self._limits: dict[str, float | None] = {"step": None, "reset": None}
        self._host = EnvHost(env_factory) if isolate_envs else None
        self._envs = [self._new_env(env_factory) for _ in range(envs_per_runner)]
        self._has_masks = self._envs[0].has_wrapper_attr("action_masks")
        self._obs_dtype = transport_dtype(self._envs[0].observation_space)
        self._policy = policy
        self._fragment_length = fragment_length
        self._index = runner_index
        self._rng = np.random.default_rng(seed)
        self._reset_seeds = [None if seed is None else seed + i for i in range(envs_per_runner)]
        self._obs: list[Any] | None = None  # current obs per env, None before the first sample
        self._masks: list[np.ndarray] | None = None
        self._ep_return = np.zeros(envs_per_runner)
        self._ep_length = np.zeros(envs_per_runner, dtype=np.int64)
        self._process = psutil.Process()
        self._env_memory = (-math.inf, 0)  # (time.monotonic(), PSS bytes) of the env processes, see _rss
        # Read by heartbeat() from its own thread; plain ints/floats/strings are safe to share here.
        self._steps_done = 0
        self._call_started: float | None = None
        self._op: str | None = None  # env operation running now: "step", "reset" or None
        self._op_started = 0.0
        self._op_thread, self._op_cpu = 0, 0.0  # native id and CPU time (s) of the thread at the op's start
        self._durations: dict[str, deque[float]] = {"step": deque(maxlen=100), "reset": deque(maxlen=100)}
        self._chunk: _Chunk | None = None  # the chunk being filled (read by salvage())
        self._call_rows = 0  # time steps completed in the current sample call
        self._node_id = ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""

    def _new_env(self, env_factory: Callable[[], gym.Env] | None = None) -> gym.Env:
        return self._host.spawn(self._limits) if self._host is not None else env_factory()

    def ready(self, reset_envs: bool = False) -> int:
        """This process's pid: the answer of a started (or restarted) runner. ``ray.kill`` is
        asynchronous, so the caller compares pids to know the call reached the new incarnation.
        ``reset_envs``: reset the envs now rather than in the first ``sample`` (a hot spare
        does this while it waits)."""
        if reset_envs and self._obs is None:
            self._reset_all()
        return os.getpid()

    def heartbeat(self) -> dict[str, Any]:
        """``pid``, ``steps`` (env steps since start), ``call_seconds`` (time in the current
        ``sample``/``step_env`` call, 0 when idle), ``op`` (the env operation running now,
        ``"step"``, ``"reset"`` or None), ``op_seconds`` (how long it has run, seconds),
        ``op_warm`` (this process has finished one of that kind before: the first one may
        compile or load caches), ``op_guarded`` (the op runs in an env process under this
        runner's own limit, which ends it), ``op_cpu_seconds`` and ``op_runnable`` (the CPU time
        the op's thread has used, and whether it is runnable now: a runnable thread that used
        little CPU waits for a core; Linux only, else absent) and ``rss_bytes`` of this process."""
        started, op, op_started = self._call_started, self._op, self._op_started
        thread = _thread_state(self._op_thread) if op is not None else None
        return {
            "pid": os.getpid(),
            "steps": self._steps_done,
            "call_seconds": 0.0 if started is None else time.monotonic() - started,
            "op": op,
            "op_seconds": 0.0 if op is None else time.monotonic() - op_started,
            "op_warm": op is not None and len(self._durations[op]) > 0,
            "op_guarded": op is not None and self._limits.get(op) is not None,
            "rss_bytes": self._rss(),
            **({} if thread is None else {"op_runnable": thread[0], "op_cpu_seconds": thread[1] - self._op_cpu}),
        }

    def _rss(self) -> int:
        """Resident memory of this process plus, with ``isolate_envs``, its env processes'
        proportional share (PSS: the template's pages that its forked children share are counted
        once), bytes. Reading PSS costs ~1 ms per process, so that part is refreshed every 5 s."""
        rss = self._process.memory_info().rss
        if self._host is None:
            return rss
        now = time.monotonic()
        if now - self._env_memory[0] > 5.0:
            pss = 0
            for process in self._process.children(recursive=True):
                try:
                    info = process.memory_full_info()
                    pss += getattr(info, "pss", info.rss)  # no PSS outside Linux: RSS, an upper bound
                except psutil.Error:
                    pass  # ended meanwhile
            self._env_memory = (now, pss)
        return rss + self._env_memory[1]

    def _timed(self, op: str, fn: Callable, *args, **kwargs):
        """Run one env operation, visible to ``heartbeat`` while it runs; its duration is kept."""
        self._op_started = time.monotonic()
        self._op_thread, self._op_cpu = threading.get_native_id(), time.thread_time()
        self._op = op
        try:
            result = fn(*args, **kwargs)
        finally:
            self._op = None
        self._durations[op].append(time.monotonic() - self._op_started)
        return result

    def _median(self, op: str) -> float:
        durations = self._durations[op]
        return float(np.median(durations)) if durations else math.nan

    def _reset_all(self) -> None:
        self._obs = [self._timed("reset", env.reset, seed=s)[0] for env, s in zip(self._envs, self._reset_seeds)]
        if self._has_masks:
            self._masks = [self._mask(env) for env in self._envs]

    def _mask(self, env: gym.Env) -> np.ndarray:
        return np.asarray(env.get_wrapper_attr("action_masks")(), dtype=bool)

    def _prepare(self, weights: Any, policy: Policy | None, runner_index: int | None,
                 stall_limits: dict[str, float] | None = None) -> None:
        self._call_started, self._call_rows = time.monotonic(), 0
        for op, limit in (stall_limits or {}).items():
            self._limits[op] = limit if math.isfinite(limit) else None
        if policy is not None:
            self._policy = policy
        if runner_index is not None:
            self._index = runner_index
        if weights is not None:
            self._policy.set_weights(weights)

    def sample(self, weights: Any = None, policy: Policy | None = None, runner_index: int | None = None,
               stall_limits: dict[str, float] | None = None) -> Fragment:
        """Step every env ``fragment_length`` times; ``weights`` (if not None) go to the policy first.

        ``policy`` and ``runner_index`` (if not None) replace the ones given at construction
        before that: a hot spare taking over runner ``runner_index``'s slot acts as it.
        ``stall_limits``: seconds a ``"step"``/``"reset"`` may take in an env process from now
        on (inf: no limit; used with ``isolate_envs``). An env process fault ends the call
        early: the fragment is shorter and carries the `EnvFault`."""
        self._prepare(weights, policy, runner_index, stall_limits)
        fragment = self._run(self._fragment_length)
        self._call_started = None
        return fragment

    def sample_chunks(self, weights: Any = None, policy: Policy | None = None, runner_index: int | None = None,
                      chunk_length: int | None = None, stall_limits: dict[str, float] | None = None
                      ) -> Iterator[Transitions | Fragment]:
        """`sample` as a generator of consecutive chunks of ``chunk_length`` steps per env
        (None: one chunk; the last may be shorter), so that the steps done before a fault can
        reach the caller (Ray: call with ``num_returns="streaming"``). Each chunk is two items:
        its `Transitions`, then its `Fragment` record (``transitions`` empty: the caller pairs
        them). When env code raises, the steps of the chunk completed before it come first as a
        shorter chunk, then the error. An env process fault ends the call after a shorter chunk
        whose record carries the `EnvFault`."""
        self._prepare(weights, policy, runner_index, stall_limits)
        done, chunk_length = 0, chunk_length or self._fragment_length
        while done < self._fragment_length:
            length = min(chunk_length, self._fragment_length - done)
            try:
                record = self._run(length)
            except Exception:
                (_, partial), arrays = self.salvage()
                if partial is not None:
                    yield arrays
                    yield partial
                raise
            done += length
            arrays, record.transitions = record.transitions[0], []
            yield arrays
            yield record
            if record.fault is not None:
                break
        self._call_started = None

    def salvage(self) -> tuple[tuple[int, Fragment | None], Transitions | None]:
        """``((rows, partial), arrays)``: the time steps (rows of all envs) completed in the
        current call, and the completed rows of the chunk in progress as a `Fragment` record and
        its `Transitions` (None, None: none). `EnvRunner` runs this in the heartbeat group, as
        two return objects (the caller reads the first and passes the arrays on by ref): a hung
        runner still hands over what it did before the hang. Rows of chunks already yielded are
        never included."""
        chunk = self._chunk
        if chunk is None:
            return (self._call_rows, None), None
        done = chunk.done  # read once: the env thread may finish another row meanwhile
        if done == 0:
            return (chunk.first_row, None), None
        partial = self._fragment(chunk, done)
        arrays, partial.transitions = partial.transitions[0], []
        return (chunk.first_row + done, partial), arrays

    def _run(self, length: int) -> Fragment:
        """Step every env ``length`` times from where the last call stopped; an env process
        fault cuts the fragment short (`_cut`)."""
        for i, env in enumerate(self._envs):
            if env is None:  # its process failed in the last call
                self._respawn(i)
        if self._obs is None:
            t = time.perf_counter()
            self._reset_all()
            reset_s = time.perf_counter() - t
        else:
            reset_s = 0.0
        n_envs = len(self._envs)
        chunk = _Chunk(n_envs, length, np.asarray(self._obs[0]), len(self._masks[0]) if self._has_masks else None,
                       self._obs_dtype)
        chunk.env_seconds, chunk.first_row = reset_s, self._call_rows
        self._chunk = chunk
        for t in range(length):
            chunk.obs[:, t] = self._obs
            tp = time.perf_counter()
            step_actions = np.asarray(self._policy(chunk.obs[:, t], np.stack(self._masks) if self._has_masks else None, self._rng))
            chunk.policy_seconds += time.perf_counter() - tp
            if chunk.actions is None:
                chunk.actions = np.empty((n_envs, length) + step_actions.shape[1:], step_actions.dtype)
            chunk.actions[:, t] = step_actions
            te = time.perf_counter()
            for i, env in enumerate(self._envs):
                try:
                    o, r, term, trunc, info = self._timed("step", env.step, step_actions[i])
                except EnvProcessFault as fault:
                    return self._cut(chunk, t, i, fault)
                chunk.next_obs[i, t], chunk.rewards[i, t], chunk.terminated[i, t], chunk.truncated[i, t] = o, r, term, trunc
                self._ep_return[i] += r
                self._ep_length[i] += 1
                if self._has_masks:
                    chunk.next_masks[i, t] = self._masks[i] = self._mask(env)
                if term or trunc:
                    chunk.episodes.append(EpisodeStats(i, t, float(self._ep_return[i]), int(self._ep_length[i]), bool(term), _scalar_items(info)))
                    self._ep_return[i], self._ep_length[i] = 0.0, 0
                    try:
                        o, _ = self._timed("reset", env.reset)
                    except EnvProcessFault as fault:
                        return self._cut(chunk, t, i, fault)
                    if self._has_masks:
                        self._masks[i] = self._mask(env)
                self._obs[i] = o
                self._steps_done += 1
            chunk.env_seconds += time.perf_counter() - te
            chunk.done = t + 1
            self._call_rows += 1
        self._chunk = None
        return self._fragment(chunk, length)

    def _cut(self, chunk: _Chunk, t: int, index: int, fault: EnvProcessFault) -> Fragment:
        """End the chunk before time step ``t``, where env ``index``'s process failed: the
        transitions of step ``t`` of envs ``0..index`` are lost (the later envs had not stepped
        yet and go on from their current obs); env ``index`` gets a new process, built and reset
        at the start of the next call, so its episode ends here."""
        self._envs[index] = None
        self._ep_return[index], self._ep_length[index] = 0.0, 0
        self._chunk = None
        kind = {"hang": "hangs", "crash": "crashes", "error": "env_errors"}[fault.kind]
        fragment = self._fragment(chunk, t)
        fragment.fault = EnvFault(kind, index, index + 1, str(fault))
        return fragment

    def _respawn(self, index: int) -> None:
        """A new process for env ``index``, reset from fresh OS entropy (not its lost episode)."""
        try:
            self._envs[index] = self._new_env()
            obs, _ = self._timed("reset", self._envs[index].reset)
        except EnvProcessFault as fault:
            self._envs[index] = None
            raise RuntimeError(f"could not start a new process for env {index}: {fault}") from fault
        if self._obs is not None:
            self._obs[index] = obs
            if self._has_masks:
                self._masks[index] = self._mask(self._envs[index])

    def _fragment(self, chunk: "_Chunk", rows: int) -> Fragment:
        """The first ``rows`` time steps of ``chunk`` as a `Fragment` holding its `Transitions`
        (copies when partial)."""
        cut = (lambda a: a) if rows == chunk.length else (lambda a: None if a is None else a[:, :rows].copy())
        arrays = Transitions(obs=cut(chunk.obs), actions=cut(chunk.actions), rewards=cut(chunk.rewards),
                             terminated=cut(chunk.terminated), truncated=cut(chunk.truncated), final_obs=None,
                             next_masks=cut(chunk.next_masks))
        arrays.final_obs = chunk.next_obs[:, :rows][arrays.ends]
        return Fragment(
            runner_index=self._index,
            pid=os.getpid(),
            num_envs=len(self._envs),
            length=rows,
            transitions=[arrays],
            episodes=[e for e in chunk.episodes if e.step < rows],
            env_seconds=chunk.env_seconds,
            policy_seconds=chunk.policy_seconds,
            sample_seconds=time.monotonic() - chunk.started,
            rss_bytes=self._rss(),
            median_step_seconds=self._median("step"),
            median_reset_seconds=self._median("reset"),
            node_id=self._node_id,
        )

    # -- one env, one step per call: the RayVectorEnv protocol -------------------------------

    def spaces(self) -> tuple[gym.Space, gym.Space, dict]:
        """``(observation_space, action_space, metadata)`` of env 0."""
        env = self._envs[0]
        return env.observation_space, env.action_space, env.metadata

    def reset_env(self, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        """``env.reset(seed=, options=)`` of env 0."""
        return self._envs[0].reset(seed=seed, options=options)

    def step_env(self, action: Any) -> tuple:
        """``env.step(action)`` of env 0 (no autoreset: the caller owns it)."""
        self._call_started = time.monotonic()
        result = self._envs[0].step(action)
        self._steps_done += 1
        self._call_started = None
        return result

    def call_env(self, name: str, args: tuple = (), kwargs: dict | None = None) -> Any:
        """Call method ``name`` of env 0 (or read the attribute if it is not callable)."""
        attr = self._envs[0].get_wrapper_attr(name)
        return attr(*args, **(kwargs or {})) if callable(attr) else attr


@ray.remote(concurrency_groups={"heartbeat": 1})
class EnvRunner(Runner):
    """`Runner` as a Ray actor. A restarted incarnation (after a crash or kill) resets its envs
    from fresh OS entropy, so it does not replay the episode that failed; ``heartbeat`` runs in
    its own concurrency group so it answers while ``sample`` is busy."""

    def __init__(self, env_factory, policy=None, envs_per_runner=1, fragment_length=64, seed=None, runner_index=0,
                 isolate_envs=False):
        with warnings.catch_warnings():  # Ray 2.60's own property reads its deprecated actor_id
            warnings.simplefilter("ignore", DeprecationWarning)
            restarted = ray.get_runtime_context().was_current_actor_reconstructed
        if restarted:
            seed = None
        super().__init__(env_factory, policy, envs_per_runner, fragment_length, seed, runner_index, isolate_envs)

    @ray.method(concurrency_group="heartbeat")
    def heartbeat(self) -> dict[str, Any]:
        return super().heartbeat()

    @ray.method(concurrency_group="heartbeat", num_returns=2)
    def salvage(self) -> tuple[tuple[int, Fragment | None], Transitions | None]:
        return super().salvage()


@dataclass
class RunnerSpec:
    """How to create `EnvRunner` actors: their envs, policy and Ray resources.

    ``policy`` is shared by all runners; ``policy_for_runner(index)``, when given, builds one per
    runner instead (e.g. a per-runner epsilon, Ape-X style). ``max_restarts``: Ray restarts of
    one actor before the supervisor replaces it with a fresh actor (-1: unlimited).
    ``num_cpus`` and ``resources`` are reserved per actor. ``isolate_envs``: each env in a process
    of its own, so the runner survives env crashes and hangs (`firebreak.rollout.env_process`).
    """

    env_factory: Callable[[], gym.Env]
    policy: Policy | None = None
    policy_for_runner: Callable[[int], Policy] | None = None
    envs_per_runner: int = 1
    fragment_length: int = 64
    seed: int | None = 0
    num_cpus: float = 1.0
    resources: dict[str, float] = field(default_factory=dict)
    max_restarts: int = -1
    isolate_envs: bool = False

    def policy_for(self, index: int) -> Policy | None:
        """The policy of runner ``index``: ``policy_for_runner(index)``, or the shared ``policy``."""
        return self.policy if self.policy_for_runner is None else self.policy_for_runner(index)

    def create(self, index: int, reseed: bool = False, policy_index: int | None = None) -> ray.actor.ActorHandle:
        """Start runner ``index``, its envs seeded from ``seed + index * envs_per_runner``, or
        from OS entropy with ``reseed`` (a replacement must not replay its predecessor's episodes).
        ``policy_index``: build the policy of that runner instead (a hot spare, whose own index
        lies past the runners', starts with runner 0's policy and adopts a slot's when it takes it)."""
        return create_runner(
            self.env_factory,
            self.policy_for(index if policy_index is None else policy_index),
            envs_per_runner=self.envs_per_runner,
            fragment_length=self.fragment_length,
            seed=None if self.seed is None or reseed else self.seed + index * self.envs_per_runner,
            runner_index=index,
            num_cpus=self.num_cpus,
            resources=self.resources,
            max_restarts=self.max_restarts,
            isolate_envs=self.isolate_envs,
        )


def create_runner(
    env_factory: Callable[[], gym.Env],
    policy: Policy | None = None,
    *,
    envs_per_runner: int = 1,
    fragment_length: int = 64,
    seed: int | None = None,
    runner_index: int = 0,
    num_cpus: float = 1.0,
    resources: dict[str, float] | None = None,
    max_restarts: int = -1,
    isolate_envs: bool = False,
) -> ray.actor.ActorHandle:
    """Create one `EnvRunner` actor with the fault-tolerance options the supervisor relies on.

    ``max_task_retries=0``: a retried sample could hang again or apply actions twice; the
    supervisor decides what to resubmit. ``SPREAD`` puts runners on different nodes.
    """
    return EnvRunner.options(
        num_cpus=num_cpus,
        resources=resources or {},
        max_restarts=max_restarts,
        max_task_retries=0,
        scheduling_strategy="SPREAD",
    ).remote(env_factory, policy, envs_per_runner, fragment_length, seed, runner_index, isolate_envs)
