"""Expert demonstrations for warm-starting the DQN (after DQfD, Hester et al. 2018).

The expert is the downstream-protection heuristic (DPV, `firebreak.centrality`) planning on *more
fires than the agent sees*: the agent's env draws its usual `n_scenarios` planning fires, while
the expert ranks cells on `expert_scenarios` further fires of the same season on the same
landscape (a privileged teacher, as in "learning by cheating"). Both envs receive every break,
so they stay in the same state; the agent's observations, masks and rewards are recorded, with
the expert's value of every cell: its DPV (burned cells a break there would protect, per fire)
as a share of the burnable cells, the unit of the env's rewards.

Why a privileged expert: a heuristic greedy on the agent's own planning fires fits those fires
(with 16 of them DPV scores no better than random on new fires, with 64 it is the best
baseline), and a DQN that imitates it inherits that. DPV on 256 fires burns 0.875 x what DPV on
64 burns under fires neither saw (12 training tiles, docs/experiments.md); the agent learns to
predict that better ranking from what it sees.

    for episode in collect_demonstrations(env_kwargs, 32, expert_scenarios=256):
        learner.add_demonstration(**episode.arrays)

With Ray initialised, episodes run as Ray tasks (retried by Ray if a worker dies); otherwise in
this process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
from tqdm import tqdm

from .env import FuelBreakEnv

#: Episode seeds of demonstrations (the agent's env) start here; the expert's own fires use
#: EXPERT_FIRE_SEED_BASE + the same index. Both stay below 2**31, the training seed range,
#: far from the evaluation seeds (2**40 and up), and apart from the runners' seeds.
DEMO_SEED_BASE = 2**30
EXPERT_FIRE_SEED_BASE = 2**30 + 2**29


@dataclass
class Demonstration:
    """One expert episode in the agent's env. `arrays` are `DQN.add_demonstration`'s
    arguments: obs (T + 1, C, H, W) float16, masks (T + 1, H*W) bool, actions (T,) int64,
    rewards (T,) float64 and values (T, H*W) float32 (both unscaled: shares of burnable cells),
    terminated."""

    arrays: dict[str, Any]
    burned_fraction: float  # under the agent's planning fires, at the end
    expert_burned_fraction: float  # under the expert's fires, at the end


#: Peak bytes per fire and cell of an episode's fires (`IncrementalSimulator`: arrival times,
#: fastest-path trees, move costs, fire behaviour; DPV's work arrays): 300 held and 365 at a
#: step's peak (tracemalloc, 64 x 64 tiles, 16-128 fires), plus a margin. A 1,024-fire episode
#: with its teacher on 4,096 fires reserves 8.5 GB (its process reached 6.9 GB RSS).
BYTES_PER_FIRE_CELL = 380
#: The task's process itself (Python, numpy, numba's compiled code).
WORKER_BYTES = 2**29


def expert_episode_bytes(env: FuelBreakEnv, index: int, expert_scenarios: int | str = 256) -> int:
    """Peak memory of `play_expert_episode` for episode `index` of `env`'s kwargs: the agent's
    fires and the expert's on that episode's landscape, plus the process. Draws the episode on
    `env` (a spare one: it moves to that episode, and nothing is simulated)."""
    landscape, fires = env.draw_episode(DEMO_SEED_BASE + index)
    fires += expert_fire_count(expert_scenarios, fires)
    return WORKER_BYTES + fires * landscape.fuel_model.size * BYTES_PER_FIRE_CELL


def expert_fire_count(expert_scenarios: int | str, agent_fires: int) -> int:
    """Fires the expert plans on: `expert_scenarios` itself (0: the agent's own fires, returned
    as 0), or for ``"<k>x"`` k times the agent's `agent_fires` of that episode (with
    ``env.n_scenarios`` a list, the teacher keeps its edge at every count)."""
    if isinstance(expert_scenarios, str):
        k = expert_scenarios[:-1]
        if not (expert_scenarios.endswith("x") and k.isdigit() and int(k) >= 1):
            raise ValueError(f"expert_scenarios {expert_scenarios!r}: give a count of fires (e.g. 256), "
                             "0 for the agent's own, or '<k>x' for k times the agent's (e.g. '4x')")
        return int(k) * int(agent_fires)
    if int(expert_scenarios) != expert_scenarios or expert_scenarios < 0:
        raise ValueError(f"expert_scenarios {expert_scenarios!r}: give a count of fires (e.g. 256), "
                         "0 for the agent's own, or '<k>x' for k times the agent's (e.g. '4x')")
    return int(expert_scenarios)


def play_expert_episode(env_kwargs: dict, index: int, expert_scenarios: int | str = 256) -> Demonstration:
    """Episode `index` of the agent's env (``reset(seed=DEMO_SEED_BASE + index)``, so episodes
    cycle through its landscapes) played greedily by DPV on fires of its own
    (`expert_fire_count`); ``expert_scenarios=0`` lets the expert plan on the agent's fires."""
    env = FuelBreakEnv(**env_kwargs)
    obs, _ = env.reset(seed=DEMO_SEED_BASE + index)
    expert = env
    expert_fires = expert_fire_count(expert_scenarios, env.n_scenarios)
    if expert_fires:
        expert = FuelBreakEnv([env.landscape], budget=env.budget, n_scenarios=expert_fires, season=env.season)
        expert.reset(seed=EXPERT_FIRE_SEED_BASE + index)
    burnable = max(int(env.landscape.burnable.sum()), 1)
    observations, masks, actions, rewards, values = [obs], [env.action_masks()], [], [], []
    done = False
    while not done:
        value = expert.downstream_protection.ravel() / burnable
        action = int(np.where(env.action_masks(), value, -np.inf).argmax())
        obs, reward, terminated, truncated, info = env.step(action)
        if expert is not env:
            expert.step(action)
        observations.append(obs)
        masks.append(env.action_masks())
        actions.append(action)
        rewards.append(reward)
        values.append(value.astype(np.float32))
        done = terminated or truncated
    arrays = {"obs": np.asarray(observations, np.float16), "masks": np.asarray(masks), "actions": np.asarray(actions),
              "rewards": np.asarray(rewards), "values": np.asarray(values), "terminated": bool(terminated)}
    expert_burned = expert.simulator.burned.sum(axis=(1, 2)).mean() / burnable
    return Demonstration(arrays, float(info["burned_fraction"]), float(expert_burned))


