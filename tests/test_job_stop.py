"""Training as a Ray job on a private head: the ``--working-dir`` upload, and ``ray job stop``
ending a run with a final checkpoint inside Ray's stop window.

Ray's job supervisor sends the job's processes SIGTERM and SIGKILLs them
``RAY_JOB_STOP_WAIT_TIME_S`` later (3 s by default in Ray 2.60). The stopped run trains the smoke
config with every env step slowed to 0.5 s by fault injection (no CPU spent), so a fragment takes
8 s, longer than the window, as the local config's 32-step fragments do on 2 cores: a driver that
finished its fragment before checkpointing would be killed first. One head serves the module
(tests/private_head.py); it is stopped by its own pids.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from datetime import datetime

import pytest
import torch
from ray.dashboard.modules.job.job_supervisor import JobSupervisor
from ray.job_submission import JobStatus, JobSubmissionClient

from firebreak.dqn.checkpoint import build_policy_network, load_checkpoint
from tests.private_head import JOB_EXCLUDES, RAY_CLI, ROOT, head_env, private_head, uploaded

STOP_WAIT_S = JobSupervisor.DEFAULT_RAY_JOB_STOP_WAIT_TIME_S  # SIGTERM, then SIGKILL this many seconds later
SIGTERM_LINE = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) WARNING firebreak\.train: SIGTERM received")


@pytest.fixture(scope="module")
def head():
    """(address, environment, temp dir) of a private head with Ray's default stop window."""
    temp_dir = tempfile.mkdtemp(prefix="rjs_", dir="/tmp")
    env = head_env(temp_dir)
    env.pop("RAY_JOB_STOP_WAIT_TIME_S", None)
    env.pop("RAY_ADDRESS", None)
    try:
        with private_head(temp_dir, env) as address:
            yield address, env, temp_dir
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


def _submit(address: str, env: dict, job_id: str, *args: str) -> None:
    submit = subprocess.run([RAY_CLI, "job", "submit", "--address", address, "--submission-id", job_id, *args],
                            env=env, capture_output=True, text=True, timeout=120)
    assert submit.returncode == 0, f"{submit.stdout[-3000:]}\n{submit.stderr[-3000:]}"


@pytest.mark.timeout(120)
def test_a_job_uploads_the_working_dir_without_version_control_tests_or_runs(head):
    """README's upload (--working-dir with its excludes); the job runs ``train_ray.py --check``,
    which trains nothing (a training job from an uploaded copy compiles the fire model cold)."""
    address, env, temp_dir = head
    job_id = f"firebreak_check_{time.time_ns()}"
    _submit(address, env, job_id, "--working-dir", str(ROOT), "--runtime-env-json",
            json.dumps({"excludes": JOB_EXCLUDES}), "--", "python", "train_ray.py", "--check", "--config",
            "ray_configs/smoke.yaml")
    client = JobSubmissionClient(address)
    logs = client.get_job_logs(job_id)
    assert client.get_job_status(job_id) == JobStatus.SUCCEEDED, logs[-3000:]
    assert "ok: the config fits its nodes" in logs
    size, names = uploaded(temp_dir)
    assert "train_ray.py" in names and "firebreak" in names, names
    assert not names & {".git", "tests", "benchmarks", "runs"}, names
    assert size < 3 * 2**20, f"the --working-dir upload is {size / 2**20:.1f} MiB"


def _wait_for(predicate, timeout_s: float, what: str, logs) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout_s:g} s; job logs:\n{logs()[-4000:]}")
        time.sleep(0.2)


@pytest.mark.timeout(240)
def test_ray_job_stop_ends_with_a_final_checkpoint_inside_rays_stop_window(head, tmp_path):
    address, env, _ = head
    client = JobSubmissionClient(address)
    job_id = f"firebreak_stop_{time.time_ns()}"
    logs = lambda: client.get_job_logs(job_id)  # noqa: E731
    run_dir = tmp_path / "stop"
    overrides = [f"run.out_dir={tmp_path}", "run.name=stop", "run.total_env_steps=100000",
                 "run.eval_every_env_steps=100000", "run.checkpoint_every_env_steps=32", "learner.learning_starts=16",
                 "faults.enabled=true", "faults.p_slow=1.0", "faults.slow_s=0.5"]
    # No --working-dir: the job imports this checkout (PYTHONPATH) and reuses its numba cache.
    entrypoint = ["python", str(ROOT / "train_ray.py"), "--config", str(ROOT / "ray_configs" / "smoke.yaml")]
    for override in overrides:
        entrypoint += ["--set", override]
    _submit(address, env, job_id, "--no-wait", "--", *entrypoint)
    # Trained a bit: the first periodic checkpoint (after 32 env steps, learning started).
    _wait_for(lambda: any((run_dir / "checkpoints").glob("step_*.pt")), 150, "no step checkpoint", logs)
    periodic = load_checkpoint(next((run_dir / "checkpoints").glob("step_*.pt")))
    requested = time.time()
    stop = subprocess.run([RAY_CLI, "job", "stop", "--address", address, job_id], env=env, capture_output=True,
                          text=True, timeout=60)
    assert stop.returncode == 0, stop.stderr
    _wait_for(lambda: client.get_job_status(job_id).is_terminal(), 30, "the job did not end", logs)
    status, text = client.get_job_status(job_id), logs()

    assert status == JobStatus.STOPPED, f"{status}\n{text[-4000:]}"
    signalled = SIGTERM_LINE.search(text)
    assert signalled, f"the driver never handled SIGTERM (killed, or another handler ran):\n{text[-4000:]}"
    sigterm_at = datetime.strptime(signalled[1], "%Y-%m-%d %H:%M:%S").timestamp() + int(signalled[2]) / 1000
    latest = run_dir / "checkpoints" / "latest.pt"
    written = latest.stat().st_mtime
    assert requested - 0.01 <= sigterm_at <= written, (requested, sigterm_at, written)
    assert written - sigterm_at < STOP_WAIT_S, (
        f"the final checkpoint landed {written - sigterm_at:.2f} s after SIGTERM, past Ray's {STOP_WAIT_S} s "
        f"window (SIGKILL)\n{text[-4000:]}")
    payload = load_checkpoint(latest)
    assert int(payload["counters"]["env_steps"]) >= int(periodic["counters"]["env_steps"]) >= 32
    assert int(payload["learner"]["dqn"]["num_updates"]) > 0
    network = build_policy_network(payload)
    assert network(torch.zeros(1, *payload["model"]["obs_shape"])).shape == (1, 24 * 24)
    # The driver ended by itself (its summary table), not by Ray's SIGKILL.
    assert re.search(r"stopped by\s+SIGTERM", text), text[-4000:]
    print(f"ray job stop: SIGTERM {sigterm_at - requested:.2f} s after the request, final checkpoint "
          f"{written - sigterm_at:.2f} s after SIGTERM (window {STOP_WAIT_S} s)")
