"""`Supervisor`: the driver-side watchdog that keeps `EnvRunner` actors producing fragments.

Ray Core never restarts a hung actor and ``ray.cancel`` does not interrupt a running sync actor
task, so the supervisor owns the deadlines. It keeps exactly one ``sample`` call in flight per
runner and waits on all of them (plus the readiness calls of restarting runners) with one
``ray.wait``. Per fault:

* past the deadline, or (with ``stall_timeout_s``) no env step seen by the heartbeat for that
  long (hang): heartbeat for the log line, ``ray.kill(no_restart=False)``. The heartbeat runs
  in its own concurrency group, so it answers while ``sample`` runs: a slow but progressing
  call is left alone until its deadline, a stuck one is killed early;
* ``RayActorError`` (the process died: exit, signal, OOM kill): Ray restarts it;
* ``RayTaskError`` (env code raised in ``sample``): logged with its traceback, runner restarted;

then the call's fragment is counted as lost (never replaced by made-up data) and the runner gets
a new call once its ``__ray_ready__`` answers. A runner whose restart budget is spent, that dies
while starting, or that does not come back within ``restart_timeout_s`` is replaced by a fresh
actor. After ``max_consecutive_failures`` failures of one runner without a fragment in between,
`RolloutError` is raised with the last error (the env's own traceback when it raised): a
deterministic bug fails loudly instead of looping.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import ray
from ray.exceptions import ActorUnavailableError, GetTimeoutError, ObjectLostError, RayActorError, RayTaskError

from firebreak.rollout.fragment import Fragment
from firebreak.rollout.metrics import RolloutMetrics
from firebreak.rollout.runner import RunnerSpec

log = logging.getLogger(__name__)


class RolloutError(RuntimeError):
    """A runner keeps failing (deterministic bug in the env or its factory): training must stop."""


@dataclass
class _Slot:
    """One runner position: its current actor and the one call in flight for it."""

    index: int
    actor: Any
    ref: Any = None
    kind: str = "ready"  # "ready": waiting for (re)start; "sample": a fragment is in flight
    deadline: float = math.inf  # time.monotonic() past which the call counts as hung
    timeout_s: float = 0.0
    restarts_used: int = 0  # Ray restarts of this actor (kills and crashes)
    down_since: float | None = None  # when the current fault was detected
    failures: int = 0  # consecutive failures since the last fragment
    last_error: str = ""
    weights_version: int = -1  # version of the weights this incarnation has
    pid: int | None = None
    beat_ref: Any = None  # heartbeat in flight (stall detection)
    beat_due: float = math.inf  # when to send the next heartbeat
    steps_seen: int = -1  # runner's step counter in the last heartbeat
    progress_at: float = 0.0  # when the step counter was last seen to change (or the call started)


class Supervisor:
    """Run ``num_runners`` runners from ``spec`` and hand out their fragments as they arrive.

    Args:
        spec: how to build the runners (env factory, policy, fragment size, resources, max_restarts).
        num_runners: number of `EnvRunner` actors.
        sample_timeout_s: deadline of one ``sample`` call, seconds. ``None``: derived as
            ``max(min_timeout_s, timeout_factor * p95)`` of the last 100 fragment durations,
            ``first_timeout_s`` until 5 fragments have been seen.
        restart_timeout_s: how long a (re)starting runner may take to answer ``ready()``
            before it is replaced, seconds (also covers env construction).
        stall_timeout_s: a sample call whose runner shows no new env step for this long counts
            as hung before its deadline, seconds (heartbeats every half of it). ``None``: off;
            only the deadline applies. Must exceed the slowest legitimate env step.
        heartbeat_timeout_s: how long to wait for the heartbeat of a hung runner, seconds.
        max_consecutive_failures: failures of one runner without a fragment in between before
            `RolloutError`.
        memory_limit_bytes: recycle (restart) a runner whose RSS after a fragment exceeds this.
        metrics: where counters go (a new `RolloutMetrics` by default).
    """

    def __init__(
        self,
        spec: RunnerSpec,
        num_runners: int,
        *,
        sample_timeout_s: float | None = None,
        min_timeout_s: float = 10.0,
        timeout_factor: float = 4.0,
        first_timeout_s: float = 120.0,
        restart_timeout_s: float = 60.0,
        stall_timeout_s: float | None = None,
        heartbeat_timeout_s: float = 0.5,
        max_consecutive_failures: int = 5,
        memory_limit_bytes: int | None = None,
        metrics: RolloutMetrics | None = None,
    ):
        self.spec = spec
        self.metrics = metrics or RolloutMetrics()
        self._sample_timeout_s = sample_timeout_s
        self._min_timeout_s = min_timeout_s
        self._timeout_factor = timeout_factor
        self._first_timeout_s = first_timeout_s
        self._restart_timeout_s = restart_timeout_s
        self._stall_timeout_s = stall_timeout_s
        self._heartbeat_timeout_s = heartbeat_timeout_s
        self._max_failures = max_consecutive_failures
        self._memory_limit = memory_limit_bytes
        self._steps_per_call = spec.envs_per_runner * spec.fragment_length
        self._durations: deque[float] = deque(maxlen=100)
        self._weights_ref = None
        self._weights_version = 0
        self._slots = [_Slot(i, spec.create(i)) for i in range(num_runners)]
        for slot in self._slots:
            self._submit_ready(slot)

    # -- public API -------------------------------------------------------------------------

    def set_weights(self, weights: Any) -> None:
        """Publish new policy weights: one ``ray.put``; each runner's next call carries the ref."""
        self._weights_ref = ray.put(weights)
        self._weights_version += 1

    def next_fragment(self, timeout: float | None = None) -> Fragment:
        """The next fragment any runner delivers, handling every fault met on the way.

        Raises ``TimeoutError`` if none arrives within ``timeout`` seconds (``None``: no limit;
        the deadlines still guarantee progress or `RolloutError`).
        """
        end = math.inf if timeout is None else time.monotonic() + timeout
        while True:
            now = time.monotonic()
            for slot in self._slots:
                if self._stall_timeout_s is not None and slot.kind == "sample":
                    self._check_progress(slot, now)
                if now >= slot.deadline and not ray.wait([slot.ref], timeout=0)[0]:
                    self._on_deadline(slot)
            if now >= end:
                raise TimeoutError(f"no fragment within {timeout} s")
            wake = min(min(self._next_event(s) for s in self._slots), end)
            beats = [s.beat_ref for s in self._slots if s.beat_ref is not None]
            ready, _ = ray.wait([s.ref for s in self._slots] + beats, num_returns=1, timeout=max(wake - now, 0.0))
            slot = next((s for s in self._slots if ready and s.ref == ready[0]), None)
            if slot is not None:  # (an answered heartbeat is read by _check_progress above)
                fragment = self._on_ready(slot)
                if fragment is not None:
                    return fragment

    def __iter__(self) -> Iterator[Fragment]:
        while True:
            yield self.next_fragment()

    def stats(self) -> dict[str, float]:
        """Counters (see `firebreak.rollout.metrics.COUNTERS`), restart latency and the current deadline."""
        return {**self.metrics.as_dict(), "num_runners": len(self._slots), "sample_timeout_s": self._sample_timeout()}

    def close(self) -> None:
        """Kill every actor this supervisor created."""
        for slot in self._slots:
            ray.kill(slot.actor, no_restart=True)
        self._slots = []

    def __enter__(self) -> "Supervisor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- calls ------------------------------------------------------------------------------

    def _sample_timeout(self) -> float:
        if self._sample_timeout_s is not None:
            return self._sample_timeout_s
        if len(self._durations) < 5:
            return self._first_timeout_s
        return max(self._min_timeout_s, self._timeout_factor * float(np.percentile(self._durations, 95)))

    def _submit_ready(self, slot: _Slot) -> None:
        slot.kind, slot.ref = "ready", slot.actor.ready.remote()
        slot.beat_ref, slot.beat_due = None, math.inf
        start = slot.down_since if slot.down_since is not None else time.monotonic()
        slot.timeout_s = self._restart_timeout_s
        slot.deadline = start + self._restart_timeout_s

    def _submit_sample(self, slot: _Slot) -> None:
        # Weights travel only to runners that don't have this version yet (ref, not a copy).
        weights = None
        if self._weights_ref is not None and slot.weights_version != self._weights_version:
            weights = self._weights_ref
            slot.weights_version = self._weights_version
        slot.timeout_s = self._sample_timeout()
        slot.kind, slot.ref = "sample", slot.actor.sample.remote(weights)
        slot.deadline = time.monotonic() + slot.timeout_s
        if self._stall_timeout_s is not None:
            slot.beat_ref, slot.steps_seen, slot.progress_at = None, -1, time.monotonic()
            slot.beat_due = slot.progress_at + self._stall_timeout_s / 2

    def _next_event(self, slot: _Slot) -> float:
        """When the loop must look at this slot again without a result (time.monotonic())."""
        if self._stall_timeout_s is None or slot.kind != "sample":
            return slot.deadline
        beat = slot.beat_due if slot.beat_ref is None else math.inf
        return min(slot.deadline, beat, slot.progress_at + self._stall_timeout_s)

    def _check_progress(self, slot: _Slot, now: float) -> None:
        """Stall detection: heartbeat every ``stall_timeout_s / 2``; no new step for
        ``stall_timeout_s`` (or no answer showing one) pulls the deadline in to now."""
        if slot.beat_ref is not None and ray.wait([slot.beat_ref], timeout=0)[0]:
            try:
                beat = ray.get(slot.beat_ref)
            except RayActorError:
                beat = None  # the process died: the sample call reports it, not this
            # A call still queued (not started: call_seconds 0) is not stuck in an env; the
            # deadline bounds it.
            if beat is not None and (beat["steps"] != slot.steps_seen or beat["call_seconds"] == 0.0):
                slot.steps_seen, slot.progress_at = beat["steps"], now
            slot.beat_ref = None
        if slot.beat_ref is None and now >= slot.beat_due:
            slot.beat_ref = slot.actor.heartbeat.remote()
            slot.beat_due = now + self._stall_timeout_s / 2
        if now - slot.progress_at >= self._stall_timeout_s:
            slot.deadline = min(slot.deadline, now)

    # -- outcomes ---------------------------------------------------------------------------

    def _on_ready(self, slot: _Slot) -> Fragment | None:
        if slot.kind == "ready":
            self._on_started(slot)
            return None
        try:
            fragment: Fragment = ray.get(slot.ref)
        except RayActorError as err:
            self.metrics.add("crashes")
            self._lose(slot, f"actor died during sample: {_first_line(err)}", str(err))
            self._restart_or_replace(slot, kill=False)
            return None
        except RayTaskError as err:
            self.metrics.add("env_errors")
            log.error("runner %d (pid %s): env raised in sample; fragment lost, restarting the runner:\n%s", slot.index, slot.pid, err)
            self._lose(slot, None, str(err))
            self._restart_or_replace(slot, kill=True)
            return None
        except ObjectLostError as err:
            # The fragment was finished but its object store went with its node before we read
            # it (ray.wait had already called it ready). Its runner is dead or unreachable too.
            self.metrics.add("crashes")
            self._lose(slot, f"fragment lost with its object store: {_first_line(err)}", str(err))
            self._restart_or_replace(slot, kill=True)
            return None
        slot.failures, slot.pid = 0, fragment.pid
        self._durations.append(fragment.sample_seconds)
        self.metrics.add("fragments")
        self.metrics.add("env_steps", fragment.num_steps)
        if self._memory_limit is not None and fragment.rss_bytes > self._memory_limit:
            self.metrics.add("recycled")
            log.warning("runner %d (pid %d): RSS %.0f MB over the %.0f MB limit; recycling it", slot.index, fragment.pid, fragment.rss_bytes / 2**20, self._memory_limit / 2**20)
            slot.down_since = time.monotonic()
            self._restart_or_replace(slot, kill=True)
        else:
            self._submit_sample(slot)
        return fragment

    def _on_started(self, slot: _Slot) -> None:
        try:
            pid = ray.get(slot.ref)
        except ActorUnavailableError:
            # Transient: the call reached the old incarnation while Ray restarts it. Ask again;
            # the restart deadline (from down_since) still bounds the wait.
            self._resubmit_ready(slot)
            return
        except RayActorError as err:
            kind = "env_errors" if err.actor_init_failed else "crashes"
            self.metrics.add(kind)
            self._fail(slot, f"runner {slot.index} died while starting ({kind}): {_first_line(err)}", str(err))
            self._replace(slot)
            return
        if pid == slot.pid:
            # The old incarnation answered before ray.kill reached it: ask again.
            self._resubmit_ready(slot)
            return
        slot.pid = pid
        if slot.down_since is not None:
            self.metrics.restart_latency(time.monotonic() - slot.down_since)
            slot.down_since = None
        self._submit_sample(slot)

    def _resubmit_ready(self, slot: _Slot) -> None:
        deadline = slot.deadline
        self._submit_ready(slot)
        slot.deadline = deadline

    def _on_deadline(self, slot: _Slot) -> None:
        if slot.kind == "ready":
            self._fail(slot, f"runner {slot.index} not ready within {slot.timeout_s:.1f} s of (re)start", "")
            self._replace(slot)
            return
        self.metrics.add("hangs")
        stalled = self._stall_timeout_s is not None and time.monotonic() - slot.progress_at >= self._stall_timeout_s
        why = f"no env step for {self._stall_timeout_s:.1f} s" if stalled else f"sample exceeded its {slot.timeout_s:.1f} s deadline"
        self._lose(slot, f"{why} ({self._heartbeat(slot)}); killing it", "")
        self._restart_or_replace(slot, kill=True)

    def _heartbeat(self, slot: _Slot) -> str:
        """A description of what the hung runner reports, for the log line."""
        try:
            beat = ray.get(slot.actor.heartbeat.remote(), timeout=self._heartbeat_timeout_s)
        except (GetTimeoutError, RayActorError) as err:
            return f"no heartbeat within {self._heartbeat_timeout_s} s: {type(err).__name__}"
        slot.pid = beat["pid"]
        return f"heartbeat: pid {beat['pid']}, {beat['steps']} steps done, {beat['call_seconds']:.1f} s in the call, RSS {beat['rss_bytes'] / 2**20:.0f} MB"

    # -- recovery ---------------------------------------------------------------------------

    def _lose(self, slot: _Slot, message: str | None, detail: str) -> None:
        """Count the in-flight fragment as lost (whole) and record the failure."""
        self.metrics.add("lost_fragments")
        self.metrics.add("lost_steps", self._steps_per_call)
        if message is not None:
            log.error("runner %d (pid %s): %s; fragment of %d steps lost", slot.index, slot.pid, message, self._steps_per_call)
        self._fail(slot, message or "env raised in sample", detail)

    def _fail(self, slot: _Slot, message: str, detail: str) -> None:
        slot.failures += 1
        slot.last_error = f"{message}\n{detail}".strip()
        slot.down_since = time.monotonic()
        if slot.failures >= self._max_failures:
            raise RolloutError(
                f"runner {slot.index} failed {slot.failures} times in a row without producing a fragment; "
                f"stopping instead of restarting it forever. Last error:\n{slot.last_error}"
            )

    def _restart_or_replace(self, slot: _Slot, kill: bool) -> None:
        """Restart the actor through Ray (killing it first if it is still alive) or, with its
        restart budget spent, replace it."""
        slot.weights_version = -1  # the next incarnation starts without weights
        budget = self.spec.max_restarts
        if budget != -1 and slot.restarts_used >= budget:
            self._replace(slot)
            return
        if kill:
            ray.kill(slot.actor, no_restart=False)
        slot.restarts_used += 1
        self.metrics.add("restarts")
        self._submit_ready(slot)

    def _replace(self, slot: _Slot) -> None:
        ray.kill(slot.actor, no_restart=True)
        slot.actor = self.spec.create(slot.index, reseed=True)
        slot.restarts_used, slot.weights_version = 0, -1
        self.metrics.add("replacements")
        log.warning("runner %d: replaced by a fresh actor", slot.index)
        if slot.down_since is None:
            slot.down_since = time.monotonic()
        self._submit_ready(slot)


def _first_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
