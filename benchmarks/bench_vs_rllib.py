"""Env steps/s of RLlib's EnvRunners on FuelBreakEnv, healthy, with a hung env and with crashes.

    python benchmarks/bench_vs_rllib.py [--landscapes sample:64:train] [--scenarios 16] [--runners 2]
                                        [--seconds 75] [--crash-rate 0.01] [--hang-after 15]

One command, one run, one env config, ``--runners`` CPUs for the runners (one each). RLlib rows:
its DQN (new API stack, `firebreak.rllib.build_rllib_dqn`) with epsilon fixed at 1 (uniformly
random masked actions) and learning switched off, so ``Algorithm.train()`` is RLlib's sampling
loop: each iteration one `synchronous_parallel_sample` round over the EnvRunners (``--fragment``
steps each), the replay-buffer add and RLlib's fault handling (``restart_failed_env_runners=True``,
``sample_timeout_s=--sample-timeout``). Its runners still run the tiny Q-network per step.

Fault rows (the fault wrapper below; a fault is never replaced by made-up data, it is counted):
* hang: the env of runner 1 sleeps forever in its first ``step()`` after ``--hang-after`` s of
  measurement (the benchmark then creates a trigger file the wrapper checks). Reported: whether RLlib ever restarted it (restarts, healthy runners, whether
  the hung process is still alive and asleep at the end) and steps/s after the hang.
* crash: every ``step()`` of every runner exits its process (``os._exit(3)``) with probability
  ``--crash-rate``, drawn from a generator seeded with the pid (a restarted runner draws anew).

Each row runs ``--seconds`` of wall time after a warm-up iteration (actor start and numba JIT
are not throughput) in its own private Ray instance (``address="local"``, ``num_cpus=--runners``,
own temp folder), which `ray.shutdown()` stops with every process it started, the hung one too.
Steps/s are listed per window of ``--window`` s so a stall shows. Timings depend on the load of
this shared machine: compare rows of one run only.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ray  # noqa: E402
from ray.tune.registry import register_env  # noqa: E402

from firebreak.rllib import ENV_NAME, build_rllib_dqn, make_env  # noqa: E402

FAULTY_ENV = "firebreak-fuelbreak-faulty"


class Faults(gym.Wrapper):
    """Hang (sleep forever) or exit the process in ``step()``, and log it first.

    ``hang_file``: the first step after this file exists hangs (None: never). ``crash_rate``:
    probability per step of ``os._exit(3)``. Each fault appends ``<kind> <pid> <unix time>`` to
    ``log`` before it fires (``os.write`` on an append descriptor survives the exit), so the
    counts are exact.
    """

    def __init__(self, env: gym.Env, log: str, hang_file: str | None = None, crash_rate: float = 0.0):
        super().__init__(env)
        self.log, self.hang_file, self.crash_rate = log, hang_file, crash_rate
        self.rng = np.random.default_rng(os.getpid())

    def _record(self, kind: str) -> None:
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, f"{kind} {os.getpid()} {time.time():.3f}\n".encode())
        os.close(fd)

    def step(self, action):
        if self.hang_file is not None and os.path.exists(self.hang_file):
            self._record("hang")
            while True:
                time.sleep(3600)
        if self.crash_rate and self.rng.random() < self.crash_rate:
            self._record("crash")
            os._exit(3)
        return self.env.step(action)


def make_faulty_env(env_config) -> gym.Env:
    """RLlib env creator: `firebreak.rllib.make_env` plus `Faults` in the remote runners
    (``worker_index >= 1``); the hang only in runner 1."""
    faults = env_config["faults"]
    env = make_env({k: v for k, v in env_config.items() if k != "faults"})
    if env_config.worker_index < 1:
        return env
    hang_file = faults["hang_file"] if env_config.worker_index == 1 else None
    return Faults(env, faults["log"], hang_file, faults["crash_rate"])


@dataclass
class Row:
    """One measured row; faults come from the wrappers' log, the rest from the engine."""

    engine: str
    fault: str
    seconds: float = 0.0  # measured wall time
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (s since start, env steps since start)
    iteration_s: list[float] = field(default_factory=list)  # wall time of each train() / fragment wait
    injected: int = 0
    restarts: int = 0
    healthy: str = ""
    hung: str = "n/a"


def _read_faults(log: Path) -> list[tuple[str, int, float]]:
    if not log.exists():
        return []
    return [(kind, int(pid), float(t)) for kind, pid, t in (line.split() for line in log.read_text().splitlines())]


def _init_ray(num_cpus: int) -> str:
    """Start a private Ray instance; returns its temp folder (short: socket paths are limited)."""
    temp_dir = tempfile.mkdtemp(prefix="rl_b_", dir="/tmp")
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _temp_dir=temp_dir)
    # Tune's registry copies registered envs into a Ray instance once, at its first ray.init:
    # every fresh instance needs them registered again.
    register_env(ENV_NAME, make_env)
    register_env(FAULTY_ENV, make_faulty_env)
    return temp_dir


def _hung_state(faults: list[tuple[str, int, float]]) -> str:
    """What became of the process that hung: still asleep in step() (never recovered) or gone."""
    hangs = [(pid, t) for kind, pid, t in faults if kind == "hang"]
    if not hangs:
        return "no hang fired"
    pid, t = hangs[0]
    try:
        status = psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return f"pid {pid} gone (killed or restarted)"
    return f"no: pid {pid} still {status} in step() after {time.time() - t:.0f} s"


