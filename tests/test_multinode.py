"""Ray across nodes, on one machine: a worker node killed mid-training, custom-resource
placement of runners and learner (`ray.cluster_utils.Cluster`), and the smoke run submitted as
a Ray job to a private head started with ``ray start --head``.

Both tests start private Ray instances in short temp dirs (DESIGN.md, "Ray on shared machines
and in tests") and stop exactly what they started: `Cluster.shutdown()`, and the processes of
the ``ray start`` head found by its temp dir, never ``ray stop``. Token auth is disabled for
these private instances (``RAY_AUTH_MODE=disabled`` in the environment the Ray processes
inherit): they listen on 127.0.0.1 only and live for one test, so no token is written to
``~/.ray`` and no one else's token is needed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import ray
import torch
from ray.cluster_utils import Cluster

import firebreak.rollout
import firebreak.rollout.learner
from firebreak.config import load_config
from firebreak.dqn.checkpoint import build_policy_network, load_checkpoint
from firebreak.train import train
from tests.private_head import JOB_EXCLUDES
from tests.private_head import free_ports as _free_ports
from tests.private_head import processes_under as _processes_under
from tests.private_head import stop_processes as _stop_processes
from tests.private_head import uploaded as _uploaded

ROOT = Path(__file__).parents[1]
SMOKE = ROOT / "ray_configs" / "smoke.yaml"
# Node death seen in ~1.5 s instead of Ray's default 30 s.
HEALTH_CHECKS = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                 "health_check_timeout_ms": 500, "health_check_failure_threshold": 3}


@pytest.fixture
def private_ray_env(monkeypatch):
    """A short private temp dir; the environment every Ray process started here inherits."""
    if ray.is_initialized():
        # The shared test instance of an earlier module (tests/rollout_fixtures.ray_local): the
        # multi-node tests need their own cluster; the modules after this one start a new one.
        ray.shutdown()
    temp_dir = tempfile.mkdtemp(prefix="rmn_", dir="/tmp")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # private, loopback-only, one test long: no token
    # Ray writes its "current cluster" address file here instead of /tmp/ray, which others share.
    monkeypatch.setenv("RAY_TMPDIR", temp_dir)
    os.makedirs(os.path.join(temp_dir, "ray"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    yield temp_dir
    shutil.rmtree(temp_dir, ignore_errors=True)


def _actor_node(handle) -> tuple[str, int]:
    """(node id, pid) of an actor's current incarnation, from the GCS actor table (no dashboard needed)."""
    entry = ray._private.state.actors(handle._actor_id.hex())
    return entry["Address"]["NodeID"], entry["Pid"]


