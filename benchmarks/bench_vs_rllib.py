"""Env steps/s on FuelBreakEnv: RLlib's EnvRunners vs firebreak's rollout engine, healthy, with one
hung env and with crashes.

    python benchmarks/bench_vs_rllib.py [--landscapes sample:64:train] [--scenarios 16] [--runners 2]
                                        [--seconds 75] [--crash-rate 0.01] [--hang-step 1500]
                                        [--engines firebreak firebreak-iso rllib]

One command, one run, one env config (`FuelBreakEnv`, random masked actions), ``--runners`` runner
processes with one CPU each, fragments of ``--fragment`` steps, on both engines:

* RLlib: its DQN (new API stack, `firebreak.rllib.build_rllib_dqn`) with epsilon fixed at 1 and
  learning switched off, so ``Algorithm.train()`` is RLlib's sampling loop: a
  ``synchronous_parallel_sample`` round over the EnvRunners, the replay-buffer add and RLlib's fault
  handling (``restart_failed_env_runners=True``, ``sample_timeout_s=--deadline``). Its runners still
  run a tiny Q-network per step (one 4-channel conv, a linear head).
* firebreak: `firebreak.rollout.Supervisor` over `EnvRunner` actors with `RandomPolicy`, fragment
  deadline at least ``--deadline`` s (its default adaptive deadline otherwise; stall detection at its defaults),
  up to 20 failures of one runner in a row before `RolloutError`; engine ``firebreak-iso``: the same
  with ``isolate_envs`` (each env in a process of its own, respawned by its runner after a fault).

Faults come from `firebreak.rollout.faults.FaultInjector` (each logged before it fires, so counts are
exact; a lost step is counted, never replaced by made-up data):
* hang: the first env to reach its ``--hang-step``-th ``step()`` sleeps forever (once per row).
  Reported: whether the engine ever got that runner back, and after how long (the first fragment
  of the same runner from a new process), or that the process is still asleep at the end.
* crash: every ``step()`` exits its process (``os._exit(3)``) with probability ``--crash-rate``.

Each row runs ``--seconds`` of wall time after a warm-up batch (actor start and numba JIT are not
throughput) in its own private Ray instance (``address="local"``, ``num_cpus=--runners``, own temp
folder); `ray.shutdown()` stops it with every process it started, a hung one too. Steps/s are
listed per ``--window`` s so a stall shows. The machine is shared: compare rows of one run only.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ray  # noqa: E402
from ray.tune.registry import register_env  # noqa: E402

from firebreak.env import FuelBreakEnv  # noqa: E402
from firebreak.rllib import build_rllib_dqn, make_env, register  # noqa: E402
from firebreak.rollout import FaultInjector, FaultyEnvFactory, RandomPolicy, RunnerSpec, Supervisor  # noqa: E402
from firebreak.rollout.faults import read_injections  # noqa: E402

FAULTY_ENV = "firebreak-fuelbreak-faulty"


def make_faulty_env(env_config):
    """RLlib env creator: `firebreak.rllib.make_env` wrapped in a `FaultInjector`."""
    return FaultInjector.from_config(make_env({k: v for k, v in env_config.items() if k != "faults"}),
                                     env_config["faults"])


@dataclass
class Row:
    """One measured row; faults come from the injection log, the rest from the engine."""

    engine: str
    fault: str
    seconds: float = 0.0  # measured wall time
    started: float = 0.0  # time.time() at the start of the measurement
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (s since start, env steps since start)
    waits: list[float] = field(default_factory=list)  # wall time of each train() call / fragment wait, s
    injected: int = 0
    restarts: str = ""
    lost: str = "not reported"
    hang: str = "n/a"  # filled in when a hang fired


def _faults(args, fault: str, log_dir: Path) -> dict:
    if fault == "hang":
        return {"schedule": [(args.hang_step, "hang")], "log_dir": str(log_dir)}
    if fault == "crash":
        return {"p_exit": args.crash_rate, "seed": 1, "log_dir": str(log_dir)}
    return {"log_dir": str(log_dir)}


def _init_ray(num_cpus: int) -> str:
    """Start a private Ray instance; returns its temp folder (short: socket paths are limited)."""
    temp_dir = tempfile.mkdtemp(prefix="rl_b_", dir="/tmp")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private instance: no token (Ray 2.60 would write one)
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _temp_dir=temp_dir)
    # Tune's registry copies registered envs into a Ray instance once, at its first ray.init:
    # every fresh instance needs them registered again.
    register()
    register_env(FAULTY_ENV, make_faulty_env)
    return temp_dir


def _measure(row: Row, advance, seconds: float) -> None:
    """Call ``advance()`` (returns env steps delivered since the start) until `seconds` have passed."""
    row.started, start = time.time(), time.perf_counter()
    while time.perf_counter() - start < seconds:
        tick = time.perf_counter()
        steps = advance(seconds - (tick - start))
        row.waits.append(time.perf_counter() - tick)
        row.timeline.append((time.perf_counter() - start, steps))
    row.seconds = time.perf_counter() - start


def _still_hung(hang) -> str | None:
    """'no: ...' when the hung process is still asleep, None when it is gone."""
    try:
        status = psutil.Process(hang.pid).status()
    except psutil.NoSuchProcess:
        return None
    return f"no: pid {hang.pid} still {status} in step() {time.time() - hang.time:.0f} s after the hang"


def run_rllib(args, fault: str, log_dir: Path) -> Row:
    env = {"landscapes": [args.landscapes], "budget": args.budget, "n_scenarios": args.scenarios}
    rllib = {"num_env_runners": args.runners, "rollout_fragment_length": args.fragment,
             "min_sample_timesteps_per_iteration": args.runners * args.fragment,  # one sample round
             "num_steps_sampled_before_learning_starts": 10**12, "epsilon_start": 1.0, "epsilon_end": 1.0,
             "sample_timeout_s": args.deadline, "replay_capacity": 1000, "prioritized_replay": False,
             "conv_filters": [[4, 8, 8]], "head_hiddens": [], "dueling": False}
    config = build_rllib_dqn({"env": env, "rllib": rllib}).environment(
        FAULTY_ENV, env_config={**env, "faults": _faults(args, fault, log_dir)})
    row = Row("RLlib DQN EnvRunners", fault)
    temp_dir = _init_ray(args.runners)
    try:
        algorithm = config.build_algo()
        steps = lambda result: int(result["env_runners"]["num_env_steps_sampled_lifetime"])  # noqa: E731
        base = steps(algorithm.train())  # warm-up
        _measure(row, lambda left: steps(algorithm.train()) - base, args.seconds)
        group = algorithm.env_runner_group
        row.restarts = str(group.num_remote_worker_restarts())
        injections = read_injections(str(log_dir))
        row.injected = len(injections)
        hang = next((i for i in injections if i.kind == "hang"), None)
        if hang is not None:
            state = _still_hung(hang)
            row.hang = (f"{state}; RLlib counts {group.num_healthy_remote_workers()}/{args.runners} runners healthy"
                        if state else "process gone")
    finally:
        ray.shutdown()  # stops this private instance and every process it started, the hung one too
        shutil.rmtree(temp_dir, ignore_errors=True)  # Ray's logs of the row; the table has what counts
    return row


def run_firebreak(args, fault: str, log_dir: Path, isolate_envs: bool = False) -> Row:
    factory = FaultyEnvFactory(functools.partial(FuelBreakEnv, [args.landscapes], budget=args.budget,
                                                 n_scenarios=args.scenarios), _faults(args, fault, log_dir))
    n_actions = FuelBreakEnv([args.landscapes], n_scenarios=1).action_space.n
    spec = RunnerSpec(factory, RandomPolicy(n_actions), envs_per_runner=1, fragment_length=args.fragment, num_cpus=1,
                      isolate_envs=isolate_envs)
    row = Row("firebreak Supervisor" + (", env processes" if isolate_envs else ""), fault)
    fragments = []  # (time.time(), runner_index, runner pid, env fault message or "") of each fragment
    temp_dir = _init_ray(args.runners)
    try:
        # At 1 % exits per step a 64-step fragment fails about half the time, so 5 failures in a
        # row (the default, meant to stop a deterministic bug) happen within a minute by chance.
        with Supervisor(spec, args.runners, min_timeout_s=args.deadline, max_consecutive_failures=20) as supervisor:
            supervisor.next_fragment()  # warm-up
            base = supervisor.stats()["env_steps"]

            def advance(left: float) -> int:
                try:
                    fragment = supervisor.next_fragment(timeout=max(left, 0.1))
                    fault_message = fragment.fault.message if fragment.fault is not None else ""
                    fragments.append((time.time(), fragment.runner_index, fragment.pid, fault_message))
                except TimeoutError:  # no fragment in the rest of the row: counted as zero steps
                    pass
                return int(supervisor.stats()["env_steps"] - base)

            _measure(row, advance, args.seconds)
            stats = supervisor.stats()
        row.restarts = f"{stats['restarts']:.0f} (+{stats['replacements']:.0f} replaced)"
        row.lost = f"{stats['lost_steps']:.0f} in {stats['lost_fragments']:.0f} fragments"
        injections = read_injections(str(log_dir))
        row.injected = len(injections)
        hang = next((i for i in injections if i.kind == "hang"), None)
        if hang is not None:
            row.hang = _still_hung(hang) or _recovery(hang, fragments)
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
    return row


def _recovery(hang, fragments) -> str:
    """How long after the hang the hung runner delivered again: from a new process, or (env
    processes) after the fragment that reported the hung env process's respawn."""
    respawned = next(((t, index) for t, index, _, fault in fragments if f"env process {hang.pid} " in fault), None)
    if respawned is not None:
        runner = respawned[1]
        back = next((t for t, index, _, fault in fragments if index == runner and t > respawned[0]), None)
    else:
        runner = next((index for _, index, pid, _ in fragments if pid == hang.pid), None)
        back = next((t for t, index, pid, _ in fragments if index == runner and pid != hang.pid and t > hang.time), None)
    if runner is None or back is None:
        return "hung process killed; no fragment from its runner since"
    how = "its env process respawned, " if respawned is not None else ""
    return f"yes: {how}runner {runner} delivered again {back - hang.time:.1f} s after the hang"