def run_rllib(args, fault: str, work: Path) -> Row:
    """One RLlib row in its own private Ray instance."""
    log, trigger = work / f"rllib_{fault}.log", work / f"rllib_{fault}.hang"
    env = {"landscapes": [args.landscapes], "budget": args.budget, "n_scenarios": args.scenarios}
    rllib = {"num_env_runners": args.runners, "rollout_fragment_length": args.fragment,
             "min_sample_timesteps_per_iteration": args.runners * args.fragment,  # one sample round
             "num_steps_sampled_before_learning_starts": 10**12, "epsilon_start": 1.0, "epsilon_end": 1.0,
             "sample_timeout_s": args.sample_timeout, "replay_capacity": 1000, "prioritized_replay": False,
             "conv_filters": [[4, 8, 8]], "head_hiddens": [], "dueling": False}
    faults = {"log": str(log), "hang_file": str(trigger) if fault == "hang" else None,
              "crash_rate": args.crash_rate if fault == "crash" else 0.0}
    config = build_rllib_dqn({"env": env, "rllib": rllib}).environment(FAULTY_ENV, env_config={**env, "faults": faults})
    row = Row("RLlib DQN EnvRunners", fault)
    temp_dir = _init_ray(args.runners)
    try:
        algorithm = config.build_algo()
        algorithm.train()  # warm-up: actors started, numba compiled
        steps = lambda result: int(result["env_runners"]["num_env_steps_sampled_lifetime"])  # noqa: E731
        base = steps(algorithm.train())
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < args.seconds:
            if fault == "hang" and elapsed >= args.hang_after and not trigger.exists():
                trigger.touch()
            tick = time.perf_counter()
            result = algorithm.train()
            row.iteration_s.append(time.perf_counter() - tick)
            row.timeline.append((time.perf_counter() - start, steps(result) - base))
        row.seconds = time.perf_counter() - start
        group = algorithm.env_runner_group
        row.restarts = group.num_remote_worker_restarts()
        row.healthy = f"{group.num_healthy_remote_workers()}/{args.runners}"
        injected = _read_faults(log)
        row.injected = len(injected)
        if fault == "hang":
            row.hung = _hung_state(injected)
    finally:
        ray.shutdown()  # stops this private instance and every process it started, the hung one too
        shutil.rmtree(temp_dir, ignore_errors=True)  # Ray's logs of the row; the table has what counts
    return row


def _window_rates(row: Row, window: float) -> list[float]:
    """Env steps/s per window of `window` s, from the steps counted at the end of each iteration."""
    def steps_at(t: float) -> int:
        return max([s for u, s in row.timeline if u <= t], default=0)

    edges = np.arange(0.0, row.seconds + 1e-9, window)
    return [(steps_at(b) - steps_at(a)) / (b - a) for a, b in zip(edges[:-1], edges[1:])]


def format_rows(rows: list[Row], window: float) -> str:
    lines = [f"| engine | fault | env steps/s per {window:.0f} s window | mean env steps/s | faults injected "
             "| runner restarts | healthy runners at end | hung runner recovered? | iteration s (median / max) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rates = " / ".join(f"{x:.0f}" for x in _window_rates(r, window))
        total = r.timeline[-1][1] if r.timeline else 0
        lines.append(f"| {r.engine} | {r.fault} | {rates} | {total / r.seconds:.0f} | {r.injected} | {r.restarts} "
                     f"| {r.healthy} | {r.hung} | {statistics.median(r.iteration_s):.2f} / {max(r.iteration_s):.2f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--landscapes", default="sample:64:train")
    parser.add_argument("--scenarios", type=int, default=16, help="fires per episode")
    parser.add_argument("--budget", type=float, default=0.05, help="share of cells treated per episode")
    parser.add_argument("--runners", type=int, default=2, help="env runners, one CPU each")
    parser.add_argument("--fragment", type=int, default=64, help="env steps per runner per sample call")
    parser.add_argument("--seconds", type=float, default=75.0, help="measured wall time per row")
    parser.add_argument("--window", type=float, default=15.0, help="steps/s reported per window of this many s")
    parser.add_argument("--hang-after", type=float, default=15.0, help="s of measurement before runner 1 hangs")
    parser.add_argument("--crash-rate", type=float, default=0.01, help="process exits per step")
    parser.add_argument("--sample-timeout", type=float, default=10.0, help="RLlib sample_timeout_s")
    parser.add_argument("--faults", nargs="+", default=["none", "hang", "crash"], choices=["none", "hang", "crash"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_vs_rllib_"))
    print(f"machine: {platform.processor() or platform.machine()}, {psutil.cpu_count()} cores (shared), "
          f"load {os.getloadavg()[0]:.1f}; env {args.landscapes}, {args.scenarios} fires, budget {args.budget:.0%}; "
          f"{args.runners} runners x 1 CPU, fragments of {args.fragment} steps, random masked actions; "
          f"{args.seconds:.0f} s per row; hang after {args.hang_after:.0f} s; crash rate {args.crash_rate:.1%}/step; "
          f"RLlib sample_timeout_s {args.sample_timeout:.0f}", flush=True)
    rows = []
    for fault in args.faults:
        rows.append(run_rllib(args, fault, work))
        print(format_rows(rows[-1:], args.window).splitlines()[-1], flush=True)
    print(format_rows(rows, args.window))
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
