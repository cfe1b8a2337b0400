"""Driver-side scaling of the rollout engine: supervisor overhead, runner memory, weight traffic.

    python benchmarks/bench_scaling.py [--runners 4 16 32 64] [--fragments 800] [--no-torch-row]

Runners share one machine with fractional CPUs (``--cpus-per-runner``, default 0.05) and step a
zero-cost env (``ZeroEnv``: 1 float obs, ``RandomPolicy``), so the driver, not the envs, is the
bottleneck. Per runner count:

* ``startup_s``: from creating the `Supervisor` until every runner delivered a first fragment;
* ``wall_ms/frag``: wall time per `Supervisor.next_fragment` call once warm (1 / throughput);
* ``cpu_ms/frag``: driver process CPU (user + system, ``psutil.Process().cpu_times()``) per
  fragment: the supervisor's overhead, which bounds fragments/s on a driver core;
* the same two numbers for a bare Ray loop over the same actors (``ray.wait`` one ref,
  ``ray.get`` it, resubmit ``sample``): the floor that Ray itself sets; the difference is
  the supervisor's own bookkeeping (deadlines, slot lookup, metrics);
* ``rss_MB/runner``: mean resident memory of the runner processes (fragments' ``rss_bytes``).

Then a few runners with the real `QPolicy` (residual network, 17 x 64 x 64 observations) give the
RSS of a runner that has torch loaded, and the weight payload of one broadcast
(``{"weights": state_dict, "epsilon": e}``, serialized by Ray's serializer: the bytes of the
``ray.put``) times the runners that fetch it. All of this runs on a private local Ray instance
(its own temp dir, token auth off, shut down at the end). On a 2-core machine shared with
others the wall numbers include contention with the runner processes and Ray's own daemons;
the CPU numbers are the driver's alone.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import gymnasium as gym
import numpy as np
import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # private local instance: no token in ~/.ray

import ray  # noqa: E402

from firebreak.rollout import RandomPolicy, RunnerSpec, Supervisor  # noqa: E402


class ZeroEnv(gym.Env):
    """A free env: obs ``shape`` zeros, ``Discrete(n_actions)``, 100-step episodes, optional masks."""

    metadata: dict = {}

    def __init__(self, shape=(1,), n_actions=2, masked=False):
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape, np.float32)
        self.action_space = gym.spaces.Discrete(n_actions)
        self._obs, self._t, self._masked = np.zeros(shape, np.float32), 0, masked

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return self._obs, {}

    def step(self, action):
        self._t += 1
        return self._obs, 0.0, False, self._t >= 100, {}

    def action_masks(self):
        return np.ones(self.action_space.n, bool)


class MaskedZeroEnv(ZeroEnv):
    """`ZeroEnv` with the observation and action space of a 64 x 64 FuelBreakEnv tile."""

    def __init__(self):
        super().__init__((17, 64, 64), 64 * 64)


def _cpu() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system


def measure(num_runners: int, fragments: int, cpus_per_runner: float, fragment_length: int) -> dict:
    spec = RunnerSpec(env_factory=ZeroEnv, policy=RandomPolicy(2), fragment_length=fragment_length,
                      seed=0, num_cpus=cpus_per_runner)
    start = time.monotonic()
    sup = Supervisor(spec, num_runners, sample_timeout_s=300, restart_timeout_s=600)
    seen: set[int] = set()
    while len(seen) < num_runners:
        seen.add(sup.next_fragment().runner_index)
    startup = time.monotonic() - start
    for _ in range(2 * num_runners):  # every runner busy, caches warm
        sup.next_fragment()

    rss: dict[int, int] = {}
    cpu0, wall0 = _cpu(), time.perf_counter()
    for _ in range(fragments):
        fragment = sup.next_fragment()
        rss[fragment.runner_index] = fragment.rss_bytes
    wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
    stats = sup.stats()

    # The floor: a bare Ray loop over the same actors, no deadlines, no bookkeeping.
    actors = [slot.actor for slot in sup._slots]
    ray.wait([slot.ref for slot in sup._slots], num_returns=num_runners)  # drain the supervisor's calls
    in_flight = {actor.sample.remote(None): actor for actor in actors}
    cpu1, wall1 = _cpu(), time.perf_counter()
    for _ in range(fragments):
        ready, _ = ray.wait(list(in_flight), num_returns=1)
        actor = in_flight.pop(ready[0])
        ray.get(ready[0])
        in_flight[actor.sample.remote(None)] = actor
    bare_wall, bare_cpu = time.perf_counter() - wall1, _cpu() - cpu1
    ray.wait(list(in_flight), num_returns=len(in_flight))
    sup.close()
    lost = stats["hangs"] + stats["crashes"] + stats["env_errors"]
    return {"runners": num_runners, "startup_s": startup, "wall_ms": 1e3 * wall / fragments,
            "cpu_ms": 1e3 * cpu / fragments, "bare_wall_ms": 1e3 * bare_wall / fragments,
            "bare_cpu_ms": 1e3 * bare_cpu / fragments, "rss_mb": statistics.mean(rss.values()) / 2**20,
            "faults": lost}


def torch_runner_row(num_runners: int, cpus_per_runner: float) -> dict:
    """RSS of runners with the residual QPolicy on 64 x 64 tiles, and the weight broadcast size."""
    import torch

    from firebreak.dqn.networks import build_q_network
    from firebreak.dqn.policy import QPolicy

    sizes = {}
    for name, kwargs in (("residual (default: 32 ch, 12 blocks)", {}),
                         ("residual (local.yaml: 16 ch, 5 blocks)", {"channels": 16, "dilations": [1, 2, 4, 8, 16]})):
        net = build_q_network("residual", 17, **kwargs)
        payload = {"weights": {k: v.detach().cpu() for k, v in net.state_dict().items()}, "epsilon": 0.5}
        serialized = ray._private.worker.global_worker.get_serialization_context().serialize(payload)
        t0 = time.perf_counter()
        ray.put(payload)
        sizes[name] = {"params": sum(p.numel() for p in net.parameters()), "bytes": serialized.total_bytes,
                       "put_ms": 1e3 * (time.perf_counter() - t0)}
    spec = RunnerSpec(env_factory=MaskedZeroEnv, policy=QPolicy("residual", {}, 17, torch_threads=1),
                      fragment_length=4, seed=0, num_cpus=cpus_per_runner)
    with Supervisor(spec, num_runners, sample_timeout_s=300, restart_timeout_s=600) as sup:
        net = build_q_network("residual", 17)
        sup.set_weights({"weights": net.state_dict(), "epsilon": 1.0})
        rss: dict[int, int] = {}
        frag_bytes = 0
        while len(rss) < num_runners or min(rss.values()) == 0:
            fragment = sup.next_fragment()
            rss[fragment.runner_index] = fragment.rss_bytes
            frag_bytes = fragment.arrays().nbytes  # fetched here for the figure; train.py never does
        for _ in range(num_runners):  # after a few forward passes
            fragment = sup.next_fragment()
            rss[fragment.runner_index] = fragment.rss_bytes
    del torch
    return {"sizes": sizes, "rss_mb": statistics.mean(rss.values()) / 2**20, "fragment_bytes": frag_bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runners", type=int, nargs="+", default=[4, 16, 32, 64])
    parser.add_argument("--fragments", type=int, default=800, help="fragments timed per runner count")
    parser.add_argument("--fragment-length", type=int, default=16)
    parser.add_argument("--cpus-per-runner", type=float, default=0.05)
    parser.add_argument("--torch-runners", type=int, default=2, help="runners in the QPolicy row (0: skip)")
    args = parser.parse_args()

    temp_dir = tempfile.mkdtemp(prefix="rbs_", dir="/tmp")
    num_cpus = max(2, int(np.ceil(max(args.runners) * args.cpus_per_runner)) + 1)
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _temp_dir=temp_dir,
             log_to_driver=False, configure_logging=False)
    try:
        print(f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, ray {ray.__version__}; "
              f"{args.cpus_per_runner} CPU per runner, fragments of {args.fragment_length} steps of a zero-cost env, "
              f"{args.fragments} fragments timed per row", flush=True)
        header = (f"{'runners':>7} {'startup_s':>9} {'wall_ms/frag':>12} {'cpu_ms/frag':>11} "
                  f"{'bare_wall_ms':>12} {'bare_cpu_ms':>11} {'overhead_cpu_ms':>15} {'rss_MB/runner':>13} {'faults':>6}")
        print(header)
        print("-" * len(header), flush=True)
        for n in args.runners:
            r = measure(n, args.fragments, args.cpus_per_runner, args.fragment_length)
            print(f"{r['runners']:>7} {r['startup_s']:>9.1f} {r['wall_ms']:>12.2f} {r['cpu_ms']:>11.2f} "
                  f"{r['bare_wall_ms']:>12.2f} {r['bare_cpu_ms']:>11.2f} {r['cpu_ms'] - r['bare_cpu_ms']:>15.2f} "
                  f"{r['rss_mb']:>13.0f} {r['faults']:>6}", flush=True)
        if args.torch_runners:
            t = torch_runner_row(args.torch_runners, args.cpus_per_runner)
            print(f"\nrunner with torch + residual QPolicy on 17x64x64 obs: {t['rss_mb']:.0f} MB RSS "
                  f"(mean of {args.torch_runners}); a 4-step fragment of one env carries "
                  f"{t['fragment_bytes'] / 2**20:.1f} MiB of arrays (float16 obs, final obs, masks)")
            print(f"{'weights (one broadcast)':<40} {'params':>9} {'ray.put bytes':>13} {'put_ms':>7} "
                  + " ".join(f"{'x' + str(n) + ' runners':>13}" for n in args.runners))
            for name, s in t["sizes"].items():
                print(f"{name:<40} {s['params']:>9,} {s['bytes']:>13,} {s['put_ms']:>7.1f} "
                      + " ".join(f"{s['bytes'] * n / 2**20:>9.1f} MiB" for n in args.runners))
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