def _window_rates(row: Row, window: float) -> list[float]:
    """Env steps/s per window of `window` s, from the steps counted after each batch."""
    def steps_at(t: float) -> int:
        return max([s for u, s in row.timeline if u <= t], default=0)

    edges = np.arange(0.0, row.seconds + 1e-9, window)
    return [(steps_at(b) - steps_at(a)) / (b - a) for a, b in zip(edges[:-1], edges[1:])]


def format_rows(rows: list[Row], window: float) -> str:
    lines = [f"| engine | fault | env steps/s per {window:.0f} s window | mean env steps/s | faults injected "
             "| runner restarts | lost env steps (engine's count) | hung runner recovered? "
             "| wait for data s (median / max) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rates = " / ".join(f"{x:.0f}" for x in _window_rates(r, window))
        total = r.timeline[-1][1] if r.timeline else 0
        lines.append(f"| {r.engine} | {r.fault} | {rates} | {total / r.seconds:.0f} | {r.injected} | {r.restarts} "
                     f"| {r.lost} | {r.hang} | {statistics.median(r.waits):.2f} / {max(r.waits):.2f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--landscapes", default="sample:64:train")
    parser.add_argument("--scenarios", type=int, default=16, help="fires per episode")
    parser.add_argument("--budget", type=float, default=0.05, help="share of cells treated per episode")
    parser.add_argument("--runners", type=int, default=2, help="runner processes, one CPU each")
    parser.add_argument("--fragment", type=int, default=64, help="env steps per runner per sample call")
    parser.add_argument("--seconds", type=float, default=75.0, help="measured wall time per row")
    parser.add_argument("--window", type=float, default=15.0, help="steps/s reported per window of this many s")
    parser.add_argument("--hang-step", type=int, default=1500, help="the env step (per env) that hangs")
    parser.add_argument("--crash-rate", type=float, default=0.01, help="process exits per env step")
    parser.add_argument("--deadline", type=float, default=10.0,
                        help="s: RLlib's sample_timeout_s and the Supervisor's minimum fragment deadline")
    parser.add_argument("--engines", nargs="+", default=["firebreak", "firebreak-iso", "rllib"],
                        choices=["firebreak", "firebreak-iso", "rllib"])
    parser.add_argument("--faults", nargs="+", default=["none", "hang", "crash"], choices=["none", "hang", "crash"])
    args = parser.parse_args()
    runners = {"firebreak": run_firebreak, "firebreak-iso": functools.partial(run_firebreak, isolate_envs=True),
               "rllib": run_rllib}
    work = Path(tempfile.mkdtemp(prefix="bench_vs_rllib_"))
    print(f"machine: {platform.processor() or platform.machine()}, {psutil.cpu_count()} cores (shared), "
          f"load {os.getloadavg()[0]:.1f}; env {args.landscapes}, {args.scenarios} fires, budget {args.budget:.0%}; "
          f"{args.runners} runners x 1 CPU, fragments of {args.fragment} steps, random masked actions; "
          f"{args.seconds:.0f} s per row; hang at env step {args.hang_step}; crash rate {args.crash_rate:.1%}/step; "
          f"deadline {args.deadline:.0f} s", flush=True)
    rows = []
    for fault in args.faults:
        for engine in args.engines:
            rows.append(runners[engine](args, fault, work / f"{engine}_{fault}"))
            if fault == "hang" and rows[-1].hang == "n/a":
                rows[-1].hang = f"hang did not fire: no env reached step {args.hang_step} (lower --hang-step)"
            print(format_rows(rows[-1:], args.window).splitlines()[-1], flush=True)
    print(format_rows(rows, args.window))
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
