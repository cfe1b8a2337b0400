"""Expert demonstrations: a privileged DPV expert plays the agent's env and records what the
learner needs."""

import numpy as np
import pytest

from firebreak.config import ConfigError, load_config
from firebreak.demonstrations import DEMO_SEED_BASE, collect_demonstrations, expert_fire_count, play_expert_episode
from firebreak.dqn.demonstrations import DemonstrationBuffer
from firebreak.env import FuelBreakEnv
from firebreak.landscape import synthetic_landscape
from tests.rollout_fixtures import ray_local  # noqa: F401

ENV = {"landscapes": [synthetic_landscape((24, 24), 5, kind="grass_shrub")], "budget": 0.03, "n_scenarios": 4}


@pytest.fixture(scope="module")
def demo():
    return play_expert_episode(ENV, 0, expert_scenarios=8)


def test_the_expert_plays_greedily_on_its_own_values(demo):
    a = demo.arrays
    steps = len(a["actions"])
    assert steps == FuelBreakEnv(**ENV).reset(seed=0)[1]["budget_cells"]
    assert a["obs"].shape == (steps + 1, *FuelBreakEnv(**ENV).observation_space.shape) and a["obs"].dtype == np.float16
    assert a["values"].shape == (steps, 24 * 24) and a["masks"].shape == (steps + 1, 24 * 24) and a["terminated"]
    assert len(set(a["actions"].tolist())) == steps  # never the same cell twice
    for t, action in enumerate(a["actions"]):
        assert a["masks"][t, action] and not a["masks"][t + 1, action]
        assert a["values"][t, action] == np.where(a["masks"][t], a["values"][t], -np.inf).max()
    assert (a["values"] >= 0).all() and a["values"].max() > 0


def test_the_agents_side_is_an_ordinary_episode(demo):
    a = demo.arrays
    env = FuelBreakEnv(**ENV)
    obs, _ = env.reset(seed=DEMO_SEED_BASE)
    np.testing.assert_array_equal(a["obs"][0], obs.astype(np.float16))
    for action in a["actions"]:
        *_, info = env.step(int(action))
    # the recorded rewards are the agent env's: they add up to what the breaks saved on its fires
    assert a["rewards"].sum() == pytest.approx(info["baseline_burned_fraction"] - info["burned_fraction"])
    assert demo.burned_fraction == pytest.approx(info["burned_fraction"])
    assert 0 < demo.expert_burned_fraction < 1


def test_the_expert_plans_on_fires_of_its_own():
    own = play_expert_episode(ENV, 0, expert_scenarios=0).arrays
    env = FuelBreakEnv(**ENV)
    env.reset(seed=DEMO_SEED_BASE)
    burnable = env.landscape.burnable.sum()
    np.testing.assert_allclose(own["values"][0], env.downstream_protection.ravel() / burnable, rtol=1e-6)
    privileged = play_expert_episode(ENV, 0, expert_scenarios=8).arrays
    assert not np.allclose(privileged["values"][0], own["values"][0])


def test_a_relative_expert_plans_on_k_times_the_agents_fires_of_each_episode(demo):
    assert expert_fire_count("4x", 64) == 256 and expert_fire_count(256, 64) == 256 and expert_fire_count(0, 64) == 0
    relative = play_expert_episode(ENV, 0, expert_scenarios="2x").arrays  # the agent has 4 fires
    np.testing.assert_array_equal(relative["values"], demo.arrays["values"])  # = 8 fires
    for bad in ("4", "x", "0x", "1.5x", -3):
        with pytest.raises(ValueError, match="'<k>x' for k times the agent's"):
            expert_fire_count(bad, 64)
    with pytest.raises(ConfigError, match="demonstrations.expert_scenarios"):
        load_config(None, ["demonstrations.expert_scenarios=lots"])
    with pytest.raises(ConfigError, match="env.n_scenarios"):
        load_config(None, ["env.n_scenarios=[64, 0]"])
    assert load_config(None, ["env.n_scenarios=[64, 256]"]).env.n_scenarios == [64, 256]


def test_collected_demonstrations_fill_a_buffer(demo):
    demos = list(collect_demonstrations(ENV, 2, expert_scenarios=8, use_ray=False, progress=False))  # in process, even with Ray up
    assert len(demos) == 2
    np.testing.assert_array_equal(demos[0].arrays["actions"], demo.arrays["actions"])  # deterministic
    buffer = DemonstrationBuffer(gamma=0.99, n_step=3)
    for d in demos:
        buffer.add_episode(**d.arrays)
    assert buffer.episodes == 2 and len(buffer) == sum(len(d.arrays["actions"]) for d in demos)


def test_an_episodes_draw_is_the_one_reset_plays():
    kwargs = {"landscapes": ["synthetic:24", ENV["landscapes"][0]], "budget": 0.03, "n_scenarios": [2, 5, 9]}
    spare, env = FuelBreakEnv(**kwargs), FuelBreakEnv(**kwargs)
    for seed in (7, 3, 8, 1, 0):  # out of order: a draw depends on its seed only
        landscape, fires = spare.draw_episode(seed)
        env.reset(seed=seed)
        assert fires == env.n_scenarios == len(env.simulator.scenarios)
        np.testing.assert_array_equal(landscape.fuel_model, env.landscape.fuel_model)


def test_an_expert_episodes_memory_estimate_bounds_what_it_holds():
    import tracemalloc

    from firebreak.demonstrations import WORKER_BYTES, expert_episode_bytes
    from firebreak.landscape import sample_tiles

    env = {"landscapes": sample_tiles(64, "train")[:1], "budget": 0.005, "n_scenarios": [16, 32]}
    play_expert_episode(env, 0, expert_scenarios="2x")  # compile first: numba's allocations are not the episode's
    for index in (0, 1, 2):
        estimate = expert_episode_bytes(FuelBreakEnv(**env), index, "2x") - WORKER_BYTES
        tracemalloc.start()
        play_expert_episode(env, index, expert_scenarios="2x")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak <= estimate <= 1.6 * peak, (index, peak, estimate)


def test_expert_tasks_larger_than_every_node_still_run(monkeypatch, ray_local):  # noqa: F811
    import firebreak.demonstrations

    monkeypatch.setattr(firebreak.demonstrations, "BYTES_PER_FIRE_CELL", 2**40)  # petabytes per episode
    refs = list(collect_demonstrations(ENV, 2, expert_scenarios=8, progress=False))  # Ray tasks: Ray is up
    import ray

    played = ray.get(refs, timeout=120)  # capped at the largest node's memory: they run, one at a time
    assert [len(d.arrays["actions"]) for d in played] == [len(play_expert_episode(ENV, i, 8).arrays["actions"])
                                                          for i in (0, 1)]
