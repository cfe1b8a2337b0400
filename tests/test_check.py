"""``train_ray.py --check``: a config's replay, demonstrations and actors against its nodes."""

import re
from pathlib import Path

import numpy as np
import pytest

import train_ray
from firebreak.check import GiB, Node, check, cluster_nodes
from firebreak.config import ConfigError, load_config
from firebreak.dqn.demonstrations import DemonstrationBuffer, demonstrations_nbytes
from firebreak.dqn.replay import PrioritizedReplayBuffer, replay_nbytes

ROOT = Path(__file__).parents[1]
CONFIGS = ROOT / "ray_configs"
LAPTOP = Node("2-core 16 GiB laptop", 2, 0, 16 * GiB)  # the machine the local configs are sized for


def test_sizes_match_the_buffers_they_describe():
    shape = (3, 5, 7)
    assert replay_nbytes(100, shape) == PrioritizedReplayBuffer(100, shape, 0.99, 3).nbytes
    assert (replay_nbytes(100, shape, static_channels=2, static_slots=9)
            == PrioritizedReplayBuffer(100, shape, 0.99, 3, static_channels=(0, 2), static_slots=9).nbytes)
    demos = DemonstrationBuffer(0.99, 3)
    steps = 4
    demos.add_episode(np.zeros((steps + 1, *shape)), np.ones((steps + 1, 35), bool), np.arange(steps),
                      np.zeros(steps), np.zeros((steps, 35)), True)
    assert demonstrations_nbytes(1, steps, shape) == demos.nbytes


@pytest.mark.parametrize("name", sorted(p.stem for p in CONFIGS.glob("*.yaml") if p.stem != "rllib_dqn"))
def test_every_shipped_config_fits_what_it_targets(name):
    nodes = cluster_nodes(ROOT / "cluster.yaml") if name == "cluster" else [LAPTOP]
    report = check(load_config(CONFIGS / f"{name}.yaml"), nodes)
    assert report.ok, report.table()


def test_the_cli_checks_against_this_machine_and_a_cluster(capsys):
    assert train_ray.main(["--check", "--config", str(CONFIGS / "smoke.yaml")]) == 0
    assert "this machine" in capsys.readouterr().out
    assert train_ray.main(["--check", "--config", str(CONFIGS / "cluster.yaml"), "--cluster",
                           str(ROOT / "cluster.yaml")]) == 0
    out = capsys.readouterr().out
    assert "learner node       gpu_learner (g5.2xlarge): 8 CPU, 1 GPU, 32.0 GiB" in out and "ok:" in out


def test_an_oversized_replay_is_refused_with_the_key_the_figure_and_the_fix(capsys):
    code = train_ray.main(["--check", "--config", str(CONFIGS / "cluster.yaml"), "--cluster",
                           str(ROOT / "cluster.yaml"), "--set", "learner.buffer_size=2000000"])
    out = capsys.readouterr().out
    assert code == 1
    # 2e6 slots x (4 dynamic layers x 64 x 64 x 2 B + 4 B + 4096 B mask + 22 B) + 14 static layers of
    # 1.5 x 2e6 / 206 episodes + trees = 70.3 GiB (500000 slots needed 70.6 GiB before static layers were kept once)
    found = re.search(r"error: learner\.buffer_size 2000000 needs 70\.3 GiB of replay \(72\.3 GiB with demonstrations "
                      r"and the process\); the learner node type gpu_learner \(g5\.2xlarge\) has 32\.0 GiB \(28\.8 GiB "
                      r"usable\): set learner\.buffer_size <= (\d+) or pick a larger node", out)
    assert found, out
    bound = int(found.group(1))
    nodes = cluster_nodes(ROOT / "cluster.yaml")
    fits = check(load_config(CONFIGS / "cluster.yaml", [f"learner.buffer_size={bound}"]), nodes)
    over = check(load_config(CONFIGS / "cluster.yaml", [f"learner.buffer_size={bound + 1}"]), nodes)
    assert fits.ok and not over.ok  # the bound it suggests is the exact one


def test_actors_that_do_not_fit_name_their_keys():
    cfg = load_config(CONFIGS / "cluster.yaml", ["rollout.runners=200"])
    (problem,) = check(cfg, cluster_nodes(ROOT / "cluster.yaml")).problems
    assert problem.startswith("rollout.runners 200") and "set rollout.runners <= 160" in problem
    cfg = load_config(CONFIGS / "smoke.yaml", ["learner.resources={learner: 1}"])
    (problem,) = check(cfg, [LAPTOP]).problems
    assert "the learner needs CPU 1, learner 1" in problem and "learner.resources" in problem
    cfg = load_config(CONFIGS / "smoke.yaml", ["rollout.runners=4"])
    assert "set rollout.runners <= 2" in check(cfg, [LAPTOP]).problems[0]
    spare = check(load_config(CONFIGS / "smoke.yaml", ["rollout.spare_runners=1"]), [LAPTOP]).problems
    assert spare and spare[0].startswith("rollout.runners 2 + rollout.spare_runners 1") and "runners <= 1" in spare[0]
    cfg = load_config(CONFIGS / "cluster.yaml", ["rollout.memory_limit_mb=3000"])
    (problem,) = check(cfg, cluster_nodes(ROOT / "cluster.yaml")).problems
    assert problem.startswith("rollout.memory_limit_mb 3000: 16 runners fit the CPUs of cpu_runners (c6i.4xlarge) "
                              "but only 9 fit")


def test_an_unknown_instance_type_is_a_clear_error(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text("available_node_types:\n  big:\n    max_workers: 2\n    node_config: {InstanceType: x9.huge}\n")
    with pytest.raises(ConfigError, match=r"node type big: instance type 'x9.huge' is not in firebreak\.check\."
                                          r"INSTANCE_TYPES.*resources: \{CPU: n, GPU: n, memory: bytes\}"):
        cluster_nodes(path)
    path.write_text("available_node_types:\n  big:\n    max_workers: 2\n    resources: {CPU: 8, memory: 1000}\n")
    assert cluster_nodes(path)[0].cpus == 8