def collect_demonstrations(env_kwargs: dict, episodes: int, *, expert_scenarios: int | str = 256, num_cpus: float = 1.0,
                           use_ray: bool | None = None, progress: bool = True) -> Iterator[Any]:
    """Play episodes 0..episodes-1 with the expert; yields each `Demonstration` as it finishes
    (in completion order). With Ray (`use_ray`; default: when Ray is initialised) it runs them
    as Ray tasks of `num_cpus` each, reserving their memory (`expert_episode_bytes`), and yields
    their ObjectRefs instead, so the caller can hand
    them to an actor without fetching the arrays into this process."""
    import ray

    if use_ray is None:
        use_ray = ray.is_initialized()
    bar = tqdm(total=episodes, desc=f"demonstrations (DPV on {expert_scenarios or 'the agent'} fires)",
               unit="episode", disable=not progress, dynamic_ncols=True)
    try:
        if not use_ray:
            for index in range(episodes):
                yield play_expert_episode(env_kwargs, index, expert_scenarios)
                bar.update()
            return
        # Each task reserves the memory it will hold, so that Ray runs no more at once than a
        # node holds (unreserved, 1,024-fire episodes with 4x teachers ran 4 at a time on a
        # 23 GB node and Ray's memory monitor killed and retried 8-9 of them per run). Capped at
        # the largest node's memory resource, where it then runs alone.
        largest = max((node["Resources"].get("memory", 0) for node in ray.nodes() if node["Alive"]), default=0)
        spare = FuelBreakEnv(**env_kwargs)
        task = ray.remote(play_expert_episode)
        pending = []
        for index in range(episodes):
            memory = min(expert_episode_bytes(spare, index, expert_scenarios), int(largest))
            options = {"num_cpus": num_cpus, **({"memory": memory} if memory else {})}
            pending.append(task.options(**options).remote(env_kwargs, index, expert_scenarios))
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield done[0]
            bar.update()
    finally:
        bar.close()
