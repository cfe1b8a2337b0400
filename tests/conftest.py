"""Test-session settings that must hold before any test starts Ray."""

import os

import pytest

# Every Ray instance the tests start is private and loopback-only. With RAY_AUTH_MODE unset,
# Ray 2.60's first local `ray.init()` switches this *process* to token auth for good (it sets
# os.environ["RAY_AUTH_MODE"] = "token" and writes ~/.ray/auth_token), and every later instance
# of the session then mixes token and no-token processes: GCS clients are refused
# (InvalidAuthToken) and actors never start. One mode for the whole session: disabled.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

# The default run spreads tests over two pytest-xdist workers (pyproject.toml's addopts): one
# process leaves the machine ~40 % idle while Ray actors start and deadlines run out. The
# modules below start Ray, fire-model worker pools or processes whose deadlines are measured:
# `--dist loadgroup` keeps them on one worker, one at a time as in a serial run, and the other
# worker takes the in-process tests alongside. A module that belongs here and is missing runs
# alongside the Ray tests and competes with them for the two cores.
SERIAL_MODULES = {
    "test_burnprob", "test_cluster_launchers", "test_env_process", "test_frontier", "test_job_stop",
    "test_learner_watchdog", "test_multinode", "test_plan", "test_rllib", "test_rollout_byref",
    "test_rollout_faults", "test_rollout_package", "test_rollout_runner", "test_rollout_supervisor",
    "test_rollout_vector_env", "test_stall_starved", "test_train", "test_train_eval",
}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook, which reads xdist_group marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.stem in SERIAL_MODULES:
            item.add_marker(pytest.mark.xdist_group("serial"))


def pytest_runtest_setup(item):
    """Fails a grouped test that pytest-xdist did not group: pytest 9.2 moved a test's id out of
    the attribute xdist 3.8 renames (``item._nodeid``), so `--dist loadgroup` silently became
    plain `load` and the serial modules ran on both workers at once."""
    in_worker = hasattr(item.config, "workerinput")
    if in_worker and item.config.getvalue("loadgroup") and item.get_closest_marker("xdist_group") and "@" not in item.nodeid:
        pytest.fail(f"pytest-xdist did not group this test of SERIAL_MODULES under pytest {pytest.__version__}: "
                    "install the test extras' pytest (pyproject.toml), or run with -n 0", pytrace=False)
