"""`Supervisor`: the driver-side watchdog that keeps `EnvRunner` actors producing fragments.

Ray Core never restarts a hung actor and ``ray.cancel`` does not interrupt a running sync actor
task, so the supervisor owns the deadlines. It keeps exactly one ``sample`` call in flight per
runner and waits on all of them (plus the readiness calls of restarting runners and the
heartbeats) with one ``ray.wait``. Per fault:

* stall (hang): the heartbeat, which runs in its own concurrency group and so answers while
  ``sample`` runs, shows one ``env.step``/``env.reset`` running for longer than
  ``max(stall_factor x its recent median, stall_floor_s)`` (medians from the fragments), or
  no heartbeat answers for that long: ``ray.kill(no_restart=False)``. A step whose thread is
  runnable but has used less CPU time than that limit (an overloaded machine: it waits for a
  core) gets up to ``STARVED_GRACE`` x the limit; A slow but progressing
  call is left alone; the first step and reset of each runner process (compilation, caches)
  and every call before the first fragment are bounded by the deadline only;
* past the deadline (the last resort, also with stall detection off): the same;
* ``RayActorError`` (the process died: exit, signal, OOM kill): Ray restarts it. A runner on the
  supervisor's own node whose process has exited is seen at once (psutil, every 50 ms, with
  stall detection on) rather than after Ray's ~1 s death notice;
* ``RayTaskError`` (env code raised in ``sample``): logged with its traceback, runner restarted;
* with ``spec.isolate_envs`` the runner handles its envs' crashes, hangs (the stall limits travel
  with every call) and errors itself, respawning the env process: the call ends early with a
  chunk that carries the `EnvFault`; it is counted like the others, with no restart. The
  supervisor's own stall limit then waits the runner's longest (``STARVED_GRACE`` x the limit,
  for a step starved of CPU) plus 1 s, for a runner that is stuck itself;

then the call's fragment is counted as lost (never replaced by made-up data). With
``spare_runners`` K > 0, K more runners are started and wait idle (envs built and reset): a
failed runner's slot goes to an idle spare at once (its first call carries the current weights
and the slot's policy), and the failed actor restarts in the background and becomes a spare.
Without an idle spare the slot waits for its own runner's restart (``__ray_ready__``).
A runner whose restart budget is spent, that dies while starting, or that does not come back
within ``restart_timeout_s`` is replaced by a fresh actor. After ``max_consecutive_failures``
failures of one slot (or spare) without a fragment (or a start) in between, `RolloutError` is
raised with the last error (the env's own traceback when it raised): a deterministic bug fails
loudly instead of looping.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import numpy as np
import psutil
import ray
from ray.exceptions import ActorUnavailableError, GetTimeoutError, ObjectLostError, RayActorError, RayError, RayTaskError

from firebreak.rollout.env_process import STARVED_GRACE
from firebreak.rollout.fragment import EnvFault, Fragment
from firebreak.rollout.metrics import RolloutMetrics
from firebreak.rollout.runner import RunnerSpec

log = logging.getLogger(__name__)


class RolloutError(RuntimeError):
    """A runner keeps failing (deterministic bug in the env or its factory): training must stop."""


@dataclass
class _Slot:
    """One runner position (or spare place) and the actor in it, with its one call in flight."""

    index: int
    actor: Any
    spare: bool = False  # a spare place: its actor waits idle for a slot to take over
    failures: int = 0  # consecutive failures since the last fragment (spare: since the last start)
    last_error: str = ""
    # -- the actor and its call: these travel with the actor when a spare takes over (_ACTOR_FIELDS)
    ref: Any = None
    kind: str = "ready"  # "ready": waiting for (re)start; "sample": a fragment is in flight; "idle": a started spare
    deadline: float = math.inf  # time.monotonic() past which the call counts as hung
    timeout_s: float = 0.0
    restarts_used: int = 0  # Ray restarts of this actor (kills and crashes)
    down_since: float | None = None  # when the current fault was detected
    probing: bool = False  # unreachable (ActorUnavailableError): its ready call tells a blip from a restart
    weights_version: int = -1  # version of the weights this incarnation has (-1: a new incarnation)
    pid: int | None = None
    node_id: str = ""  # the node of its process, from its first fragment
    gone: bool = False  # its process has exited (seen by the supervisor on the same node)
    beat_ref: Any = None  # heartbeat in flight (stall detection)
    beat_sent: float = 0.0
    beat_due: float = math.inf  # when to send the next heartbeat
    last_beat: dict | None = None
    stalled: str = ""  # why the call was declared stuck ("" while it is not)
    chunks: list = field(default_factory=list)  # chunks of the fragment in flight read so far
    pending: Any = None  # ref of the arrays of a chunk whose record has not been read yet


_ACTOR_FIELDS = ("actor", "ref", "kind", "deadline", "timeout_s", "restarts_used", "down_since", "probing",
                 "weights_version", "pid", "node_id", "gone", "beat_ref", "beat_sent", "beat_due", "last_beat",
                 "stalled", "chunks", "pending")
_SILENT = "no heartbeat answer"
#: How often an idle spare gets a heartbeat, seconds.
_SPARE_CHECK_S = 1.0
#: How often the supervisor looks whether the processes of runners on its own node still exist, seconds.
_LOCAL_POLL_S = 0.05
#: A heartbeat is sent this long after the current env op would cross its stall limit, seconds.
_BEAT_MARGIN_S = 0.01
#: How long after its runner's own longest wait an env op that the runner guards itself may run
#: before the supervisor declares the runner stuck, seconds.
_GUARD_S = 1.0


class Supervisor:
    """Run ``num_runners`` runners from ``spec`` and hand out their fragments as they arrive.

    A fragment handed out is its `Fragment` record; its arrays stay in the object store of the
    runner's node and ``fragment.transitions`` holds their refs (one per chunk), for the learner
    to fetch: this process reads no observation.

    Args:
        spec: how to build the runners (env factory, policy, fragment size, resources, max_restarts).
        num_runners: number of `EnvRunner` actors that sample.
        sample_timeout_s: deadline of one ``sample`` call, seconds. ``None``: derived as
            ``max(min_timeout_s, timeout_factor * p95)`` of the last 100 fragment durations,
            ``first_timeout_s`` until 5 fragments have been seen.
        restart_timeout_s: how long a (re)starting runner may take to answer ``ready()``
            before it is replaced, seconds (also covers env construction).
        stall_factor: an env step (or reset) running longer than ``stall_factor`` x the median
            step (reset) time of recent fragments, and longer than ``stall_floor_s`` seconds,
            counts as hung. ``None``: off; only the deadline applies.
        stall_floor_s: the least time a step may take before it counts as hung, seconds.
        spare_runners: idle started runners kept ready to take a failed runner's slot.
        chunk_length: a runner streams each fragment as chunks of this many steps per env
            (``None``: one chunk). A fault then loses only what the failed process had not
            handed over: see `_lose`.
        death_notice_s: how much longer than the stall limit a heartbeat may go unanswered
            before its runner counts as hung, seconds: a dead process answers nothing, and Ray
            takes ~1-2 s to report it (then it counts as a crash); native code holding the GIL
            also delays the answer.
        heartbeat_timeout_s: how long to wait for the heartbeat of a runner past its deadline, seconds.
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
        stall_factor: float | None = 20.0,
        stall_floor_s: float = 0.5,
        spare_runners: int = 0,
        chunk_length: int | None = None,
        death_notice_s: float = 2.0,
        heartbeat_timeout_s: float = 0.5,
        max_consecutive_failures: int = 5,
        memory_limit_bytes: int | None = None,
        metrics: RolloutMetrics | None = None,
    ):
        if stall_factor is not None and stall_factor <= 0:
            raise ValueError(f"stall_factor must be > 0 or None (off), got {stall_factor}")
        if stall_floor_s < 0 or spare_runners < 0:
            raise ValueError(f"stall_floor_s and spare_runners must be >= 0, got {stall_floor_s}, {spare_runners}")
        if chunk_length is not None and not 1 <= chunk_length <= spec.fragment_length:
            raise ValueError(f"chunk_length must be in 1..fragment_length ({spec.fragment_length}) or None, got {chunk_length}")
        self.spec = spec
        self._chunk_length = chunk_length or spec.fragment_length
        self.metrics = metrics or RolloutMetrics()
        self._sample_timeout_s = sample_timeout_s
        self._min_timeout_s = min_timeout_s
        self._timeout_factor = timeout_factor
        self._first_timeout_s = first_timeout_s
        self._restart_timeout_s = restart_timeout_s
        self._stall_factor = stall_factor
        self._stall_floor_s = stall_floor_s
        self._death_notice_s = death_notice_s
        self._heartbeat_timeout_s = heartbeat_timeout_s
        self._max_failures = max_consecutive_failures
        self._memory_limit = memory_limit_bytes
        self._durations: deque[float] = deque(maxlen=100)
        self._medians: dict[str, deque[float]] = {"step": deque(maxlen=20), "reset": deque(maxlen=20)}
        self._weights_ref = None
        self._weights_version = 0
        self._salvaged: list[Fragment] = []  # partial fragments of hung calls, not yet handed out
        self._node_id = ray.get_runtime_context().get_node_id()
        self._slots = [_Slot(i, spec.create(i)) for i in range(num_runners)]
        # spares get indices past the runners' (their own seeds) and runner 0's policy until they take a slot
        self._spares = [_Slot(num_runners + k, spec.create(num_runners + k, policy_index=0), spare=True)
                        for k in range(spare_runners)]
        for slot in self._slots + self._spares:
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
            slots = self._slots + self._spares
            for slot in slots:
                if slot.kind == "idle":
                    self._check_spare(slot, now)
                if slot.kind == "sample" and self._stall_on():
                    self._check_progress(slot, now)
                if now >= slot.deadline and not ray.wait([slot.ref], timeout=0)[0]:
                    self._on_deadline(slot)
            if self._salvaged:
                return self._salvaged.pop(0)
            if now >= end:
                raise TimeoutError(f"no fragment within {timeout} s")
            wake = min(min(self._next_event(s) for s in slots), end)
            refs = [s.ref for s in slots if s.ref is not None] + [s.beat_ref for s in slots if s.beat_ref is not None]
            ready, _ = ray.wait(refs, num_returns=1, timeout=max(wake - now, 0.0))
            slot = next((s for s in slots if ready and _same(s.ref, ready[0])), None)
            if slot is not None:  # (an answered heartbeat is read by _check_progress above)
                fragment = self._on_ready(slot)
                if fragment is not None:
                    return fragment

    def __iter__(self) -> Iterator[Fragment]:
        while True:
            yield self.next_fragment()

    def stats(self) -> dict[str, float]:
        """Counters (see `firebreak.rollout.metrics.COUNTERS`), restart latency, the current
        deadline and stall limit (seconds; inf until a fragment gave the step time)."""
        return {**self.metrics.as_dict(), "num_runners": len(self._slots), "spare_runners": len(self._spares),
                "sample_timeout_s": self._sample_timeout(), "stall_limit_s": self._stall_limit("step")}

    def close(self) -> None:
        """Kill every actor this supervisor created."""
        for slot in self._slots + self._spares:
            ray.kill(slot.actor, no_restart=True)
        self._slots, self._spares = [], []

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
        # a spare resets its envs while it waits, so that work leaves the takeover's critical path
        slot.kind, slot.ref = "ready", slot.actor.ready.remote(reset_envs=slot.spare)
        slot.beat_ref, slot.beat_due, slot.stalled = None, math.inf, ""
        start = slot.down_since if slot.down_since is not None else time.monotonic()
        slot.timeout_s = self._restart_timeout_s
        slot.deadline = start + self._restart_timeout_s

    def _submit_sample(self, slot: _Slot) -> None:
        kwargs: dict[str, Any] = {}
        if self.spec.isolate_envs:
            kwargs["stall_limits"] = {op: self._stall_limit(op) for op in ("step", "reset")}
        if self._spares and slot.weights_version == -1:
            # a new incarnation or a spare may have been created as another runner: act as this one
            kwargs["runner_index"] = slot.index
            if self.spec.policy_for_runner is not None:
                kwargs["policy"] = self.spec.policy_for(slot.index)
        # Weights travel only to runners that don't have this version yet (ref, not a copy).
        weights = None
        if self._weights_ref is not None and slot.weights_version != self._weights_version:
            weights = self._weights_ref
        slot.weights_version = self._weights_version
        slot.timeout_s = self._sample_timeout()
        slot.chunks = []
        stream = slot.actor.sample_chunks.options(num_returns="streaming")
        slot.kind, slot.ref = "sample", stream.remote(weights, chunk_length=self._chunk_length, **kwargs)
        now = time.monotonic()
        slot.deadline = now + slot.timeout_s
        slot.beat_ref, slot.last_beat, slot.stalled, slot.gone = None, None, "", False
        slot.beat_due = now + min(self._stall_limit("step"), self._stall_floor_s)

    # -- stall detection --------------------------------------------------------------------

    def _stall_on(self) -> bool:
        return self._stall_factor is not None and len(self._medians["step"]) > 0

    def _stall_limit(self, op: str) -> float:
        """Seconds one env ``op`` ("step"/"reset") may run: max(stall_factor x recent median,
        stall_floor_s); inf while off or before any fragment reported that op."""
        if self._stall_factor is None or not self._medians[op]:
            return math.inf
        return max(self._stall_factor * float(np.median(self._medians[op])), self._stall_floor_s)

    def _beat_patience(self) -> float:
        """How long a heartbeat may go unanswered before the runner counts as stuck, seconds:
        the longest stall limit known plus ``death_notice_s``."""
        limits = (self._stall_limit("step"), self._stall_limit("reset"))
        return max(limit for limit in limits if limit < math.inf) + self._death_notice_s

    def _next_event(self, slot: _Slot) -> float:
        """When the loop must look at this slot again without a result (time.monotonic())."""
        if slot.kind == "idle":
            return slot.beat_due if slot.beat_ref is None else math.inf  # an answer wakes ray.wait
        if slot.kind != "sample" or not self._stall_on():
            return slot.deadline
        if self._local(slot):
            return min(slot.deadline, time.monotonic() + _LOCAL_POLL_S)
        if slot.beat_ref is None:
            return min(slot.deadline, slot.beat_due)
        return min(slot.deadline, slot.beat_sent + self._beat_patience())

    def _check_spare(self, slot: _Slot, now: float) -> None:
        """An idle spare gets a heartbeat every ``_SPARE_CHECK_S``: one that died while waiting
        is restarted (a crash, no call lost) instead of failing the slot it would take."""
        if slot.beat_ref is not None and ray.wait([slot.beat_ref], timeout=0)[0]:
            try:
                beat = ray.get(slot.beat_ref)
            except ActorUnavailableError:
                self._probe(slot)  # a network blip, or a death Ray has not confirmed yet
                return
            except RayActorError as err:
                self.metrics.add("crashes")
                log.error("spare %d (pid %s) died while idle: %s; restarting it", slot.index, slot.pid, _first_line(err))
                self._fail(slot, f"spare {slot.index} died while idle: {_first_line(err)}", str(err))
                self._restart_or_replace(slot, kill=False)
                return
            if beat["pid"] != slot.pid:  # it died between two heartbeats and Ray restarted it already:
                self._probe(slot)  # the probe counts that and resets the new process's envs
                return
            slot.beat_ref, slot.beat_due = None, now + _SPARE_CHECK_S
        if slot.beat_ref is None and now >= slot.beat_due:
            slot.beat_ref = slot.actor.heartbeat.remote()

    def _local(self, slot: _Slot) -> bool:
        return slot.pid is not None and slot.node_id == self._node_id

    def _check_progress(self, slot: _Slot, now: float) -> None:
        """Read an answered heartbeat, send the next one when due (just after the running env
        op would cross its stall limit), and pull the deadline in to now on a stall. A runner
        on this node whose process has exited is seen at once (Ray reports it ~1 s later)."""
        if self._local(slot) and not _process_exists(slot.pid):
            slot.gone = True
            slot.deadline = min(slot.deadline, now)
            return
        if slot.beat_ref is not None:
            if ray.wait([slot.beat_ref], timeout=0)[0]:
                try:
                    beat = ray.get(slot.beat_ref)
                except RayActorError:
                    beat = None  # the process died: the sample call reports it, not this
                slot.beat_ref = None
                if beat is not None:
                    self._read_beat(slot, beat, now)
            elif now - slot.beat_sent >= self._beat_patience():
                slot.stalled = f"{_SILENT} for {now - slot.beat_sent:.2f} s"
        if slot.stalled:
            slot.deadline = min(slot.deadline, now)
        elif slot.beat_ref is None and now >= slot.beat_due:
            slot.beat_ref, slot.beat_sent, slot.beat_due = slot.actor.heartbeat.remote(), now, math.inf

    def _read_beat(self, slot: _Slot, beat: dict, now: float) -> None:
        slot.last_beat = beat
        op, limit = beat["op"], self._stall_limit("step")
        if op is not None and beat["op_warm"] and self._stall_limit(op) < math.inf:
            limit = self._stall_limit(op)
            if beat.get("op_guarded"):  # the runner ends this op itself; step in only if it does not
                limit = STARVED_GRACE * limit + _GUARD_S
            if beat["op_seconds"] >= limit and _starved(beat, limit):
                # runnable but it has not had the limit's worth of CPU: waiting for a core, not stuck
                slot.beat_due = now + max(0.05, limit / 4)
                return
            if beat["op_seconds"] >= limit:
                median = float(np.median(self._medians[op]))
                slot.stalled = (f"env.{op}() running for {beat['op_seconds']:.2f} s, over its stall limit "
                                f"{limit:.2f} s (max({self._stall_factor:g} x median {median * 1e3:.1f} ms, "
                                f"{self._stall_floor_s:g} s))")
                return
            limit = limit - beat["op_seconds"] + _BEAT_MARGIN_S
        slot.beat_due = now + limit

    # -- outcomes ---------------------------------------------------------------------------

    def _on_ready(self, slot: _Slot) -> Fragment | None:
        if slot.kind == "ready":
            self._on_started(slot)
            return None
        try:
            chunk = self._read_chunk(slot)
        except ActorUnavailableError as err:  # (a RayActorError: caught first)
            # Ray cannot reach the runner and does not know yet whether it died: a network blip
            # and a node that just died read the same. The call is lost (what it handed over
            # is kept); the probe then tells the same process (no restart) from a new one.
            partial = self._lose(slot, f"runner unreachable during sample: {_first_line(err)}", str(err), alive=False)
            self._recover(slot, self._probe)
            return partial
        except RayActorError as err:
            self.metrics.add("crashes")
            partial = self._lose(slot, f"actor died during sample: {_first_line(err)}", str(err), alive=False)
            self._recover(slot, lambda s: self._restart_or_replace(s, kill=False))
            return partial
        except RayTaskError as err:
            self.metrics.add("env_errors")
            log.error("runner %d (pid %s): env raised in sample (its step lost, the steps before it handed over); restarting the runner:\n%s", slot.index, slot.pid, err)
            partial = self._lose(slot, None, str(err), alive=False, raised=True)
            self._recover(slot, lambda s: self._restart_or_replace(s, kill=True))
            return partial
        except ObjectLostError as err:
            # The chunk was finished but its object store went with its node before we read
            # it (ray.wait had already called it ready). Its runner is dead or unreachable too.
            self.metrics.add("crashes")
            partial = self._lose(slot, f"chunk lost with its object store: {_first_line(err)}", str(err), alive=False)
            self._recover(slot, lambda s: self._restart_or_replace(s, kill=True))
            return partial
        if chunk is None:  # a chunk's arrays: its record follows
            return None
        slot.chunks.append(chunk)
        if not slot.node_id and chunk.node_id == self._node_id and _process_exists(chunk.pid):
            slot.node_id = chunk.node_id  # its process is visible from here (same node and pid namespace)
        if chunk.fault is not None:
            return self._on_env_fault(slot, chunk.fault)
        if sum(c.length for c in slot.chunks) < self.spec.fragment_length:
            return None
        fragment, slot.chunks = _join(slot.chunks), []
        slot.failures, slot.pid = 0, fragment.pid
        self._durations.append(fragment.sample_seconds)
        for op, median in (("step", fragment.median_step_seconds), ("reset", fragment.median_reset_seconds)):
            if not math.isnan(median):
                self._medians[op].append(median)
        self._count_delivered(fragment)
        if self._memory_limit is not None and fragment.rss_bytes > self._memory_limit:
            self.metrics.add("recycled")
            log.warning("runner %d (pid %d): RSS %.0f MB over the %.0f MB limit; recycling it", slot.index, fragment.pid, fragment.rss_bytes / 2**20, self._memory_limit / 2**20)
            slot.down_since = time.monotonic()
            self._recover(slot, lambda s: self._restart_or_replace(s, kill=True))
        else:
            self._submit_sample(slot)
        return fragment

    def _read_chunk(self, slot: _Slot) -> Fragment | None:
        """Read the sample stream's next items: a chunk's `Fragment` record, with the ref of its
        arrays (read before it, never fetched here) in ``transitions``; None while only the
        arrays have arrived. Raises the call's error when the stream ends on it, StopIteration
        when it ended with nothing pending."""
        while True:
            try:
                ref = next(slot.ref)
            except StopIteration:
                if slot.pending is None:
                    raise
                # the stream ended after one item: that was no chunk's arrays but the call's error
                error, slot.pending = slot.pending, None
                ray.get(error)
                raise RuntimeError(f"runner {slot.index}: sample stream ended after arrays without their record")
            if slot.pending is None:
                slot.pending = ref
                if not ray.wait([slot.ref], timeout=0)[0]:
                    return None
                continue
            record: Fragment = ray.get(ref)
            record.transitions, slot.pending = [slot.pending], None
            return record

    def _on_env_fault(self, slot: _Slot, fault: EnvFault) -> Fragment | None:
        """The runner recovered from a fault of one env process by itself: count it; the call's
        steps before it are a shorter fragment; sample again at once (no restart)."""
        self.metrics.add(fault.kind)
        self.metrics.add("env_respawns")
        chunks, slot.chunks = [c for c in slot.chunks if c.length], []
        partial = _join(chunks) if chunks else None
        self._count_loss(fault.lost_steps, partial)
        log.error("runner %d (pid %s), env %d: %s; env process respawned; %d steps lost, %d handed over", slot.index,
                  slot.pid, fault.env_index, fault.message, fault.lost_steps, 0 if partial is None else partial.num_steps)
        if partial is None:  # no step since the last fault: a deterministic failure stops the run
            self._count_failure(slot, fault.message, "")
        else:
            slot.failures = 0
        self._submit_sample(slot)
        return partial

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
            self._recover(slot, self._replace)
            return
        if slot.probing:  # unreachable or answering as another pid: the same process (a blip), or Ray restarted it
            slot.probing = False
            if pid == slot.pid:
                self.metrics.add("unavailable")
                log.warning("runner %d (pid %s) reachable again: not restarted", slot.index, pid)
                slot.down_since = None  # no restart: no restart latency
            else:
                self.metrics.add("crashes")
                self.metrics.add("restarts")
                slot.restarts_used += 1
                log.warning("%s %d died and Ray restarted it (pid %s -> %s)", "spare" if slot.spare else "runner",
                            slot.index, slot.pid, pid)
        elif pid == slot.pid:
            # The old incarnation answered before ray.kill reached it: ask again.
            self._resubmit_ready(slot)
            return
        slot.pid, slot.node_id = pid, ""  # a new incarnation: its node is known from its first chunk
        if slot.down_since is not None:
            self.metrics.restart_latency(time.monotonic() - slot.down_since)
            slot.down_since = None
        if not slot.spare:
            self._submit_sample(slot)
            return
        slot.kind, slot.ref, slot.deadline, slot.failures = "idle", None, math.inf, 0
        slot.beat_ref, slot.beat_due = None, time.monotonic() + _SPARE_CHECK_S
        waiting = next((s for s in self._slots if s.kind == "ready" and s.down_since is not None), None)
        if waiting is not None:  # a failed slot still waits for its own runner's restart: this one is quicker
            self._hand_over(waiting, slot)
            self._submit_sample(waiting)

    def _resubmit_ready(self, slot: _Slot) -> None:
        deadline = slot.deadline
        self._submit_ready(slot)
        slot.deadline = deadline

    def _on_deadline(self, slot: _Slot) -> None:
        if slot.kind == "ready":
            self._fail(slot, f"runner {slot.index} not ready within {slot.timeout_s:.1f} s of (re)start", "")
            self._recover(slot, self._replace)
            return
        if slot.gone:
            self.metrics.add("crashes")
            partial = self._lose(slot, f"process {slot.pid} exited during sample", "", alive=False)
            self._recover(slot, lambda s: self._restart_or_replace(s, kill=True))
            if partial is not None:
                self._salvaged.append(partial)
            return
        self.metrics.add("hangs")
        if slot.stalled:
            beat = slot.last_beat
            seen = "" if beat is None else f"; last heartbeat: pid {beat['pid']}, {beat['steps']} steps done, {beat['call_seconds']:.1f} s in the call"
            why = f"stalled: {slot.stalled}{seen}"
            alive = not slot.stalled.startswith(_SILENT)  # a silent runner would not answer salvage() either
        else:
            beat, alive = self._heartbeat(slot)
            why = f"sample exceeded its {slot.timeout_s:.1f} s deadline ({beat})"
        partial = self._lose(slot, f"{why}; killing it", "", alive=alive)
        self._recover(slot, lambda s: self._restart_or_replace(s, kill=True))
        if partial is not None:
            self._salvaged.append(partial)

    def _heartbeat(self, slot: _Slot) -> tuple[str, bool]:
        """A description of what the hung runner reports, for the log line, and whether it answered."""
        try:
            beat = ray.get(slot.actor.heartbeat.remote(), timeout=self._heartbeat_timeout_s)
        except (GetTimeoutError, RayActorError) as err:
            return f"no heartbeat within {self._heartbeat_timeout_s} s: {type(err).__name__}", False
        slot.pid = beat["pid"]
        return f"heartbeat: pid {beat['pid']}, {beat['steps']} steps done, {beat['call_seconds']:.1f} s in the call, RSS {beat['rss_bytes'] / 2**20:.0f} MB", True

    # -- recovery ---------------------------------------------------------------------------

    def _lose(self, slot: _Slot, message: str | None, detail: str, alive: bool, raised: bool = False) -> Fragment | None:
        """Record the failure of the call in flight and count what it lost; return what it had
        handed over (its chunks read so far, plus with ``alive`` the completed steps of the chunk
        in progress, asked from the heartbeat group) as a partial fragment, or None.

        ``lost_steps``: a hang (``alive``) or an env error (``raised``: the runner hands over
        its completed steps before the error) loses exactly its time step (one step per env)
        and any completed steps that could not be handed over; a dead process takes the chunk
        it was filling with it, counted as that chunk's steps (its steps up to the fault; an
        upper bound when the process died before the chunk's end)."""
        rows_done = None
        if alive:
            try:
                head, arrays = slot.actor.salvage.remote()
                rows_done, salvaged = ray.get(head, timeout=self._heartbeat_timeout_s)
            except (GetTimeoutError, RayError):
                salvaged = None  # dead or frozen: counted as a crash below
            if salvaged is not None:
                salvaged.transitions = [arrays]  # the arrays go on by ref, like a chunk's
        self._drain(slot)
        slot.pending = None  # arrays whose record never came: that chunk is counted lost
        delivered = sum(c.length for c in slot.chunks)
        if alive and rows_done is not None:
            if salvaged is not None and rows_done - salvaged.length == delivered:
                slot.chunks.append(salvaged)  # contiguous with the chunks read (none yielded since)
                delivered += salvaged.length
            lost_rows = rows_done - delivered + 1
        elif raised:
            lost_rows = 1
        else:
            lost_rows = min(self._chunk_length, self.spec.fragment_length - delivered)
        partial, slot.chunks = (_join(slot.chunks) if slot.chunks else None), []
        lost = lost_rows * self.spec.envs_per_runner
        self._count_loss(lost, partial)
        if message is not None:
            log.error("runner %d (pid %s): %s; %d steps lost, %d handed over", slot.index, slot.pid, message, lost,
                      0 if partial is None else partial.num_steps)
        self._fail(slot, message or "env raised in sample", detail)
        return partial

    def _count_loss(self, lost_steps: int, partial: Fragment | None) -> None:
        """Count one failed call that lost ``lost_steps`` and handed over ``partial`` (or nothing)."""
        self.metrics.add("lost_fragments")
        self.metrics.add("lost_steps", lost_steps)
        if partial is not None:
            self._count_delivered(partial)
            self.metrics.add("salvaged_steps", partial.num_steps)

    def _drain(self, slot: _Slot) -> None:
        """Read the chunks the failed call had already yielded (they outlive its process)."""
        while slot.kind == "sample" and ray.wait([slot.ref], timeout=0)[0]:
            try:
                chunk = self._read_chunk(slot)
            except (StopIteration, RuntimeError, RayError):
                return
            if chunk is not None:
                slot.chunks.append(chunk)

    def _count_delivered(self, fragment: Fragment) -> None:
        self.metrics.add("fragments")
        self.metrics.add("env_steps", fragment.num_steps)

    def _fail(self, slot: _Slot, message: str, detail: str) -> None:
        slot.down_since = time.monotonic()
        self._count_failure(slot, message, detail)

    def _count_failure(self, slot: _Slot, message: str, detail: str) -> None:
        """One more failure of ``slot`` without a fragment; `RolloutError` at the limit."""
        slot.failures += 1
        slot.last_error = f"{message}\n{detail}".strip()
        if slot.failures >= self._max_failures:
            what = "spare runner" if slot.spare else "runner"
            raise RolloutError(
                f"{what} {slot.index} failed {slot.failures} times in a row without producing a fragment; "
                f"stopping instead of restarting it forever. Last error:\n{slot.last_error}"
            )

    def _recover(self, slot: _Slot, recovery) -> None:
        """Bring ``slot`` back: hand it an idle spare at once (its failed actor then recovers in
        the spare's place and becomes a spare), or else ``recovery(slot)`` (restart or replace)."""
        spare = next((s for s in self._spares if s.kind == "idle"), None) if not slot.spare else None
        if spare is None:
            recovery(slot)
            return
        self._hand_over(slot, spare)
        recovery(spare)
        self._submit_sample(slot)

    def _hand_over(self, slot: _Slot, spare: _Slot) -> None:
        """Swap the actors (and their calls) of ``slot`` and the idle ``spare``."""
        for name in _ACTOR_FIELDS:
            mine, theirs = getattr(slot, name), getattr(spare, name)
            setattr(slot, name, theirs)
            setattr(spare, name, mine)
        slot.weights_version = -1  # the spare acts as this slot's runner from its first call
        self.metrics.add("spare_takeovers")
        log.warning("runner %d: slot handed to an idle spare (pid %s); the failed actor recovers as spare %d",
                    slot.index, slot.pid, spare.index)

    def _probe(self, slot: _Slot) -> None:
        """Ask an actor that was unreachable, or answered as a new process, whether it is the
        process it was, without killing it (see `_on_started`)."""
        slot.probing, slot.weights_version = True, -1  # (-1: send the weights again, in case it restarted)
        self._submit_ready(slot)

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
        slot.actor = self.spec.create(slot.index, reseed=True, policy_index=0 if slot.spare else None)
        slot.restarts_used, slot.weights_version, slot.probing = 0, -1, False
        self.metrics.add("replacements")
        log.warning("%s %d: replaced by a fresh actor", "spare" if slot.spare else "runner", slot.index)
        if slot.down_since is None:
            slot.down_since = time.monotonic()
        self._submit_ready(slot)


