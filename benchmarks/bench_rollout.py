"""Rollout throughput: one process vs gymnasium's vector envs vs Ray, healthy and with faults.

    python benchmarks/bench_rollout.py [--env module:function | --step-ms 10] [--workers 2] [--seconds 8]
        [--fault-rates 0.001,0.01] [--spares 1] [--isolate-envs both] [--only-supervisor]

Rows (env steps/s; ratio = rate / (single-process rate x workers)):
single process, SyncVectorEnv, AsyncVectorEnv, RayVectorEnv, Ray fragments via Supervisor; then
the same with faults (for each of ``--fault-rates`` p: p hangs + p crashes per step, os._exit):
the Ray rows keep going and count what they lost, AsyncVectorEnv stalls on the first hang (a
watchdog thread waits ``--stall-s`` seconds without progress, reports "stalled" and SIGKILLs its
children by pid) or dies on the first crash. The Supervisor runs with its defaults (stall
detection at max(20 x median step, 0.5 s)) and ``--spares`` hot spares, with its envs in the
runner's process and/or (``--isolate-envs``) in env processes of their own, which the runner
respawns itself after a crash or hang; each Supervisor's fault rows also give the ratio to its
own fault-free row of the same run (``vs ok``). ``--only-supervisor``
measures just the single-process rate and the Supervisor rows (a short run). The default env burns
``--step-ms`` of CPU per step (10 ms: the step time of issue 19's fault-cost model) and returns
(4, 64, 64) float32 observations, like a small FuelBreakEnv; ``--env`` takes any importable
zero-argument factory, e.g. ``firebreak.env:FuelBreakEnv``.

Ray runs as a private local instance (``address="local"``, its own temp folder), never attached
to another cluster on this machine, and is shut down at the end.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from typing import Callable

import gymnasium as gym
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import ray  # noqa: E402
from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv  # noqa: E402

from firebreak.rollout import FaultyEnvFactory, RandomPolicy, RayVectorEnv, RunnerSpec, Supervisor, read_injections  # noqa: E402


class BurnEnv(gym.Env):
    """A CPU-burning stand-in for FuelBreakEnv: a diffusion "fire" over a 64x64 grid.

    ``iterations`` smoothing sweeps per step (about 2 ms at the default on one idle core);
    obs (4, 64, 64) float32; ``Discrete(64 * 64)`` actions, masked once used; 20 steps per episode.
    """

    metadata: dict = {}

    def __init__(self, size: int = 64, iterations: int = 60, episode_length: int = 20):
        self.size, self.iterations, self.episode_length = size, iterations, episode_length
        self.observation_space = gym.spaces.Box(0.0, np.inf, (4, size, size), np.float32)
        self.action_space = gym.spaces.Discrete(size * size)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._heat = self.np_random.random((self.size, self.size))
        self._breaks = np.zeros((self.size, self.size), bool)
        self._t = 0
        return self._obs(), {}

    def _obs(self) -> np.ndarray:
        return np.stack([self._heat, self._breaks, np.full_like(self._heat, self._t), self._heat > 0.5]).astype(np.float32)

    def step(self, action):
        self._breaks.flat[int(action)] = True
        heat = self._heat
        for _ in range(self.iterations):
            heat = 0.25 * (np.roll(heat, 1, 0) + np.roll(heat, -1, 0) + np.roll(heat, 1, 1) + np.roll(heat, -1, 1))
            heat[self._breaks] = 0.0
        burned_before = float((self._heat > 0.5).mean())
        self._heat = heat / max(heat.max(), 1e-9)
        self._t += 1
        reward = burned_before - float((self._heat > 0.5).mean())
        return self._obs(), reward, False, self._t >= self.episode_length, {"burned": float((self._heat > 0.5).mean())}

    def action_masks(self) -> np.ndarray:
        return ~self._breaks.ravel()


def calibrated_burn_env(step_ms: float) -> Callable[[], BurnEnv]:
    """A `BurnEnv` factory whose steps take about ``step_ms`` ms on one idle core of this machine."""
    env, rng = BurnEnv(), np.random.default_rng(0)
    env.reset(seed=0)
    start, steps = time.perf_counter(), 0
    while time.perf_counter() - start < 1.0:
        env.step(int(rng.integers(env.action_space.n)))
        steps += 1
    per_iteration_ms = (time.perf_counter() - start) * 1e3 / steps / env.iterations
    return functools.partial(BurnEnv, iterations=max(1, round(step_ms / per_iteration_ms)))


def load_factory(path: str) -> Callable[[], gym.Env]:
    """``"module:function"`` -> the function."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