@pytest.mark.timeout(240)
def test_a_worker_node_dies_mid_training_and_its_runners_move(private_ray_env, tmp_path, monkeypatch):
    cluster = Cluster(initialize_head=True, connect=True, head_node_args={
        "num_cpus": 0, "include_dashboard": False, "temp_dir": private_ray_env, "_system_config": HEALTH_CHECKS})
    try:
        # Node A hosts the learner; after B dies it must also fit B's runner:
        # 1 CPU learner + 2 x 0.5 CPU runners, env_runner 2.
        node_a = cluster.add_node(num_cpus=2, resources={"env_runner": 2, "learner": 1})
        node_b = cluster.add_node(num_cpus=2, resources={"env_runner": 2})
        cluster.wait_for_nodes()
        id_a, id_b = node_a.node_id, node_b.node_id

        learner_node = {}
        create_learner = firebreak.rollout.learner.create_learner

        def traced_create_learner(*args, **kwargs):
            handle = create_learner(*args, **kwargs)
            ray.get(handle.info.remote())  # placed and started
            learner_node["node"], learner_node["pid"] = _actor_node(handle)
            return handle

        fragments = []  # (time.monotonic(), runner index, pid, node id)
        both_nodes_seen = threading.Event()
        killed_at = []

        def runners_on_b() -> set[int]:
            """The runners that delivered from node B before the kill."""
            return {f[1] for f in fragments if f[0] < killed_at[0] and f[3] == id_b}

        def moved_fragments() -> list:
            """Their fragments from new processes after the kill (a fragment of a dead process may
            still land seconds after it on a loaded machine: its record was already on its way)."""
            on_b = runners_on_b()
            dead = {f[2] for f in fragments if f[0] < killed_at[0] and f[3] == id_b}
            return [f for f in fragments if f[0] > killed_at[0] and f[1] in on_b and f[2] not in dead]

        class TracingSupervisor(firebreak.rollout.Supervisor):
            def next_fragment(self, timeout=None):
                fragment = super().next_fragment(timeout)
                node, pid = _actor_node(self._slots[fragment.runner_index].actor)
                fragments.append((time.monotonic(), fragment.runner_index, fragment.pid,
                                  node if pid == fragment.pid else None))
                per_node = Counter(f[3] for f in fragments)
                if per_node[id_a] >= 2 and per_node[id_b] >= 2:
                    both_nodes_seen.set()
                if killed_at and sum(f[3] == id_a for f in moved_fragments()) >= 3:
                    # seen: stop the run as `ray job stop` would (it ends with a final checkpoint)
                    os.kill(os.getpid(), signal.SIGTERM)
                return fragment

        monkeypatch.setattr(firebreak.rollout.learner, "create_learner", traced_create_learner)
        monkeypatch.setattr(firebreak.rollout, "Supervisor", TracingSupervisor)

        run_over = threading.Event()

        def kill_node_b():
            if both_nodes_seen.wait(timeout=150) and not run_over.is_set():
                killed_at.append(time.monotonic())
                cluster.remove_node(node_b, allow_graceful=False)  # SIGKILL: raylet, plasma, workers

        killer = threading.Thread(target=kill_node_b, daemon=True)
        killer.start()
        # At most 3200 env steps; the run stops (SIGTERM) once node B's runner delivered 3 times from A.
        cfg = load_config(SMOKE, [f"run.out_dir={tmp_path}", "run.name=multinode", "run.total_env_steps=3200",
                                  "run.eval_every_env_steps=1600", "run.checkpoint_every_env_steps=1600",
                                  "rollout.runner_resources={env_runner: 1}", "rollout.num_cpus_per_runner=0.5",
                                  "learner.resources={learner: 1}"])
        try:
            summary = train(cfg, progress=False)
        finally:
            run_over.set()
            both_nodes_seen.set()  # release the killer thread if the run ended before it fired
            killer.join(timeout=60)

        assert learner_node["node"] == id_a, "the learner must run on the node offering learner: 1"
        assert killed_at, f"node B was never killed: fragments per node {Counter(f[3] for f in fragments)}"
        before = [f for f in fragments if f[0] < killed_at[0]]
        after = [f for f in fragments if f[0] > killed_at[0] + 1.0]  # fragments already fetched may land just after
        assert {f[3] for f in before} == {id_a, id_b}, "SPREAD: runners on both worker nodes, none on the 0-CPU head"
        runner_on_b = runners_on_b()
        assert after and {f[3] for f in after} <= {id_a, None}, "after the kill every fragment comes from node A"
        moved = moved_fragments()
        assert moved and all(f[3] == id_a for f in moved), \
            (f"runner(s) {runner_on_b} of the dead node must be re-created on node A and deliver again; "
             f"faults {summary['faults']}, fragments (s after the kill, runner, node): "
             f"{[(round(f[0] - killed_at[0], 1), f[1], (f[3] or '?')[:6]) for f in fragments]}")
        print(f"node B killed; runner(s) {sorted(runner_on_b)} delivered again from node A "
              f"{moved[0][0] - killed_at[0]:.1f} s later; faults {summary['faults']}")
        faults = summary["faults"]
        assert faults["crashes"] + faults["hangs"] + faults["replacements"] > 0, faults
        # each failed call loses its fault's step, or (a dead process) at most its unfinished chunk
        assert 0 < faults["lost_fragments"] <= faults["lost_steps"] <= cfg.rollout.chunk_length * faults["lost_fragments"], faults
        assert summary["stopped_by"] == "SIGTERM" and summary["updates"] > 0
        assert load_checkpoint(Path(summary["checkpoint"]))["counters"]["env_steps"] == summary["env_steps"]
    finally:
        ray.shutdown()
        cluster.shutdown()
        # What shutdown missed (a node's GCS or raylet mid-failure) would hold this instance's
        # ports and cluster id for the next test's Ray: stop it by its temp dir.
        _stop_processes(_processes_under(private_ray_env))


