"""EnvRunner: fragment layout, autoreset inside the runner, masks, episode stats, weights, heartbeat."""

import time

import numpy as np
import pytest
import ray

from firebreak.rollout import FaultyEnvFactory, Fragment, RandomPolicy, create_runner
from firebreak.rollout.fragment import join_transitions
from tests.rollout_fixtures import ConstantPolicy, PlainCounterEnv, counter_env, ray_local  # noqa: F401

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("ray_local")]


def test_fragment_transitions_and_autoreset():
    runner = create_runner(counter_env, RandomPolicy(4), envs_per_runner=2, fragment_length=12, seed=7, num_cpus=0.5)
    try:
        first, second = ray.get([runner.sample.remote(None) for _ in range(2)])
    finally:
        ray.kill(runner)
    assert isinstance(first, Fragment)
    records, (first, second) = (first, second), (first.arrays(), second.arrays())
    assert first.obs.shape == (2, 12, 4) and first.next_obs.shape == (2, 12, 4)
    assert first.obs.dtype == np.float32  # CounterEnv's Box(-1e9, 1e9) does not fit float16: kept as it is
    assert first.actions.shape == first.rewards.shape == first.terminated.shape == (2, 12)
    # only the next obs of episode ends and of the last step travel
    assert len(first.final_obs) == int((first.terminated | first.truncated)[:, :-1].sum()) + 2
    assert records[0].num_steps == 24 and records[0].env_seconds > 0 and records[0].sample_seconds >= records[0].env_seconds
    for frag in (first, second):
        # the policy respected the masks the env gave before each step: action != t % 4
        assert np.all(frag.actions != frag.obs[..., 0] % 4)
        np.testing.assert_array_equal(frag.next_obs[..., 1], frag.actions)
        np.testing.assert_array_equal(frag.rewards, frag.actions)
        done = frag.terminated | frag.truncated
        # episodes of length 5: the final obs is the true one (t == 5), never the reset obs
        assert np.all(frag.next_obs[..., 0][done] == 5)
        np.testing.assert_array_equal(done, frag.next_obs[..., 0] == 5)
        # after a done, the next obs is a reset (t == 0); otherwise it continues
        np.testing.assert_array_equal(frag.obs[:, 1:][done[:, :-1]][:, 0], 0)
        np.testing.assert_array_equal(frag.obs[:, 1:][~done[:, :-1]], frag.next_obs[:, :-1][~done[:, :-1]])
        # next mask forbids (t % 4) of the next obs (the final obs for finished episodes)
        forbidden = np.argmin(frag.next_masks, axis=-1)
        np.testing.assert_array_equal(forbidden, frag.next_obs[..., 0] % 4)
    # fragments continue where the previous one stopped
    np.testing.assert_array_equal(second.obs[:, 0, 3], first.next_obs[:, -1, 3])
    episodes = records[0].episodes + records[1].episodes
    assert len(episodes) == int(first.terminated.sum() + second.terminated.sum())
    ep = records[0].episodes[0]
    assert ep.length == 5 and ep.terminated and ep.info == {"t": 5}  # the array item "vec" is not a scalar
    assert ep.return_ == pytest.approx(first.rewards[ep.env_index, ep.step - 4 : ep.step + 1].sum())


def test_no_masks_and_weights_reach_the_policy():
    plain = FaultyEnvFactory(PlainCounterEnv, {"p_slow": 0.0})  # a wrapper must not invent masks
    runner = create_runner(plain, ConstantPolicy(1), envs_per_runner=1, fragment_length=4, seed=0, num_cpus=0.5)
    try:
        before = ray.get(runner.sample.remote(None))
        after = ray.get(runner.sample.remote(ray.put(3)))
        kept = ray.get(runner.sample.remote(None))
    finally:
        ray.kill(runner)
    before, after, kept = before.arrays(), after.arrays(), kept.arrays()
    assert before.next_masks is None
    assert np.all(before.actions == 1) and np.all(after.actions == 3) and np.all(kept.actions == 3)


def test_heartbeat_answers_during_a_long_sample(tmp_path):
    slow = FaultyEnvFactory(counter_env, {"p_slow": 1.0, "slow_s": 0.1})
    runner = create_runner(slow, RandomPolicy(4), envs_per_runner=1, fragment_length=20, seed=0, num_cpus=0.5)
    try:
        ray.get(runner.__ray_ready__.remote())
        ref = runner.sample.remote(None)
        time.sleep(1.0)
        beat = ray.get(runner.heartbeat.remote(), timeout=1.0)
        assert not ray.wait([ref], timeout=0)[0]
        assert 3 <= beat["steps"] < 20 and beat["call_seconds"] > 0.5 and beat["rss_bytes"] > 10e6
        assert ray.get(ref).num_steps == 20
    finally:
        ray.kill(runner)


def test_chunks_are_the_fragment_cut_in_time_and_salvage_gives_the_completed_rows():
    from firebreak.rollout.runner import Runner

    whole = Runner(counter_env, RandomPolicy(4), 2, 10, 3, 0)
    chunked = Runner(counter_env, RandomPolicy(4), 2, 10, 3, 0)
    fragments = [whole.sample() for _ in range(2)]
    items = [c for _ in range(2) for c in chunked.sample_chunks(chunk_length=4)]
    # each chunk is its arrays, then its record (which leaves them out: the caller pairs them)
    assert [type(c).__name__ for c in items] == ["Transitions", "Fragment"] * 6
    chunks, arrays = items[1::2], items[0::2]
    assert [c.length for c in chunks] == [4, 4, 2] * 2 and all(c.transitions == [] for c in chunks)
    for frag, parts, records in zip(fragments, (arrays[:3], arrays[3:]), (chunks[:3], chunks[3:])):
        joined, whole_arrays = join_transitions(parts), frag.arrays()
        for name in ("obs", "actions", "rewards", "terminated", "truncated", "next_obs", "next_masks", "final_obs"):
            np.testing.assert_array_equal(getattr(joined, name), getattr(whole_arrays, name))
        assert [(e.env_index, e.step) for e in frag.episodes] == [
            (e.env_index, e.step + 4 * k) for k, p in enumerate(records) for e in p.episodes]
    assert chunked.salvage() == ((10, None), None)  # between calls: nothing in progress
    assert not np.isnan(fragments[0].median_step_seconds) and not np.isnan(fragments[0].median_reset_seconds)
