"""RayVectorEnv: step-for-step equal to SyncVectorEnv; hung or crashed sub-envs are flagged lost."""

import functools

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
def test_lost_sub_env_is_restarted_reset_and_flagged(tmp_path, kind, counter):
    faulty = FaultyEnvFactory(functools.partial(counter_env, length=50), {"schedule": [(3, kind)], "log_dir": str(tmp_path)})
    env = RayVectorEnv([functools.partial(counter_env, length=50), faulty], step_timeout_s=1.5 if kind == "hang" else 8.0, num_cpus=0.5)
    try:
        obs, _ = env.reset(seed=0)
        for step in range(6):
            obs, rewards, terminated, truncated, infos = env.step(np.array([1, 2]))
            if step == 3:
                np.testing.assert_array_equal(infos["lost"], [False, True])
                assert obs[1, 0] == 0 and obs[1, 3] == 0  # a fresh env, just reset
                assert rewards[1] == 0 and not terminated[1] and not truncated[1]
                assert obs[0, 0] == 4  # the healthy sub-env just stepped on
            else:
                assert "lost" not in infos
        assert obs[1, 0] == 2  # the restarted sub-env stepped on from its reset
        stats = env.metrics.as_dict()
        assert stats[counter] == 1 and stats["lost_steps"] == 1 and stats["restarts"] == 1
        assert [i.kind for i in read_injections(str(tmp_path))] == [kind]
    finally:
        env.close()


def test_construction_failure_raises():
    with pytest.raises(RolloutError, match="deterministic construction failure"):
        RayVectorEnv([functools.partial(counter_env, fail=True)], restart_timeout_s=20, num_cpus=0.5)
