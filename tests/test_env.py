"""FuelBreakEnv: gymnasium contract, rewards, masks, determinism, errors."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from firebreak.env import FIRE_COUNT_LAYER, OBSERVATION_LAYERS, FuelBreakEnv, InvalidActionError
from firebreak.fire import simulate_many
from firebreak.landscape import LandscapeError, sample_tiles, synthetic_landscape


@pytest.fixture(scope="module")
def tiles():
    return sample_tiles(64, "train")[:3]


def _env(landscapes, **kwargs):
    return FuelBreakEnv(landscapes, **{"n_scenarios": 6, "budget": 0.01, **kwargs})


def test_check_env_is_clean(tiles):
    # check_env steps with unmasked random actions: agents that cannot mask use the penalty
    # mode; the default mode is checked on a landscape where every cell is treatable.
    all_burnable = synthetic_landscape((64, 64), seed=4, road_count=0, water_fraction=0, rock_fraction=0)
    assert all_burnable.burnable.all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any complaint of the checker fails the test
        check_env(_env(tiles + ["synthetic:64"], invalid_action="penalty"), skip_render_check=True)
        check_env(_env([all_burnable]), skip_render_check=True)


def test_registered_with_gymnasium():
    env = gym.make("firebreak.env:firebreak/FuelBreak-v0", landscapes="synthetic:32", n_scenarios=2)
    obs, _ = env.reset(seed=3)
    assert obs.shape == (len(OBSERVATION_LAYERS), 32, 32)


def _greedy_episode(env, seed):
    obs, info = env.reset(seed=seed)
    observations, rewards, infos, done = [obs], [], [info], False
    while not done:
        action = int(np.where(env.action_masks(), env.burn_probability.ravel(), -1).argmax())
        obs, reward, done, truncated, info = env.step(action)
        assert not truncated
        observations.append(obs), rewards.append(reward), infos.append(info)
    return observations, rewards, infos


def test_rewards_telescope_to_the_final_reduction(tiles):
    env = _env(tiles[:1] + ["synthetic:64:grass_shrub"], budget=0.02)
    for seed in (0, 1):  # a real tile, then a synthetic one
        _, rewards, infos = _greedy_episode(env, seed)
        first, last = infos[0], infos[-1]
        assert last["baseline_burned_fraction"] == first["burned_fraction"] > 0.01
        np.testing.assert_allclose(sum(rewards), last["baseline_burned_fraction"] - last["burned_fraction"], atol=1e-12)
        assert sum(rewards) > 0 and all(r >= -1e-12 for r in rewards)  # breaks only ever remove fire
        assert len(rewards) == last["budget_cells"] == last["breaks_placed"] == round(0.02 * 64 * 64)
        assert 0 < last["relative_reduction"] < 1 and last["sim_seconds"] > 0


def test_env_fires_equal_a_full_simulation_with_the_final_breaks(tiles):
    env = _env(tiles[:1], budget=0.02)
    _greedy_episode(env, 5)
    full = simulate_many(env.landscape, env.simulator.scenarios, env.simulator.breaks)
    np.testing.assert_array_equal(env.simulator.burned, full.burned)


def test_masks_and_dynamic_layers_after_every_step(tiles):
    env = _env(tiles[:1], budget=0.01)
    obs, _ = env.reset(seed=0)
    burnable = env.landscape.burnable.ravel()
    layer = {name: i for i, name in enumerate(OBSERVATION_LAYERS)}
    rng = np.random.default_rng(0)
    done, treated = False, []
    while not done:
        mask = env.action_masks()
        expected = burnable.copy()
        expected[treated] = False
        assert np.array_equal(mask, expected)
        np.testing.assert_allclose(obs[layer["burn_probability"]], env.burn_probability)
        dpv = env.downstream_protection
        np.testing.assert_allclose(obs[layer["downstream_protection"]], np.log1p(dpv) / np.log1p(dpv.size), rtol=1e-6)
        assert np.array_equal(obs[layer["treatable"]].ravel() == 1, mask)
        action = int(rng.choice(np.flatnonzero(mask)))
        obs, _, done, _, _ = env.step(action)
        treated.append(action)
        assert obs[layer["breaks"]].ravel()[action] == 1 and not env.action_masks()[action]
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)


def test_downstream_protection_counts_the_cells_behind_each_cell(tiles):
    env = _env(tiles[:1], n_scenarios=1)
    env.reset(seed=3)
    dpv = env.downstream_protection
    burned = env.simulator.burned[0].copy()
    (ignition,) = {tuple(cell) for cell in env.simulator.scenarios[0].ignitions}
    assert dpv[ignition] == 0  # a break never stops a fire where it starts
    others = burned.copy()
    others[ignition] = False
    assert (dpv[others] >= 1).all() and (dpv[~burned] == 0).all()  # a burned cell protects at least itself
    # cells off a break's subtree keep their fastest path: a break saves at most its DPV, here > 0
    best = int(np.where(env.action_masks(), dpv.ravel(), -np.inf).argmax())
    env.step(best)
    saved = burned.sum() - env.simulator.burned[0].sum()
    assert 0 < saved <= dpv.ravel()[best]


def test_same_seed_same_episode(tiles):
    a = _greedy_episode(_env(tiles + ["synthetic:64"]), 1)
    b = _greedy_episode(_env(tiles + ["synthetic:64"]), 1)
    c = _greedy_episode(_env(tiles + ["synthetic:64"]), 2)
    for x, y in zip(a[0], b[0]):
        np.testing.assert_array_equal(x, y)
    assert a[1] == b[1]
    assert not np.array_equal(a[0][0], c[0][0])


def test_episodes_cycle_through_the_landscapes(tiles):
    env = _env(tiles)
    env.reset(seed=0)
    seen = [env.landscape]
    for _ in range(3):
        env.reset()
        seen.append(env.landscape)
    assert seen[0] is tiles[0] and seen[1] is tiles[1] and seen[2] is tiles[2] and seen[3] is tiles[0]


def test_invalid_actions_raise_clearly_or_cost_a_penalty():
    landscape = synthetic_landscape((32, 32), seed=2, road_count=1)
    road = int(np.flatnonzero(landscape.fuel_model.ravel() == 91)[0])
    env = _env([landscape])
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match=r"is not burnable \(fuel code 91\).*action_masks"):
        env.step(road)
    with pytest.raises(InvalidActionError, match=r"outside Discrete\(1024\)"):
        env.step(5000)
    cell = int(np.flatnonzero(env.action_masks())[0])
    env.step(cell)
    with pytest.raises(InvalidActionError, match="already a break"):
        env.step(cell)

    lenient = _env([landscape], invalid_action="penalty", invalid_penalty=0.5, budget=0.01)
    lenient.reset(seed=0)
    breaks_before = lenient.simulator.breaks.copy()
    _, reward, _, _, info = lenient.step(road)
    assert reward == -0.5 and np.array_equal(lenient.simulator.breaks, breaks_before)
    steps, done = 1, False
    while not done:
        done = lenient.step(road)[2]
        steps += 1
    assert steps == info["budget_cells"], "wasted breaks still spend the budget"


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"budget": 0.0}, r"budget 0\.0: give the share of cells"),
        ({"budget": 5}, r"budget 5: give the share"),
        ({"n_scenarios": 0}, r"n_scenarios 0"),
        ({"n_scenarios": [16, 0]}, r"n_scenarios \[16, 0\]: .* or a list of them"),
        ({"n_scenarios": []}, r"n_scenarios \[\]"),
        ({"invalid_action": "ignore"}, r"invalid_action 'ignore'"),
        ({"landscapes": "synthetic:64:forest"}, r"'synthetic:64:forest' should be"),
        ({"landscapes": ["synthetic:64", "synthetic:32"]}, r"several shapes"),
        ({"landscapes": "/no/such/place"}, r"not a landscape source"),
    ],
)
def test_bad_configuration(kwargs, message):
    with pytest.raises((ValueError, LandscapeError), match=message):
        FuelBreakEnv(**{"landscapes": "synthetic:64", **kwargs})


def test_a_list_of_fire_counts_draws_one_per_episode():
    env = FuelBreakEnv("synthetic:24", budget=0.01, n_scenarios=[2, 5, 9])
    drawn = []
    for seed in range(12):
        env.reset(seed=seed)
        drawn.append(env.n_scenarios)
        assert len(env.simulator.scenarios) == env.n_scenarios
    assert set(drawn) == {2, 5, 9} and env.fire_counts == (2, 5, 9)
    again = FuelBreakEnv("synthetic:24", budget=0.01, n_scenarios=[2, 5, 9])
    assert [again.reset(seed=s) and again.n_scenarios for s in range(12)] == drawn  # seeded
    single = FuelBreakEnv("synthetic:24", budget=0.01, n_scenarios=[5])
    plain = FuelBreakEnv("synthetic:24", budget=0.01, n_scenarios=5)
    np.testing.assert_array_equal(single.reset(seed=3)[0], plain.reset(seed=3)[0])  # one count: the old episodes


def test_step_before_reset_and_after_the_end():
    env = _env(["synthetic:32"], budget=0.0005)  # one break
    with pytest.raises(gym.error.ResetNeeded):
        env.step(0)
    env.reset(seed=0)
    env.step(int(np.flatnonzero(env.action_masks())[0]))
    with pytest.raises(gym.error.ResetNeeded, match="budget spent"):
        env.step(int(np.flatnonzero(env.action_masks())[0]))


def test_the_fire_count_layer_tells_the_episodes_count_and_any_env_can_serve_it():
    counted = FuelBreakEnv("synthetic:24", budget=0.01, n_scenarios=[2, 64], fire_count_layer=True)
    plain = FuelBreakEnv("synthetic:24", budget=0.01, n_scenarios=[2, 64])
    assert counted.observation_layers == OBSERVATION_LAYERS + (FIRE_COUNT_LAYER,)
    assert counted.observation_space.shape == (len(OBSERVATION_LAYERS) + 1, 24, 24)
    assert counted.static_channels == plain.static_channels + (len(OBSERVATION_LAYERS),)
    seen = set()
    for seed in range(6):
        obs, _ = counted.reset(seed=seed)
        plain_obs, _ = plain.reset(seed=seed)
        seen.add(counted.n_scenarios)
        expected = np.log(counted.n_scenarios) / np.log(4096)  # 64 fires: 0.5
        np.testing.assert_allclose(obs[-1], expected, rtol=1e-6)
        np.testing.assert_array_equal(obs[:-1], plain_obs)  # the other layers are unchanged
        obs, *_ = counted.step(int(np.flatnonzero(counted.action_masks())[0]))
        np.testing.assert_allclose(obs[-1], expected, rtol=1e-6)  # static over the episode
        plain.step(int(np.flatnonzero(plain.action_masks())[0]))
        # An env without the layer computes it for a checkpoint that reads it, in its order.
        np.testing.assert_array_equal(plain.observation(counted.observation_layers), obs)
        np.testing.assert_array_equal(counted.observation(OBSERVATION_LAYERS), plain.observation())
    assert seen == {2, 64}
    np.testing.assert_allclose(counted.observation([FIRE_COUNT_LAYER, "slope"])[1], obs[0])
    with pytest.raises(ValueError, match="'wind_speed'.*firebreak version"):
        plain.observation(["slope", "wind_speed"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(FuelBreakEnv("synthetic:24", budget=0.01, n_scenarios=[2, 3], fire_count_layer=True,
                               invalid_action="penalty"), skip_render_check=True)
