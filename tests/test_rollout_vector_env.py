"""RayVectorEnv: step-for-step equal to SyncVectorEnv; fits a small instance; a lost sub-env's step is truncated and flagged."""

import functools
import time

import numpy as np
import pytest
from gymnasium.vector import SyncVectorEnv

from firebreak.rollout import FaultyEnvFactory, RayVectorEnv, RolloutError, read_injections
from tests.rollout_fixtures import counter_env, ray_local  # noqa: F401

pytestmark = [pytest.mark.timeout(90), pytest.mark.usefixtures("ray_local")]

FNS = [
    functools.partial(counter_env, length=4),
    functools.partial(counter_env, length=3),
    functools.partial(counter_env, length=6, truncate_at=2),
]


def _assert_infos_equal(a, b):
    """``a`` (RayVectorEnv's) is ``b`` (SyncVectorEnv's) plus an all-False ``lost`` array."""
    a = dict(a)
    np.testing.assert_array_equal(a.pop("lost"), np.zeros(3, bool))
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_equals_sync_vector_env_step_for_step():
    sync = SyncVectorEnv(FNS)
    ray_env = RayVectorEnv(FNS, step_timeout_s=10, num_cpus=0.5)
    try:
        assert ray_env.single_observation_space == sync.single_observation_space
        assert ray_env.action_space == sync.action_space and ray_env.observation_space == sync.observation_space
        o_sync, i_sync = sync.reset(seed=11)
        o_ray, i_ray = ray_env.reset(seed=11)
        np.testing.assert_array_equal(o_ray, o_sync)
        _assert_infos_equal(i_ray, i_sync)
        rng = np.random.default_rng(0)
        done_count = 0
        for _ in range(14):
            actions = rng.integers(4, size=3)
            got_all, want_all = ray_env.step(actions), sync.step(actions)
            done_count += int(np.sum(want_all[2] | want_all[3]))
            for got, want in zip(got_all, want_all):
                if isinstance(want, dict):
                    _assert_infos_equal(got, want)
                else:
                    np.testing.assert_array_equal(got, want)
                    assert np.asarray(got).dtype == np.asarray(want).dtype
        assert done_count >= 10  # several autoresets of every sub-env, terminations and truncations
        np.testing.assert_array_equal(ray_env.action_masks(), np.stack(sync.call("action_masks")))
        assert ray_env.get_attr("length") == sync.get_attr("length")
        assert ray_env.metrics.as_dict()["hangs"] == 0 and not ray_env.lost.any()
    finally:
        ray_env.close()
        sync.close()


@pytest.mark.parametrize("kind, counter", [("hang", "hangs"), ("sigkill", "crashes"), ("raise", "env_errors")])
def test_lost_step_is_truncated_flagged_and_then_reset(tmp_path, kind, counter):
    faulty = FaultyEnvFactory(functools.partial(counter_env, length=50), {"schedule": [(3, kind)], "log_dir": str(tmp_path)})
    env = RayVectorEnv([functools.partial(counter_env, length=50), faulty], step_timeout_s=1.5 if kind == "hang" else 8.0, num_cpus=0.5)
    try:
        obs, infos = env.reset(seed=0)
        np.testing.assert_array_equal(infos["lost"], [False, False])
        for step in range(7):
            before = obs.copy()
            obs, rewards, terminated, truncated, infos = env.step(np.array([1, 2]))
            assert infos["lost"].dtype == bool and infos["lost"].shape == (2,)
            if step == 3:  # sub-env 1's 4th step is lost: its episode ends there, truncated
                np.testing.assert_array_equal(infos["lost"], [False, True])
                np.testing.assert_array_equal(truncated, [False, True])
                assert not terminated.any() and rewards[1] == 0
                np.testing.assert_array_equal(obs[1], before[1])  # its last real observation, not a reset one
                assert "t" not in infos or not infos["_t"][1]  # no made-up info for the lost slot
                assert obs[0, 0] == 4  # the healthy sub-env stepped on
            elif step == 4:  # NEXT_STEP autoreset of the truncated slot: a fresh episode
                np.testing.assert_array_equal(infos["lost"], [False, False])
                assert obs[1, 0] == 0 and obs[1, 3] == 0 and rewards[1] == 0  # a fresh env, just reset
                assert not truncated[1] and not terminated[1]
            else:
                np.testing.assert_array_equal(infos["lost"], [False, False])
                assert not truncated.any()
        assert obs[1, 0] == 2  # the restarted sub-env stepped on from its reset
        stats = env.metrics.as_dict()
        assert stats[counter] == 1 and stats["lost_steps"] == 1 and stats["restarts"] == 1
        assert [i.kind for i in read_injections(str(tmp_path))] == [kind]
    finally:
        env.close()


def test_eight_sub_envs_start_on_the_two_cpu_instance():
    start = time.monotonic()
    env = RayVectorEnv([functools.partial(counter_env, length=3)] * 8, step_timeout_s=20)
    try:
        assert 0 < env.num_cpus <= 2 / 8  # what the 2-CPU instance can hold (less when other actors hold CPUs)
        obs, _ = env.reset(seed=0)
        obs, rewards, *_ = env.step(np.full(8, 3))
        np.testing.assert_array_equal(rewards, np.full(8, 3.0))
        assert time.monotonic() - start < 55  # with 1 CPU per sub-env it waited 60 s and failed
    finally:
        env.close()


def test_explicit_num_cpus_that_cannot_fit_fails_at_once():
    start = time.monotonic()
    with pytest.raises(RolloutError, match=r"num_cpus=1 per sub-env x 8 sub-envs needs 8 CPUs, the Ray instance has 2"):
        RayVectorEnv([functools.partial(counter_env, length=3)] * 8, num_cpus=1)
    assert time.monotonic() - start < 5


def test_construction_failure_raises():
    with pytest.raises(RolloutError, match="deterministic construction failure"):
        RayVectorEnv([functools.partial(counter_env, fail=True)], restart_timeout_s=20, num_cpus=0.5)