# -- rows ---------------------------------------------------------------------------------------


def run_single(factory, seconds: float) -> dict:
    env = factory()
    n = env.action_space.n
    policy, rng = RandomPolicy(n), np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    has_masks = env.has_wrapper_attr("action_masks")
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        masks = env.get_wrapper_attr("action_masks")()[None] if has_masks else None
        obs, _, term, trunc, _ = env.step(policy(obs[None], masks, rng)[0])
        if term or trunc:
            obs, _ = env.reset()
        steps += 1
    env.close()
    return {"steps": steps, "seconds": time.perf_counter() - start}


def _drive_vector(envs, seconds: float, progress: list | None = None, masked: bool = False) -> dict:
    """Random actions (among the valid ones when ``masked``: one ``action_masks`` call per step,
    as a masking agent makes) through any VectorEnv for ``seconds``; ``lost`` counts RayVectorEnv losses."""
    rng = np.random.default_rng(0)
    envs.reset(seed=0)
    steps, lost, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        if masked:
            masks = np.stack(envs.call("action_masks"))
            actions = np.where(masks, rng.random(masks.shape), -1.0).argmax(axis=1)
        else:
            actions = rng.integers(envs.single_action_space.n, size=envs.num_envs)
        _, _, _, _, infos = envs.step(actions)
        n_lost = int(np.sum(infos["lost"])) if "lost" in infos else 0
        steps += envs.num_envs - n_lost
        lost += n_lost
        if progress is not None:
            progress[0] = time.monotonic()
    return {"steps": steps, "seconds": time.perf_counter() - start, "lost": lost}


def run_async_with_watchdog(fns, seconds: float, stall_s: float, masked: bool = False) -> dict:
    """AsyncVectorEnv in a thread; if no step completes for ``stall_s`` seconds, report "stalled"
    and SIGKILL its child processes by pid (which also unblocks the thread)."""
    envs = AsyncVectorEnv(fns, context="fork")
    result: dict = {}
    progress = [time.monotonic()]

    def loop():
        try:
            result.update(_drive_vector(envs, seconds, progress, masked))
        except Exception as err:  # reported in the table: this is the failure being demonstrated
            result["error"] = f"{type(err).__name__}"

    start = time.perf_counter()
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.2)
        if time.monotonic() - progress[0] > stall_s:
            result["stalled_after_s"] = time.perf_counter() - start
            break
    result.setdefault("seconds", time.perf_counter() - start)
    if "error" in result or "stalled_after_s" in result:
        # AsyncVectorEnv cannot be closed cleanly now: kill the children it started, by pid
        # (this also unblocks a thread stuck on a pipe), then reap them.
        for proc in envs.processes:
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGKILL)
            proc.join(5)
        thread.join(10)
        for pipe in envs.parent_pipes:
            pipe.close()
        envs.closed = True  # its close() would wait on the dead children's pipes
    else:
        envs.close()
    return result


def run_ray_vector(fns, seconds: float, step_timeout_s: float, masked: bool = False) -> dict:
    envs = RayVectorEnv(fns, step_timeout_s=step_timeout_s, restart_timeout_s=30, num_cpus=1)
    try:
        return {**_drive_vector(envs, seconds, masked=masked), "stats": envs.metrics.as_dict()}
    finally:
        envs.close()


