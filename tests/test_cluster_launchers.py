"""Beyond one cloud: the SLURM batch script and the KubeRay RayJob start the cluster of
cluster.yaml and run README's training command.

The batch script runs here under a fake SLURM (stub ``srun``, ``ray``, ``python``, ``hostname``
that log their arguments), so the checks are on the commands it actually issues; the manifest is
checked field by field against KubeRay's ray.io/v1 RayJob schema and ray_configs/cluster.yaml.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest
import ray
import yaml

from firebreak.config import load_config

ROOT = Path(__file__).parents[1]
SBATCH = ROOT / "launchers" / "slurm" / "train.sbatch"
RAYJOB = ROOT / "launchers" / "kuberay" / "rayjob.yaml"
HEAD_IP = "10.1.2.3"

pytestmark = pytest.mark.timeout(60)


def _readme_training_command() -> list[str]:
    """``python train_ray.py --config ...`` of README's "Cluster" section, as argv (without its --set)."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("\n## Cluster\n"):]
    section = section[: section.index("\n## ", 1)]
    config = re.search(r"python train_ray\.py --config (\S+)", section).group(1)
    return ["python", "train_ray.py", "--config", config]


def _cluster_yaml_flag(name: str) -> str:
    """The value of ``--<name>=`` in cluster.yaml's head start command."""
    head_start = " ".join(yaml.safe_load((ROOT / "cluster.yaml").read_text())["head_start_ray_commands"])
    return re.search(rf"--{name}=(\S+)", head_start).group(1)


@pytest.fixture(scope="module")
def training_config():
    argv = _readme_training_command()
    return load_config(ROOT / argv[3])


# -- SLURM ------------------------------------------------------------------------------------


def _sbatch_components() -> list[dict[str, str]]:
    """The ``#SBATCH --key=value`` options of each heterogeneous-job component."""
    components: list[dict[str, str]] = [{}]
    for line in SBATCH.read_text().splitlines():
        if line.strip() == "#SBATCH hetjob":
            components.append({})
        elif line.startswith("#SBATCH --"):
            key, _, value = line[len("#SBATCH --"):].partition("=")
            components[-1][key] = value
    return components


STUB = """#!/bin/bash
{before}
record=$(printf '%q ' "$(basename "$0")" "$@")
printf '%s\n' "$record" >> "$FAKE_LOG"  # one write: the srun steps log concurrently with the script
{body}
"""
# the head is "up" once its srun ran: until then `ray status` fails (unlogged), as against a head still starting
STUB_BEFORE = {"ray": 'if [[ "$1" == status ]] && ! grep -q -- "--head" "$FAKE_LOG"; then exit 1; fi'}
STUB_BODIES = {
    "srun": 'printf "%s\\n" "srun-env RAY_AUTH_MODE=$RAY_AUTH_MODE" >> "$FAKE_LOG"',
    "ray": "",
    "hostname": 'echo "fe80::1 ' + HEAD_IP + '"',  # `hostname --ip-address` of a dual-stack node
    "python": """if [[ "$1" == - ]]; then cat > /dev/null; exit 0; fi
printf "%s\\n" "train-env PWD=$PWD RAY_ADDRESS=$RAY_ADDRESS RAY_AUTH_MODE=$RAY_AUTH_MODE" >> "$FAKE_LOG"
if [[ -n "${FAKE_TRAIN_SECONDS:-}" ]]; then
    /bin/sleep "$FAKE_TRAIN_SECONDS" &
    trap 'echo train-got-TERM >> "$FAKE_LOG"; kill $!; exit 0' TERM
    wait
fi""",
}


def _fake_slurm(tmp_path: Path, token: bool = True, **extra_env: str) -> tuple[dict[str, str], Path]:
    """Environment of a batch job as SLURM would give it, with stubs first on PATH; its log."""
    bin_dir, home, venv = tmp_path / "bin", tmp_path / "home", tmp_path / "venv" / "bin"
    for folder in (bin_dir, home, venv):
        folder.mkdir(parents=True)
    (venv / "activate").write_text("")
    for name, body in STUB_BODIES.items():
        (bin_dir / name).write_text(STUB.format(before=STUB_BEFORE.get(name, ""), body=body))
    (bin_dir / "sleep").write_text("#!/bin/bash\nexec /bin/sleep 0.05\n")  # the script's polling, fast
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    if token:
        (home / ".ray").mkdir()
        (home / ".ray" / "auth_token").write_text("secret-token\n")
    gpu, cpu = _sbatch_components()
    log = tmp_path / "commands.log"
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(home), "FAKE_LOG": str(log),
        "FIREBREAK_VENV": str(venv.parent), "SLURM_SUBMIT_DIR": str(ROOT), "SLURM_JOB_ID": "42",
        "SLURMD_NODENAME": "gpu001",
        "SLURM_CPUS_PER_TASK_HET_GROUP_0": gpu["cpus-per-task"], "SLURM_JOB_NUM_NODES_HET_GROUP_0": gpu["nodes"],
        "SLURM_CPUS_PER_TASK_HET_GROUP_1": cpu["cpus-per-task"], "SLURM_JOB_NUM_NODES_HET_GROUP_1": cpu["nodes"],
        **extra_env,
    }
    return env, log


