"""`RolloutMetrics`: the supervisor's counters, as a dict (TensorBoard) and as Ray dashboard metrics."""

from __future__ import annotations

import ray
from ray.util import metrics as ray_metrics

#: Monotonic counters: ``fragments``/``env_steps`` delivered (partial fragments of failed calls
#: included); faults by kind (``hangs``: stalled or past the deadline, and killed; ``crashes``: the
#: actor process died; ``env_errors``: env code raised, in ``sample`` or in the runner's
#: constructor); ``restarts`` (Ray restarts of the same actor), ``replacements`` (fresh actors),
#: ``recycled`` (runners restarted past the memory limit); ``lost_fragments``: failed calls;
#: ``lost_steps``: env steps they lost (the fault's own step, plus what a dead process had not
#: handed over: see ``Supervisor._lose``); ``salvaged_steps``: steps the failed calls handed over;
#: ``spare_takeovers``: failed runners' slots handed to an idle hot spare; ``env_respawns``: faults of
#: env processes that their runner recovered from by itself (``isolate_envs``: counted by kind
#: too, with no restart); ``unavailable``: runners that Ray could not reach for a while (``ActorUnavailableError``)
#: and that then answered as the same process: the call is lost, the runner is not restarted (one
#: that answers as a new process died: a crash, and a restart by Ray).
#: A process that died but that Ray has not reported dead by the deadline (Ray takes ~1-2 s) counts
#: as a hang.
COUNTERS = (
    "fragments",
    "env_steps",
    "hangs",
    "crashes",
    "env_errors",
    "restarts",
    "replacements",
    "recycled",
    "lost_fragments",
    "lost_steps",
    "spare_takeovers",
    "salvaged_steps",
    "env_respawns",
    "unavailable",
)


class RolloutMetrics:
    """Counters plus restart latency (seconds from detecting a fault to the runner being ready).

    With ``export_to_ray`` (and Ray initialized) every update is mirrored to
    ``ray.util.metrics`` as ``firebreak_rollout_<name>`` for the Ray dashboard / Prometheus.
    """

    def __init__(self, export_to_ray: bool = True):
        self.counts = dict.fromkeys(COUNTERS, 0)
        self._latencies: list[float] = []
        self._ray_counters: dict[str, ray_metrics.Counter] = {}
        self._ray_latency: ray_metrics.Gauge | None = None
        if export_to_ray and ray.is_initialized():
            self._ray_counters = {
                name: ray_metrics.Counter(f"firebreak_rollout_{name}", description=f"rollout {name} (see firebreak.rollout.metrics)")
                for name in COUNTERS
            }
            self._ray_latency = ray_metrics.Gauge("firebreak_rollout_restart_latency_s", description="last runner restart latency, seconds")

    def add(self, name: str, value: int = 1) -> None:
        """Increase counter ``name`` by ``value``."""
        self.counts[name] += value
        if value and name in self._ray_counters:
            self._ray_counters[name].inc(value)

    def restart_latency(self, seconds: float) -> None:
        """Record one restart or replacement that took ``seconds`` from fault to ready."""
        self._latencies.append(seconds)
        if self._ray_latency is not None:
            self._ray_latency.set(seconds)

    def as_dict(self) -> dict[str, float]:
        """All counters plus ``restart_latency_mean_s``/``restart_latency_max_s`` (0 if none)."""
        lat = self._latencies
        return {
            **self.counts,
            "restart_latency_mean_s": sum(lat) / len(lat) if lat else 0.0,
            "restart_latency_max_s": max(lat, default=0.0),
        }