def run_supervisor(factory, n_actions: int, workers: int, seconds: float, fragment_length: int, first_timeout_s: float,
                   options: dict, isolate_envs: bool) -> dict:
    spec = RunnerSpec(factory, RandomPolicy(n_actions), envs_per_runner=1, fragment_length=fragment_length, num_cpus=1,
                      isolate_envs=isolate_envs)
    with Supervisor(spec, workers, min_timeout_s=2.0, first_timeout_s=first_timeout_s, max_consecutive_failures=20, **options) as sup:
        sup.next_fragment(timeout=120)  # start-up (actor creation) is not throughput
        before = sup.stats()["env_steps"]
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            sup.next_fragment(timeout=120)
        stats = sup.stats()
    return {"steps": stats["env_steps"] - before, "seconds": time.perf_counter() - start, "lost": stats["lost_steps"], "stats": stats}


# -- table --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default=None, help="importable env factory 'module:function' (default: a CPU-burning toy env)")
    parser.add_argument("--step-ms", type=float, default=10.0,
                        help="toy env: CPU time per step, ms (calibrated on this machine at start-up)")
    parser.add_argument("--workers", type=int, default=2, help="sub-envs / runners, one core each")
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring time per row, seconds")
    parser.add_argument("--fragment-length", type=int, default=16)
    parser.add_argument("--fault-rates", default="0.001,0.01", help="per-step probabilities p: each gives rows with p hangs + p crashes")
    parser.add_argument("--spares", type=int, default=1, help="Supervisor hot spares (idle: they reserve no core's work)")
    parser.add_argument("--chunk-length", type=int, default=8, help="Supervisor: steps per streamed chunk")
    parser.add_argument("--stall-floor-s", type=float, default=0.5, help="Supervisor: least step time that counts as hung")
    parser.add_argument("--isolate-envs", choices=("off", "on", "both"), default="both",
                        help="Supervisor rows with envs in the runner's process (off), in env processes (on), or both")
    parser.add_argument("--only-supervisor", action="store_true", help="skip the gymnasium and RayVectorEnv rows")
    parser.add_argument("--stall-s", type=float, default=10.0, help="AsyncVectorEnv watchdog: seconds without progress = stalled")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")

    factory = load_factory(args.env) if args.env else calibrated_burn_env(args.step_ms)
    rates = [float(p) for p in args.fault_rates.split(",")]
    logs = {p: tempfile.mkdtemp(prefix=f"rfb_faults_{p}_") for p in rates}  # injection logs: injected vs counted
    faulty = {p: FaultyEnvFactory(factory, {"p_hang": p, "p_exit": p, "seed": 1, "log_dir": logs[p]}) for p in rates}
    probe = factory()
    n_actions, masked = probe.action_space.n, probe.has_wrapper_attr("action_masks")
    w = args.workers
    rows: list[tuple[str, dict]] = []

    single = run_single(factory, args.seconds)
    base = single["steps"] / single["seconds"]
    print(f"single process: {base:.0f} steps/s ({1e3 / base:.1f} ms/step)", flush=True)
    rows.append(("single process", single))
    if not args.only_supervisor:
        only_hangs = FaultyEnvFactory(factory, {"p_hang": max(rates), "seed": 1})
        only_crashes = FaultyEnvFactory(factory, {"p_exit": max(rates), "seed": 1})
        rows.append((f"SyncVectorEnv x{w}", _drive_vector(SyncVectorEnv([factory] * w), args.seconds, masked=masked)))
        rows.append((f"AsyncVectorEnv x{w}", run_async_with_watchdog([factory] * w, args.seconds, args.stall_s, masked)))
        async_hangs = run_async_with_watchdog([only_hangs] * w, args.seconds, args.stall_s, masked)
        async_crashes = run_async_with_watchdog([only_crashes] * w, args.seconds, args.stall_s, masked)
    # The derived p95 deadline needs 5 good fragments first: the first one from the measured step time.
    first_timeout_s = max(2.0, 5 * args.fragment_length / base)

    temp_dir = tempfile.mkdtemp(prefix="rfb_", dir="/tmp")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    # idle spares hold a CPU slot but do no work: give Ray one slot each beyond the workers' cores
    ray.init(address="local", num_cpus=w + args.spares, include_dashboard=False, _temp_dir=temp_dir, log_to_driver=False)
    options = {"spare_runners": args.spares, "chunk_length": args.chunk_length, "stall_floor_s": args.stall_floor_s}
    isolations = {"off": [False], "on": [True], "both": [False, True]}[args.isolate_envs]
    try:
        if not args.only_supervisor:
            rows.append((f"RayVectorEnv x{w}", run_ray_vector([factory] * w, args.seconds, step_timeout_s=10.0, masked=masked)))
            rows.append((f"AsyncVectorEnv x{w} + hangs only", async_hangs))
            rows.append((f"AsyncVectorEnv x{w} + crashes only", async_crashes))
            for p in rates:
                rows.append((f"RayVectorEnv x{w} + {p:.1%}+{p:.1%}", run_ray_vector([faulty[p]] * w, args.seconds, step_timeout_s=max(2.0, 20 / base), masked=masked)))
        for isolate in isolations:
            sup_name = f"Supervisor {w} runners" + (f" + {args.spares} spare" if args.spares else "") + (", env procs" if isolate else "")
            ok = run_supervisor(factory, n_actions, w, args.seconds, args.fragment_length, first_timeout_s, options, isolate)
            rows.append((sup_name, {**ok, "group": sup_name}))
            for p in rates:
                before = len(read_injections(logs[p]))
                row = run_supervisor(faulty[p], n_actions, w, args.seconds, args.fragment_length, first_timeout_s, options, isolate)
                row["injected"] = Counter(i.kind for i in read_injections(logs[p])[before:])
                rows.append((f"{sup_name} + {p:.1%}+{p:.1%}", {**row, "group": sup_name}))
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
        for folder in logs.values():
            shutil.rmtree(folder, ignore_errors=True)

    print(f"\nfaults: p hang + p crash (os._exit) per step as named; ratio = rate / (single rate x {w}); vs ok = rate / the "
          f"fault-free Supervisor row; AsyncVectorEnv fault rows use one fault kind each at {max(rates):.1%}")
    print(f"{'setup':46} {'steps/s':>9} {'ratio':>6} {'vs ok':>6}  notes")
    ok_rates: dict[str, float] = {}
    for name, r in rows:
        if "error" in r or "stalled_after_s" in r:
            what = f"stalled (no step for {args.stall_s:.0f} s), children killed" if "stalled_after_s" in r else f"died: {r['error']}"
            print(f"{name:46} {'-':>9} {'-':>6} {'-':>6}  {what} after {r['seconds']:.1f} s")
            continue
        rate = r["steps"] / r["seconds"]
        ratio = 1.0 if name == "single process" else rate / (base * w)
        vs_ok = ""
        if name == r.get("group"):
            ok_rates[name] = rate
        elif r.get("group") in ok_rates:
            vs_ok = f"{rate / ok_rates[r['group']]:.2f}"
        notes = ""
        if "stats" in r:
            s = r["stats"]
            notes = f"hangs {s['hangs']}, crashes {s['crashes']}, restarts {s['restarts']}, lost steps {s['lost_steps']}"
            if s.get("env_respawns"):
                notes += f", env respawns {s['env_respawns']}"
            if s.get("spare_takeovers"):
                notes += f", spare takeovers {s['spare_takeovers']}"
            if s.get("salvaged_steps"):
                notes += f", salvaged steps {s['salvaged_steps']}"
        if "injected" in r:
            notes += f" (injected: {r['injected']['hang']} hangs, {r['injected']['exit']} crashes)"
        print(f"{name:46} {rate:9.0f} {ratio:6.2f} {vs_ok:>6}  {notes}")


if __name__ == "__main__":
    main()
