#!/usr/bin/env python
"""Train a fuel-break placement policy: ``python train_ray.py [--config ray_configs/local.yaml]``.

    python train_ray.py                                        # laptop default: 2 runners, minutes
    python train_ray.py --config ray_configs/smoke.yaml        # the CI smoke run
    python train_ray.py --set learner.lr=3e-4 --set run.name=lr3e-4
    python train_ray.py --resume latest                        # continue runs/<name>/checkpoints/latest.pt
    ray job submit --working-dir . -- python train_ray.py --config ray_configs/cluster.yaml
    python train_ray.py --algo rllib-dqn --config ray_configs/rllib_dqn.yaml
    python train_ray.py --check --config ray_configs/cluster.yaml --cluster cluster.yaml   # fits its nodes?
    python train_ray.py --check --config ray_configs/local.yaml                            # ... this machine?

Progress shows on stderr; the summary table ends the run. TensorBoard: ``tensorboard --logdir runs``.
"""

from __future__ import annotations

import argparse
import logging
import sys

DEFAULT_CONFIG = "ray_configs/local.yaml"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", choices=["dqn", "rllib-dqn"], default="dqn",
                        help="firebreak's own DQN engine (default) or RLlib's DQN on the same env")
    parser.add_argument("--config", default=None, help=f"YAML config (default {DEFAULT_CONFIG})")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set learner.lr=3e-4 (repeatable)")
    parser.add_argument("--resume", default=None, metavar="PATH|latest",
                        help="continue from a checkpoint (its config, unless --config is given)")
    parser.add_argument("--address", default=None,
                        help="Ray address: local (private instance), auto (running cluster) or ray://...; "
                             "default: RAY_ADDRESS when set, else local")
    parser.add_argument("--check", action="store_true",
                        help="validate the config and check that its replay, demonstrations and actors fit the "
                             "nodes (of --cluster, else this machine); exit 0 with a table, 1 with what to change")
    parser.add_argument("--cluster", default=None, metavar="CLUSTER_YAML",
                        help="with --check: the `ray up` cluster file whose node types the run targets")
    args, rest = parser.parse_known_args(argv)
    if args.algo == "rllib-dqn" and args.check:
        parser.error("--check sizes firebreak's own engine (--algo dqn); RLlib sizes its own")
    if args.algo == "rllib-dqn":
        from firebreak.rllib import main as rllib_main

        forwarded = ["--config", args.config or "ray_configs/rllib_dqn.yaml"]
        forwarded += [f"--set={s}" for s in args.set]
        if args.address:
            forwarded += ["--address", args.address]
        return rllib_main(forwarded + rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.cluster and not args.check:
        parser.error("--cluster goes with --check")

    from pathlib import Path

    from firebreak.config import ConfigError, apply_overrides, load_config
    from firebreak.dqn.checkpoint import CheckpointError, load_checkpoint
    from firebreak.train import format_summary, train

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config or DEFAULT_CONFIG, args.set)
        resume = args.resume
        if resume == "latest":
            resume = str(Path(cfg.run.out_dir) / cfg.run.name / "checkpoints" / "latest.pt")
        if resume and args.config is None:  # continue with the checkpoint's own config
            cfg = apply_overrides(load_checkpoint(resume)["config"], args.set, resume)
        if args.check:
            from firebreak.check import check, cluster_nodes, local_node

            report = check(cfg, cluster_nodes(args.cluster) if args.cluster else [local_node(cfg)])
            print(report.table())
            return 0 if report.ok else 1
        summary = train(cfg, address=args.address, resume=resume, progress=True)
    except (ConfigError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
