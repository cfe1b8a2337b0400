"""Test-session settings that must hold before any test starts Ray."""

import os

# Every Ray instance the tests start is private and loopback-only. With RAY_AUTH_MODE unset,
# Ray 2.60's first local `ray.init()` switches this *process* to token auth for good (it sets
# os.environ["RAY_AUTH_MODE"] = "token" and writes ~/.ray/auth_token), and every later instance
# of the session then mixes token and no-token processes: GCS clients are refused
# (InvalidAuthToken) and actors never start. One mode for the whole session: disabled.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

# The default run spreads tests over two pytest-xdist workers (pyproject.toml's addopts): the
# machine sits ~40 % idle in one process while Ray actors start and deadlines run out. The
# modules below start Ray, fire-model worker pools or processes whose deadlines are measured:
# `--dist loadgroup` keeps them on one worker, one at a time, as in a serial run, and the other
# worker takes the pure in-process tests alongside. A module missing here still passes; it
# only competes with the Ray tests for the two cores.
SERIAL_MODULES = {
    "test_burnprob", "test_cluster_launchers", "test_env_process", "test_frontier", "test_job_stop",
    "test_learner_watchdog", "test_multinode", "test_plan", "test_rllib", "test_rollout_byref", "test_rollout_faults",
    "test_rollout_package", "test_rollout_runner", "test_rollout_supervisor", "test_rollout_vector_env",
    "test_stall_starved", "test_train", "test_train_eval",
}


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        if item.module.__name__.rpartition(".")[2] in SERIAL_MODULES:
            item.add_marker(pytest.mark.xdist_group("serial"))
