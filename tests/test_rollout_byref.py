"""Fragments by reference: the driver reads small records, the arrays go runner -> learner."""

import dataclasses
import pickle

import numpy as np
import psutil
import pytest
import ray

from firebreak.config import load_config
from firebreak.rollout import RandomPolicy, RunnerSpec, Supervisor
from firebreak.rollout.fragment import Transitions, transport_dtype
from firebreak.rollout.learner import create_learner
from firebreak.rollout.runner import Runner
from firebreak.train import _RemoteLearner, dqn_config
from tests.rollout_fixtures import LayeredEnv, counter_env, ray_local  # noqa: F401
from tests.test_replay_persistence import CONFIGS

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("ray_local")]

SHAPE = (18, 24, 24)


def test_observations_in_float16_range_travel_as_float16_others_as_they_are():
    assert transport_dtype(LayeredEnv().observation_space) == np.float16
    assert transport_dtype(counter_env().observation_space) is None  # Box(-1e9, 1e9): beyond float16
    runner = Runner(LayeredEnv, RandomPolicy(24 * 24), 2, 9, 0, 0)
    arrays = runner.sample().arrays()
    assert arrays.obs.dtype == arrays.final_obs.dtype == np.float16
    # episodes of 7 steps in 9: each env ships one final obs for its end and one for the last step
    assert arrays.final_obs.shape == (4, *SHAPE)
    # 2 bytes a value, 22 observations for 18 steps: 0.31 of float32 obs and next_obs (2 x 4 bytes a value)
    assert arrays.obs.nbytes + arrays.final_obs.nbytes == (18 + 4) * np.prod(SHAPE) * 2


def test_the_driver_holds_records_only_and_the_learner_ingests_arrays_of_a_dead_runner():
    spec = RunnerSpec(LayeredEnv, RandomPolicy(24 * 24), envs_per_runner=2, fragment_length=16, num_cpus=0.5)
    with Supervisor(spec, 1, sample_timeout_s=60, chunk_length=8) as sup:
        fragment = sup.next_fragment(timeout=60)
    # close() killed the runner for good: its process is gone, the arrays it yielded are not
    psutil.Process(fragment.pid).wait(timeout=30)
    assert len(fragment.transitions) == 2 and all(isinstance(t, ray.ObjectRef) for t in fragment.transitions)
    assert not any(isinstance(v, np.ndarray) for v in vars(fragment).values())
    assert len(pickle.dumps(dataclasses.replace(fragment, transitions=[]))) < 2000
    config = dqn_config(load_config(CONFIGS / "smoke.yaml"))
    learner = create_learner(config, SHAPE, None, 0, num_gpus=0, max_restarts=0)
    try:
        assert ray.get(learner.add_fragment.remote(fragment), timeout=60) == fragment.num_steps
        assert ray.get(learner.info.remote())["lost_steps"] == 0
    finally:
        ray.kill(learner)


@ray.remote(num_cpus=0)
class _Owner:
    def put(self, arrays: Transitions) -> list:
        return [ray.put(arrays)]  # in a list: the ref stays owned by this actor


def test_a_fragment_whose_arrays_are_gone_is_counted_lost_not_a_learner_failure():
    runner = Runner(LayeredEnv, RandomPolicy(24 * 24), 1, 16, 0, 0)
    fragment = runner.sample()
    owner = _Owner.remote()
    fragment.transitions = ray.get(owner.put.remote(fragment.transitions[0]))
    ray.kill(owner)  # the arrays die with their owner, as with a node lost before the learner fetched them
    config = dqn_config(load_config(CONFIGS / "smoke.yaml"))
    learner = create_learner(config, SHAPE, None, 0, num_gpus=0, max_restarts=0)
    try:
        assert ray.get(learner.add_fragment.remote(fragment), timeout=60) == 0
        assert ray.get(learner.info.remote())["lost_steps"] == 16
        # the driver's view (its summary's learner_lost_steps): told by the next training result
        driver_side = _RemoteLearner(learner, max_restarts=0, call_timeout_s=60)
        driver_side.add_fragment(fragment)
        driver_side.start_train(1)
        assert driver_side.finished_train(wait=True) == (True, None)  # an empty replay: no update, no failure
        assert driver_side.lost_steps == 32 and driver_side.restarts == 0
    finally:
        ray.kill(learner)
