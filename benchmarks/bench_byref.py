"""Bytes, CPU and ingest of the fragment data path: runners -> (driver) -> learner.

    python benchmarks/bench_byref.py [--runners 32] [--seconds 20] [--fragment-length 32]

Starts a private local Ray instance (its own temp dir, token auth off), ``--runners`` runners with
fractional CPUs (``--cpus-per-runner``) stepping ``RealSizeEnv`` (observations of a 64 x 64
FuelBreakEnv: 18 float32 layers in [-5, 5], 14 fixed per episode, 205-step episodes, action
masks; the fire simulation left out, so the data path, not the envs, is the load) and the
`LearnerActor` of ``--config`` (its replay shrunk to ``--buffer-size`` slots). The driver loop is
train.py's: ``Supervisor.next_fragment()``, then ``learner.add_fragment.remote(fragment)``, with
at most ``2 x runners`` fragments queued on the learner. Then it prints, per fragment, once
every runner has delivered:

* ``driver bytes in``: what the driver deserializes from ``ray.get`` (numpy bytes plus an
  estimate of the rest), counted by wrapping ``ray.get`` in this process;
* ``driver bytes out``: the same estimate for the argument of each ``add_fragment`` call;
* ``driver I/O``: the driver process's read + write syscall bytes (``/proc/self/io`` rchar +
  wchar: sockets and pipes; objects read from the local object store are mapped, not read, so
  they show in the first two figures only);
* ``driver CPU``: user + system CPU of the driver process;
* the learner's ingest: fragments and env steps its replay took per second.

It runs against any checkout of firebreak: a `Fragment` without ``transitions`` (before fragments
travelled by reference) carries its arrays, and the same counters show them.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shutil
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

from firebreak.config import load_config  # noqa: E402
from firebreak.rollout import RandomPolicy, RunnerSpec, Supervisor  # noqa: E402
from firebreak.rollout.learner import create_learner  # noqa: E402
from firebreak.train import dqn_config  # noqa: E402

SHAPE = (18, 64, 64)


class RealSizeEnv(gym.Env):
    """FuelBreakEnv's observation and action spaces at no simulation cost: 14 random static
    layers per episode, 4 dynamic ones (progress, breaks, noise, treatable), 205 steps."""

    metadata: dict = {}
    static_channels = tuple(range(14))

    def __init__(self, length: int = 205):
        self.observation_space = gym.spaces.Box(-5.0, 5.0, SHAPE, np.float32)
        self.action_space = gym.spaces.Discrete(SHAPE[1] * SHAPE[2])
        self.length = length

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._obs = np.zeros(SHAPE, np.float32)
        self._obs[:14] = self.np_random.uniform(-1, 1, (14, *SHAPE[1:]))
        self._obs[17] = 1.0
        self._t = 0
        return self._obs.copy(), {}

    def action_masks(self):
        return self._obs[17].ravel() > 0

    def step(self, action):
        self._t += 1
        self._obs[14] = self._t / self.length
        self._obs[15].flat[int(action)] = 1.0
        self._obs[16].flat[self._t % self._obs[16].size] = self.np_random.random()
        self._obs[17].flat[int(action)] = 0.0
        return self._obs.copy(), 0.0, self._t >= self.length, False, {}


def payload_bytes(value, depth: int = 0) -> int:
    """Bytes a value carries: numpy arrays exactly, strings and bytes by length, refs and other
    scalars at 8-28 bytes; dataclasses, lists, tuples and dicts by their items."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, (str, bytes)):
        return len(value)
    if isinstance(value, ray.ObjectRef):
        return 28
    if depth > 6:
        return 8
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(payload_bytes(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value))
    if isinstance(value, dict):
        return sum(payload_bytes(k, depth + 1) + payload_bytes(v, depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return sum(payload_bytes(v, depth + 1) for v in value)
    return 8


class Counter:
    """Wraps ``ray.get`` in this process and counts the bytes it hands back."""

    def __init__(self):
        self.bytes_in = 0
        self._get = ray.get

        def counting_get(refs, *args, **kwargs):
            value = self._get(refs, *args, **kwargs)
            self.bytes_in += payload_bytes(value)
            return value

        ray.get = counting_get

    def close(self):
        ray.get = self._get


def _io() -> int:
    io = psutil.Process().io_counters()
    return io.read_chars + io.write_chars


def _cpu() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system


def run(args) -> None:
    cfg = load_config(os.path.join(ROOT, args.config), [f"learner.buffer_size={args.buffer_size}"])
    learner = create_learner(dqn_config(cfg), SHAPE, None, 0, num_gpus=0, num_cpus=1, max_restarts=0)
    ray.get(learner.info.remote())
    spec = RunnerSpec(RealSizeEnv, RandomPolicy(SHAPE[1] * SHAPE[2]), envs_per_runner=1,
                      fragment_length=args.fragment_length, seed=0, num_cpus=args.cpus_per_runner)
    queued: list = []
    started = time.monotonic()
    with Supervisor(spec, args.runners, sample_timeout_s=300, restart_timeout_s=600, stall_factor=None) as sup:
        seen: set[int] = set()
        while len(seen) < args.runners:  # every runner started and delivered once
            fragment = sup.next_fragment()
            seen.add(fragment.runner_index)
            queued.append(learner.add_fragment.remote(fragment))
            del fragment
            if len(queued) > 2 * args.runners:
                ray.get(queued.pop(0))
        ray.get(queued)
        queued.clear()
        startup = time.monotonic() - started
        counter = Counter()
        bytes_out = fragments = steps = 0
        io0, cpu0, wall0 = _io(), _cpu(), time.perf_counter()
        while time.perf_counter() - wall0 < args.seconds:
            fragment = sup.next_fragment()
            bytes_out += payload_bytes(fragment)
            fragments, steps = fragments + 1, steps + fragment.num_steps
            queued.append(learner.add_fragment.remote(fragment))
            del fragment
            if len(queued) > 2 * args.runners:
                ray.get(queued.pop(0))
        ray.get(queued)  # the learner has ingested every fragment timed
        wall, cpu, io = time.perf_counter() - wall0, _cpu() - cpu0, _io() - io0
        counter.close()
        stats = sup.stats()
    ray.kill(learner)
    print(f"{args.runners} runners x {args.cpus_per_runner} CPU, fragments of {args.fragment_length} steps of one "
          f"{SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]} env; startup {startup:.0f} s, {fragments} fragments in {wall:.1f} s; "
          f"faults {stats['hangs'] + stats['crashes'] + stats['env_errors']}")
    print(f"driver bytes in per fragment   {counter.bytes_in / fragments:>14,.0f} B   (ray.get results)")
    print(f"driver bytes out per fragment  {bytes_out / fragments:>14,.0f} B   (add_fragment arguments)")
    print(f"driver I/O per fragment        {io / fragments:>14,.0f} B   (rchar + wchar: sockets, pipes)")
    print(f"driver CPU per fragment        {1e3 * cpu / fragments:>14.2f} ms")
    print(f"learner ingest                 {fragments / wall:>14.1f} fragments/s, {steps / wall:,.0f} env steps/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runners", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0, help="timed part, after every runner delivered once")
    parser.add_argument("--fragment-length", type=int, default=32)
    parser.add_argument("--cpus-per-runner", type=float, default=0.02)
    parser.add_argument("--config", default="ray_configs/local.yaml", help="the learner's config")
    parser.add_argument("--buffer-size", type=int, default=2000, help="replay slots (the learner's memory)")
    args = parser.parse_args()
    temp_dir = tempfile.mkdtemp(prefix="rbr_", dir="/tmp")
    num_cpus = int(math.ceil(args.runners * args.cpus_per_runner)) + 2  # + the learner + slack
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _temp_dir=temp_dir,
             log_to_driver=False, configure_logging=False)
    try:
        print(f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, ray {ray.__version__}")
        run(args)
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
