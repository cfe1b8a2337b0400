"""Fires over the whole bundled landscape, side by side: ``python benchmarks/bench_burnprob.py``.

Rows, all on the same fires of the default fire season (613 x 549 Worcester landscape):

- whole grid: `firebreak.fire.simulate` on the whole landscape, one fire after another (the
  peer: what a burn-probability run costs without windows); timed on `--peer-fires` of them;
- windows: `firebreak.landscape_fires.burn_fires` in this process (each fire on a window
  around its ignition, kept sparse), without and with flame lengths (the burnprob path);
- windows on Ray: the same as Ray tasks on a private local instance of `--cpus` CPUs.

Each row prints fires/s (best of `--repeats`, the rows taking turns so that load on a shared
machine hits them alike) and the ratio to the whole-grid row; the burned cells of the peer's
fires are checked equal to the windowed ones (exactness, not only speed).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

import numpy as np
import ray

from firebreak.env import DEFAULT_SEASON
from firebreak.fire import ScenarioSampler, simulate
from firebreak.landscape import sample_landscape
from firebreak.landscape_fires import burn_fires


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fires", type=int, default=1000)
    parser.add_argument("--peer-fires", type=int, default=32, help="whole-grid fires timed (0.1-0.2 s each)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the Ray row (0: no Ray row)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    landscape = sample_landscape()
    scenarios = ScenarioSampler(0, DEFAULT_SEASON).sample(landscape, args.fires)
    simulate(landscape, scenarios[0])  # JIT (cached on disk) out of the timings
    burn_fires(landscape, scenarios[:2], progress=False)

    peer = scenarios[:args.peer_fires]
    runs = {"whole grid (simulate)": (len(peer), lambda: [simulate(landscape, s).burned for s in peer])}
    for label, flame in (("windows", False), ("windows + flame length", True)):
        runs[label] = (args.fires, lambda flame=flame: burn_fires(landscape, scenarios, flame_length=flame,
                                                                  progress=False))
    ray_label = f"windows + flame length, Ray {args.cpus} CPUs"
    best = {label: 0.0 for label in list(runs) + ([ray_label] if args.cpus else [])}
    outputs = {}
    for _ in range(args.repeats):
        for label, (n, run) in runs.items():
            started = time.perf_counter()
            outputs[label] = run()
            best[label] = max(best[label], n / (time.perf_counter() - started))
        if args.cpus:  # a fresh private instance each turn; its start-up is not timed
            temp_dir = tempfile.mkdtemp(prefix="fb-bench-", dir="/tmp")
            ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False,
                     _temp_dir=temp_dir)
            burn_fires(landscape, scenarios[:4 * args.cpus], progress=False)  # workers up, JIT loaded
            started = time.perf_counter()
            burn_fires(landscape, scenarios, flame_length=True, progress=False)
            best[ray_label] = max(best[ray_label], args.fires / (time.perf_counter() - started))
            ray.shutdown()
            shutil.rmtree(temp_dir, ignore_errors=True)
    for mask, record in zip(outputs["whole grid (simulate)"], outputs["windows"]):
        r0, c0, r1, c1 = record.box
        assert mask.sum() == record.cells and np.array_equal(mask[r0:r1, c0:c1], record.burned)
    peer_rate = best["whole grid (simulate)"]
    rows = [(label, runs[label][0] if label in runs else args.fires, rate) for label, rate in best.items()]
    records = outputs["windows"]

    cells = np.mean([r.cells for r in records])
    print(f"Worcester 613 x 549, {args.fires} fires of the default season, mean {cells:.0f} burned cells per fire")
    print("| fires on | fires | fires/s | x whole grid |")
    print("|---|---|---|---|")
    for label, n, rate in rows:
        print(f"| {label} | {n} | {rate:.1f} | {rate / peer_rate:.1f} |")


if __name__ == "__main__":
    main()