@pytest.mark.slow  # ~140 s: the uploaded copy compiles the fire model cold (numba caches are not uploaded)
@pytest.mark.timeout(300)
def test_job_submission_to_a_private_head_trains_and_writes_its_run(private_ray_env, tmp_path):
    """README's job command run to its end. The default suite covers its parts faster:
    tests/test_job_stop.py submits to a private head (the --working-dir upload with a
    ``--check`` job; a training job, stopped, with its final checkpoint) and test_train.py's
    smoke run trains to its end in process."""
    temp_dir = private_ray_env
    gcs, dashboard, client, agent_http, agent_grpc, metrics, runtime_env = _free_ports(7)
    ray_cli = str(Path(sys.executable).parent / "ray")
    # `python` in the job's entrypoint must be this venv's; the job inherits the head's environment.
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    head = subprocess.run(
        [ray_cli, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={gcs}", f"--temp-dir={temp_dir}",
         "--num-cpus=2", "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
         f"--ray-client-server-port={client}", f"--dashboard-agent-listen-port={agent_http}",
         f"--dashboard-agent-grpc-port={agent_grpc}", f"--metrics-export-port={metrics}",
         f"--runtime-env-agent-port={runtime_env}", "--disable-usage-stats"],
        env=env, capture_output=True, text=True, timeout=120)
    try:
        assert head.returncode == 0, f"ray start --head failed:\n{head.stdout}\n{head.stderr}"
        address = f"http://127.0.0.1:{dashboard}"
        job_id = f"firebreak_smoke_{os.getpid()}"
        submit = subprocess.run(
            [ray_cli, "job", "submit", "--address", address, "--submission-id", job_id,
             "--working-dir", str(ROOT), "--runtime-env-json", json.dumps({"excludes": JOB_EXCLUDES}), "--",
             "python", "train_ray.py", "--config", "ray_configs/smoke.yaml", "--set", f"run.out_dir={tmp_path}",
             "--set", "run.name=job", "--set", "run.total_env_steps=320",
             # 2 CPUs on this head: the learner (1 CPU) and 2 runners at 0.5 CPU each.
             "--set", "rollout.num_cpus_per_runner=0.5"],
            env=env, capture_output=True, text=True, timeout=240)
        from ray.job_submission import JobStatus, JobSubmissionClient

        client_ = JobSubmissionClient(address)
        status = client_.get_job_status(job_id)
        logs = client_.get_job_logs(job_id)
        assert status == JobStatus.SUCCEEDED, (
            f"job {job_id} ended {status} (ray job submit rc {submit.returncode})\n{submit.stderr[-3000:]}\n"
            f"job logs:\n{logs[-5000:]}")
        assert submit.returncode == 0 and "env steps" in logs  # the summary table
        size, names = _uploaded(temp_dir)
        assert "train_ray.py" in names and not names & {".git", "tests", "benchmarks", "runs"}, names
        assert size < 3 * 2**20, f"the --working-dir upload is {size / 2**20:.1f} MiB"
        run_dir = tmp_path / "job"
        payload = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
        assert int(payload["counters"]["env_steps"]) >= 320 and payload["config"]["run"]["name"] == "job"
        network = build_policy_network(payload)
        assert network(torch.zeros(1, *payload["model"]["obs_shape"])).shape == (1, 24 * 24)
        assert (run_dir / "config.yaml").is_file() and any((run_dir / "tb").iterdir())
    finally:
        procs = _processes_under(temp_dir)
        _stop_processes(procs)
        left = [p.pid for p in _processes_under(temp_dir)]
        assert not left, f"processes of the private head still alive: {left}"