def _starved(beat: dict, limit: float) -> bool:
    """The op in ``beat`` runs past ``limit`` only for want of a core: its thread is runnable, has
    used less than ``limit`` CPU seconds, and has run less than ``STARVED_GRACE`` x ``limit``."""
    return (bool(beat.get("op_runnable")) and beat.get("op_cpu_seconds", math.inf) < limit
            and beat["op_seconds"] < STARVED_GRACE * limit)


def _process_exists(pid: int) -> bool:
    """Whether process ``pid`` of this machine still runs (a zombie has exited)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _same(a: Any, b: Any) -> bool:
    """The same ref or generator (ObjectRefs compare by id; generators only by identity)."""
    return a is b or (type(a) is type(b) and isinstance(a, ray.ObjectRef) and a == b)


def _join(chunks: list[Fragment]) -> Fragment:
    """Consecutive chunks of one runner's call as one fragment record (episode steps
    re-indexed; the chunks' array refs kept in order: the learner joins the arrays)."""
    if len(chunks) == 1:
        return chunks[0]
    offsets = np.cumsum([0] + [c.length for c in chunks[:-1]])
    last = chunks[-1]
    return Fragment(
        runner_index=last.runner_index,
        pid=last.pid,
        num_envs=last.num_envs,
        length=sum(c.length for c in chunks),
        transitions=[t for c in chunks for t in c.transitions],
        episodes=[replace(e, step=e.step + int(off)) for c, off in zip(chunks, offsets) for e in c.episodes],
        env_seconds=sum(c.env_seconds for c in chunks),
        policy_seconds=sum(c.policy_seconds for c in chunks),
        sample_seconds=sum(c.sample_seconds for c in chunks),
        rss_bytes=last.rss_bytes,
        median_step_seconds=last.median_step_seconds,
        median_reset_seconds=last.median_reset_seconds,
        node_id=last.node_id,
        fault=last.fault,
    )


def _first_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
