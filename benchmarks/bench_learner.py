"""Learner throughput: DQN updates per second for each network kind, batch size and tile size.

    python benchmarks/bench_learner.py [--device cpu|cuda] [--iters N] [--max-seconds S]

No Ray: one DQNUpdate (default DQNConfig: Double DQN, n-step, bf16 autocast on CUDA) fed
with a random batch shaped like a replay sample (float16 observations, C = 16, 70 % valid
cells). An update includes the host-to-device copy of the batch, the three forward passes
(online and target on next_obs, online on obs), the backward pass and the Adam step;
replay sampling is not included. Each configuration runs --warmup untimed updates, then
times updates until --iters are done or --max-seconds have passed (at least one).
Without --device it runs on the CPU and, when present, on CUDA.

On the CPU the default run skips batch 256 at 128 x 128 (a single residual update there
takes about 100 s on 2 cores) and takes about 2-3 minutes; --full runs it too.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled
from firebreak.dqn import Q_NETWORKS, DQNConfig, DQNUpdate, ReplayBatch, build_q_network

CHANNELS = 16


def random_batch(batch_size: int, side: int, rng: np.random.Generator) -> ReplayBatch:
    cells = side * side
    return ReplayBatch(
        obs=rng.standard_normal((batch_size, CHANNELS, side, side)).astype(np.float16),
        action=rng.integers(0, cells, batch_size),
        returns=rng.standard_normal(batch_size).astype(np.float32),
        n_steps=np.full(batch_size, 3),
        terminated=rng.random(batch_size) < 0.05,
        next_obs=rng.standard_normal((batch_size, CHANNELS, side, side)).astype(np.float16),
        next_mask=rng.random((batch_size, cells)) < 0.7,
        weights=rng.uniform(0.5, 1.0, batch_size).astype(np.float32),
        indices=np.arange(batch_size),
    )


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    model = platform.processor()  # empty on most Linux systems, where /proc/cpuinfo names it
    if Path("/proc/cpuinfo").exists():
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), model)
    return f"{model}, {torch.get_num_threads()} threads"


def updates_per_second(kind: str, device: str, batch_size: int, side: int, args: argparse.Namespace) -> float:
    torch.manual_seed(0)
    update = DQNUpdate(build_q_network(kind, CHANNELS), DQNConfig(network=kind), device=device)
    batch = random_batch(batch_size, side, np.random.default_rng(0))
    for _ in range(args.warmup):
        update.update(batch)
    # update() returns its metrics as Python floats: each call ends with a device sync.
    start = time.perf_counter()
    done = 0
    while done < args.iters and (done == 0 or time.perf_counter() - start < args.max_seconds):
        update.update(batch)
        done += 1
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: cpu, and cuda when present")
    parser.add_argument("--iters", type=int, default=20, help="timed updates per configuration, at most")
    parser.add_argument("--max-seconds", type=float, default=2.0, help="stop timing a configuration after this")
    parser.add_argument("--warmup", type=int, default=1, help="untimed updates per configuration")
    parser.add_argument("--full", action="store_true", help="on the CPU, also run batch 256 at 128 x 128")
    args = parser.parse_args()
    devices = [args.device] if args.device else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

    for device in devices:
        print(f"\ndevice: {device} ({device_name(device)}), C = {CHANNELS}, updates/s (samples/s)")
        sizes = [(batch_size, side) for side in (64, 128) for batch_size in (64, 256)]
        print(f"{'network':<10}" + "".join(f"{f'B={b} {s}x{s}':>22}" for b, s in sizes))
        for kind in Q_NETWORKS:
            cells = []
            for batch_size, side in sizes:
                if device == "cpu" and batch_size * side * side > 64 * 128 * 128 and not args.full:
                    cells.append("skipped (--full)")
                    continue
                rate = updates_per_second(kind, device, batch_size, side, args)
                cells.append(f"{rate:9.2f} ({rate * batch_size:7.0f})")
            print(f"{kind:<10}" + "".join(f"{cell:>22}" for cell in cells), flush=True)


if __name__ == "__main__":
    main()
