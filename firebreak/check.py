"""Does a training config fit its nodes? ``python train_ray.py --check [--cluster cluster.yaml]``.

`check(cfg, nodes)` sizes what the config asks for and compares it with the node types it
would run on, before any instance starts:

- the learner's memory: the replay at full capacity (`replay_nbytes`: slots x bytes per slot
  from the observation shape and dtype, the env's episode-static layers once per episode in
  `default_static_slots` entries), the demonstrations (`demonstrations_nbytes`) and
  `LEARNER_OVERHEAD` for the process itself (torch, a CUDA context);
- each runner's memory: ``rollout.memory_limit_mb`` (the supervisor recycles a runner above it),
  else `RUNNER_ALLOWANCE`;
- the actors' resources: CPUs, GPUs and custom resources of the learner and every runner, and
  how many nodes of each type they need.

A node's memory counts at `MEMORY_SHARE` of the instance: Ray's memory monitor kills workers
when a node passes 95 % of its memory, and the OS and Ray's own processes need the rest.

Nodes come from a ``ray up`` cluster file (`cluster_nodes`: each node type's ``resources`` from
the file, CPU, GPU and memory from `INSTANCE_TYPES` by ``node_config.InstanceType`` unless the
file gives them, as Ray's AWS provider does) or from this machine (`local_node`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .config import Config, ConfigError
from .dqn.demonstrations import demonstrations_nbytes
from .dqn.replay import default_static_slots, replay_nbytes

GiB = 2**30
MEMORY_SHARE = 0.9  # of a node's memory that actors may use
LEARNER_OVERHEAD = 2 * GiB  # the learner process beside its buffers: torch, CUDA context, networks (an allowance)
RUNNER_ALLOWANCE = 1 * GiB  # a runner without rollout.memory_limit_mb (an allowance, not a measurement)

# vCPUs, GPUs, memory (GiB) of the AWS instance types cluster.yaml uses, from AWS's instance type pages
# (https://aws.amazon.com/ec2/instance-types/ : m6i, c6i general/compute optimized; g5 accelerated computing).
INSTANCE_TYPES = {
    "m6i.xlarge": (4, 0, 16),
    "c6i.4xlarge": (16, 0, 32),
    "g5.xlarge": (4, 1, 16),
    "g5.2xlarge": (8, 1, 32),
    "g5.4xlarge": (16, 1, 64),
}


@dataclass
class Node:
    """One node type: CPUs, GPUs, memory in bytes, custom resources, how many nodes at most."""

    name: str
    cpus: float
    gpus: float
    memory: float
    resources: dict[str, float] = field(default_factory=dict)
    max_nodes: int = 1

    def holds(self, demand: dict[str, float]) -> int:
        """How many actors of `demand` (resource -> amount) one node holds."""
        have = {"CPU": self.cpus, "GPU": self.gpus, **self.resources}
        counts = [math.floor(have.get(key, 0.0) / amount + 1e-9) for key, amount in demand.items() if amount > 0]
        return min(counts, default=10**9)


def cluster_nodes(path: str | Path) -> list[Node]:
    """The node types of a ``ray up`` cluster file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such cluster file (the repository's is cluster.yaml)")
    data = yaml.safe_load(path.read_text()) or {}
    nodes = []
    for name, spec in (data.get("available_node_types") or {}).items():
        resources = dict(spec.get("resources") or {})
        kind = (spec.get("node_config") or {}).get("InstanceType")
        table = INSTANCE_TYPES.get(kind)
        if table is None and not {"CPU", "memory"} <= resources.keys():
            raise ConfigError(f"{path}: node type {name}: instance type {kind!r} is not in firebreak.check."
                              f"INSTANCE_TYPES ({', '.join(INSTANCE_TYPES)}); add it there, or give the node type "
                              "resources: {CPU: n, GPU: n, memory: bytes}")
        cpus, gpus, memory = table or (0, 0, 0)
        cpus, gpus = resources.pop("CPU", cpus), resources.pop("GPU", gpus)
        memory = resources.pop("memory", memory * GiB)
        label = f"{name} ({kind})" if kind else name
        count = 1 if name == data.get("head_node_type") else int(spec.get("max_workers", 0))
        nodes.append(Node(label, cpus, gpus, memory, resources, count))
    if not nodes:
        raise ConfigError(f"{path}: no available_node_types")
    return nodes


def local_node(cfg: Config) -> Node:
    """This machine: its CPUs (``run.num_cpus`` when set, as the local Ray instance gets), its
    CUDA GPUs and its memory."""
    import psutil
    import torch

    cpus = cfg.run.num_cpus or os.cpu_count() or 1
    return Node("this machine", cpus, torch.cuda.device_count(), psutil.virtual_memory().total)


@dataclass
class Report:
    rows: list[tuple[str, str]]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def table(self) -> str:
        width = max(len(k) for k, _ in self.rows)
        lines = [f"{k:<{width}}  {v}" for k, v in self.rows]
        lines += [f"error: {p}" for p in self.problems] or ["ok: the config fits its nodes"]
        return "\n".join(lines)


def _gib(n: float) -> str:
    return f"{n / GiB:.1f} GiB"


def check(cfg: Config, nodes: list[Node]) -> Report:
    """Size `cfg` and place its actors on `nodes`; every misfit is a problem naming the key,
    the figure and the fix."""
    from .env import FuelBreakEnv

    env = FuelBreakEnv(**cfg.env.model_dump())
    obs_shape = env.observation_space.shape
    demo_steps = max(1, round(cfg.env.budget * obs_shape[1] * obs_shape[2]))  # breaks per episode, at most
    static = len(env.static_channels)

    def replay_bytes(capacity: int) -> int:  # as train.py lays the learner's replay out
        return replay_nbytes(capacity, obs_shape, static_channels=static,
                             static_slots=default_static_slots(capacity, demo_steps))

    replay = replay_bytes(cfg.learner.buffer_size)
    slot = (replay - replay_nbytes(cfg.learner.buffer_size, (0, 0, 0))) / cfg.learner.buffer_size  # without the trees
    demos = demonstrations_nbytes(cfg.demonstrations.episodes, demo_steps, obs_shape)
    learner_memory = replay + demos + LEARNER_OVERHEAD
    runner_memory = cfg.rollout.memory_limit_mb * 2**20 if cfg.rollout.memory_limit_mb else RUNNER_ALLOWANCE
    problems: list[str] = []
    rows = [("observation", f"{obs_shape[0]} x {obs_shape[1]} x {obs_shape[2]} float16 ({static} layers once per episode), "
                            f"{slot / 1e3:.1f} kB per replay slot"),
            ("replay", f"learner.buffer_size {cfg.learner.buffer_size:,} slots: {_gib(replay)}"),
            ("demonstrations", f"{cfg.demonstrations.episodes} episodes x {demo_steps} steps: {_gib(demos)}"),
            ("learner memory", f"{_gib(learner_memory)} (replay + demonstrations + {_gib(LEARNER_OVERHEAD)} process)"),
            ("runner memory", f"{cfg.rollout.runners + cfg.rollout.spare_runners} x {_gib(runner_memory)}"
                              + ("" if cfg.rollout.memory_limit_mb else " (allowance: rollout.memory_limit_mb unset)"))]

    any_gpu = any(n.gpus >= 1 for n in nodes)
    gpus = (1 if any_gpu else 0) if cfg.learner.num_gpus == "auto" else cfg.learner.num_gpus
    learner_demand = {"CPU": cfg.learner.num_cpus, "GPU": gpus, **cfg.learner.resources}
    runner_demand = {"CPU": cfg.rollout.num_cpus_per_runner, **cfg.rollout.runner_resources}
    describe = lambda d: ", ".join(f"{k} {v:g}" for k, v in d.items() if v) or "nothing"
    rows.append(("learner needs", describe(learner_demand) + f", {_gib(learner_memory)}"))
    if cfg.rollout.runners:
        rows.append(("each runner needs", describe(runner_demand) + f", {_gib(runner_memory)}"))

    homes = [n for n in nodes if n.holds(learner_demand) >= 1 and n.max_nodes]
    if not homes:
        problems.append(f"the learner needs {describe(learner_demand)} (learner.num_cpus, learner.num_gpus, "
                        f"learner.resources) and no node type has them ({', '.join(n.name for n in nodes)}): "
                        "change those keys or add such a node type")
        home = None
    else:  # the learner's node: the one with the most memory among those that can hold it
        home = max(homes, key=lambda n: n.memory)
        rows.append(("learner node", f"{home.name}: {home.cpus:g} CPU, {home.gpus:g} GPU, {_gib(home.memory)}"))

    runners = cfg.rollout.runners + cfg.rollout.spare_runners  # a hot spare holds what a runner holds
    runner_nodes = [n for n in nodes if n.holds(runner_demand) >= 1 and n.max_nodes and runners]
    capacity, beside_learner = 0, 0
    for node in runner_nodes:
        per_node = min(node.holds(runner_demand), int(node.memory * MEMORY_SHARE // runner_memory))
        if node is home:  # what the learner leaves of its node
            left = {k: v - learner_demand.get(k, 0.0) for k, v in {"CPU": node.cpus, **node.resources}.items()}
            rest = Node(node.name, left["CPU"], 0, node.memory * MEMORY_SHARE - learner_memory,
                        {k: v for k, v in left.items() if k != "CPU"})
            beside_learner = min(rest.holds(runner_demand), max(int(rest.memory // runner_memory), 0), runners)
            capacity += beside_learner + per_node * (node.max_nodes - 1)
        else:
            capacity += per_node * node.max_nodes
        if node.holds(runner_demand) > per_node:
            problems.append(f"rollout.memory_limit_mb {runner_memory / 2**20:g}: {node.holds(runner_demand)} runners "
                            f"fit the CPUs of {node.name} but only {per_node} fit {MEMORY_SHARE:.0%} of its "
                            f"{_gib(node.memory)}: set rollout.memory_limit_mb <= "
                            f"{node.memory * MEMORY_SHARE / node.holds(runner_demand) / 2**20:.0f}, or fewer CPUs "
                            "per node for runners (a node type with more memory per CPU)")
    if runners:
        rows.append(("runner capacity", f"{capacity} runners on {', '.join(n.name for n in runner_nodes) or 'none'}"))
        if capacity < runners:
            counted = f"rollout.runners {cfg.rollout.runners}" + (
                f" + rollout.spare_runners {cfg.rollout.spare_runners}" if cfg.rollout.spare_runners else "")
            problems.append(f"{counted} x ({describe(runner_demand)}, {_gib(runner_memory)}) need more "
                            f"than the nodes hold ({capacity}, with the learner placed): set rollout.runners <= "
                            f"{capacity - cfg.rollout.spare_runners}, lower rollout.num_cpus_per_runner, or add nodes (max_workers)")

    if home is not None:
        usable = home.memory * MEMORY_SHARE - beside_learner * runner_memory
        if learner_memory > usable:
            room = usable - demos - LEARNER_OVERHEAD
            fit, over = 0, cfg.learner.buffer_size  # the largest buffer_size whose replay fits the room
            while over - fit > 1:
                mid = (fit + over) // 2
                fit, over = (mid, over) if replay_bytes(mid) <= room else (fit, mid)
            problems.append(f"learner.buffer_size {cfg.learner.buffer_size} needs {_gib(replay)} of replay "
                            f"({_gib(learner_memory)} with demonstrations and the process); the learner node type "
                            f"{home.name} has {_gib(home.memory)} ({_gib(usable)} usable"
                            + (f" beside {beside_learner} runners" if beside_learner else "")
                            + f"): set learner.buffer_size <= {fit} or pick a larger node")
    return Report(rows, problems)