def _records(log: Path) -> list[list[str]]:
    return [shlex.split(line) for line in log.read_text().splitlines()]


def _flags(argv: list[str]) -> dict[str, str]:
    return {a.split("=", 1)[0]: a.split("=", 1)[1] if "=" in a else "" for a in argv if a.startswith("--")}


def test_sbatch_is_valid_bash():
    subprocess.run(["bash", "-n", str(SBATCH)], check=True)


def test_sbatch_starts_head_then_workers_then_readmes_training_command(tmp_path, training_config):
    env, log = _fake_slurm(tmp_path)
    done = subprocess.run(["bash", str(SBATCH)], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    records = _records(log)
    sruns, pythons = [r for r in records if r[0] == "srun"], [r for r in records if r[0] == "python"]
    assert len(sruns) == 2 and len(pythons) == 2, records
    head, workers = sorted(sruns, key=lambda r: "--head" not in r)
    wait_for_nodes, training = pythons  # in this order: both run in the foreground
    # the workers start once `ray status` reaches the head (the srun steps run in the background)
    address = f"{HEAD_IP}:{_cluster_yaml_flag('port')}"
    status_ok = next(i for i, r in enumerate(records) if r[:2] == ["ray", "status"])
    assert records.index(head) < status_ok < records.index(workers)
    gpu, cpu = _sbatch_components()

    head_ray = head[head.index("ray"):]
    assert head_ray[:3] == ["ray", "start", "--head"] and "--block" in head_ray and "--het-group=0" in head
    assert head[head.index("-w") + 1] == "gpu001"  # the node the batch script runs on
    head_flags = _flags(head_ray)
    assert head_flags["--node-ip-address"] == HEAD_IP  # the IPv4 address, not the IPv6 one listed first
    for name in ("port", "object-manager-port", "dashboard-host"):  # as cluster.yaml's head
        assert head_flags[f"--{name}"] == _cluster_yaml_flag(name), name
    assert json.loads(head_flags["--resources"]) == training_config.learner.resources  # the learner lands here
    assert float(head_flags["--num-gpus"]) >= 1 and gpu["gpus-per-node"] == head_flags["--num-gpus"]
    assert float(head_flags["--num-cpus"]) >= training_config.learner.num_cpus

    worker_ray = workers[workers.index("ray"):]
    assert worker_ray[:2] == ["ray", "start"] and "--block" in worker_ray and "--het-group=1" in workers
    worker_flags = _flags(worker_ray)
    assert worker_flags["--address"] == address and records[status_ok][2] == f"--address={address}"
    assert worker_flags["--object-manager-port"] == _cluster_yaml_flag("object-manager-port")
    slots = json.loads(worker_flags["--resources"])
    assert slots.keys() == training_config.rollout.runner_resources.keys() == {"env_runner"}
    per_node = slots["env_runner"] / training_config.rollout.runner_resources["env_runner"]
    assert per_node * training_config.rollout.num_cpus_per_runner <= float(worker_flags["--num-cpus"])
    assert per_node * int(cpu["nodes"]) >= training_config.rollout.runners  # every runner has a slot
    assert _flags(workers)["--nodes"] == cpu["nodes"] and _flags(workers)["--cpus-per-task"] == cpu["cpus-per-task"]

    assert wait_for_nodes[:3] == ["python", "-", address] and wait_for_nodes[3] == str(1 + int(cpu["nodes"]))
    assert training[:4] == _readme_training_command()
    assert training[4:] == ["--set", f"run.out_dir={ROOT}/runs"]
    train_env = dict(kv.split("=", 1) for kv in next(r for r in records if r[0] == "train-env")[1:])
    assert train_env == {"PWD": str(ROOT), "RAY_ADDRESS": address, "RAY_AUTH_MODE": "token"}
    assert [r for r in records if r[0] == "srun-env"] == [["srun-env", "RAY_AUTH_MODE=token"]] * 2  # as cluster.yaml


def test_sbatch_without_a_token_stops_before_starting_ray(tmp_path):
    env, log = _fake_slurm(tmp_path, token=False)
    done = subprocess.run(["bash", str(SBATCH)], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "ray get-auth-token --generate" in done.stderr and str(tmp_path / "home" / ".ray" / "auth_token") in done.stderr
    assert not log.exists() or not [r for r in _records(log) if r[0] == "srun"]


def test_sbatch_outside_a_heterogeneous_job_says_so(tmp_path):
    env, _ = _fake_slurm(tmp_path)
    del env["SLURM_JOB_NUM_NODES_HET_GROUP_1"]
    done = subprocess.run(["bash", str(SBATCH)], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and "heterogeneous SLURM job" in done.stderr


def test_sbatch_passes_slurms_sigterm_to_the_training_driver(tmp_path):
    env, log = _fake_slurm(tmp_path, FAKE_TRAIN_SECONDS="30")
    proc = subprocess.Popen(["bash", str(SBATCH)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not (log.exists() and "train-env" in log.read_text()):
            assert time.monotonic() < deadline, "training never started"
            time.sleep(0.1)
        time.sleep(0.3)  # let the stub install its TERM handler
        proc.send_signal(signal.SIGTERM)  # what `#SBATCH --signal=B:TERM@300` sends before the time limit
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert "train-got-TERM" in log.read_text()
    assert proc.returncode == 0, err  # the driver's own exit status (0: stopped with a checkpoint)
    assert "--signal=B:TERM@" in SBATCH.read_text()


# -- KubeRay ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rayjob():
    return yaml.safe_load(RAYJOB.read_text())


def _ray_resources(group: dict) -> dict[str, float]:
    """Custom resources of a group: KubeRay passes ``rayStartParams.resources`` to ``ray start
    --resources`` as a quoted JSON string, e.g. ``'"{\\"env_runner\\": 16}"'``."""
    value = group["rayStartParams"].get("resources")
    return json.loads(json.loads(value)) if value else {}


def test_rayjob_is_a_ray_io_v1_rayjob_running_readmes_training_command(rayjob, training_config):
    assert rayjob["apiVersion"] == "ray.io/v1" and rayjob["kind"] == "RayJob" and rayjob["metadata"]["name"]
    spec = rayjob["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    entrypoint = shlex.split(spec["entrypoint"])
    assert entrypoint[:4] == _readme_training_command()
    load_config(ROOT / entrypoint[3])  # the config exists and validates
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert runtime_env["working_dir"] == "/home/ray/firebreak"  # where the image's COPY puts the checkout
    out_dir = dict(a.split("=", 1) for a in entrypoint[4:] if "=" in a)["run.out_dir"]
    head = spec["rayClusterSpec"]["headGroupSpec"]
    mounts = [m["mountPath"] for c in head["template"]["spec"]["containers"] for m in c.get("volumeMounts", [])]
    assert out_dir in mounts  # runs/ lands on the persistent volume, not in the pod
    assert spec["rayClusterSpec"]["authOptions"]["mode"] == "token"  # as cluster.yaml
    ray_version = spec["rayClusterSpec"]["rayVersion"]
    assert ray.__version__.split(".")[:2] == ray_version.split(".")[:2]


def test_rayjob_groups_hold_the_configs_actors(rayjob, training_config):
    cluster = rayjob["spec"]["rayClusterSpec"]
    head, groups = cluster["headGroupSpec"], cluster["workerGroupSpecs"]
    for group in [head, *groups]:  # KubeRay's schema: rayStartParams is map[string]string
        assert all(isinstance(v, str) for v in group["rayStartParams"].values()), group["rayStartParams"]
        assert group["template"]["spec"]["containers"][0]["image"]
    assert head["rayStartParams"]["num-cpus"] == "0"  # the head runs the driver only, as cluster.yaml's
    assert len({g["groupName"] for g in groups}) == len(groups)
    for g in groups:
        assert g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]

    learner_groups = [g for g in groups if _ray_resources(g).get("learner")]
    assert len(learner_groups) == 1
    learner = learner_groups[0]
    assert _ray_resources(learner) == training_config.learner.resources
    gpus = float(learner["rayStartParams"]["num-gpus"])
    assert gpus >= 1 and training_config.learner.num_gpus in ("auto", gpus)
    limits = learner["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert float(limits["nvidia.com/gpu"]) == gpus

    runner_groups = [g for g in groups if _ray_resources(g).get("env_runner")]
    assert len(runner_groups) == 1
    runners = runner_groups[0]
    rollout = training_config.rollout
    assert _ray_resources(runners).keys() == rollout.runner_resources.keys()
    per_pod = _ray_resources(runners)["env_runner"] / rollout.runner_resources["env_runner"]
    cpus = float(runners["rayStartParams"]["num-cpus"])
    assert per_pod * rollout.num_cpus_per_runner <= cpus
    assert float(runners["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"]) == cpus
    assert per_pod * runners["minReplicas"] >= rollout.runners  # every runner has a slot from the start
    custom = set(rollout.runner_resources) | set(training_config.learner.resources)
    assert custom <= {k for g in groups for k in _ray_resources(g)}
