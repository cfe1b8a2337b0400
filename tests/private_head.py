"""A private Ray head (``ray start --head``) for the job-submission tests, stopped by its own pids.

The head listens on 127.0.0.1 only, on free ports, with its own short temp dir (DESIGN.md, "Ray
on shared machines and in tests"); ``RAY_TMPDIR`` points Ray's "current cluster" file there
instead of /tmp/ray, which others share, and token auth is disabled (loopback, one test long: no
token is written to ``~/.ray``). It is stopped by killing the processes that name its temp dir
and their descendants, never with ``ray stop``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psutil

ROOT = Path(__file__).parents[1]
RAY_CLI = str(Path(sys.executable).parent / "ray")


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def processes_under(temp_dir: str) -> list[psutil.Process]:
    """The processes of the Ray instance whose temp dir is ``temp_dir``: those naming it on their
    command line (gcs_server, raylet, dashboard, agents, log monitor) or in ``RAY_TMPDIR`` (the
    head's Ray-client server, which ``ray start`` leaves orphaned and names no path), and all
    their descendants (workers rename themselves ``ray::...``, so they are found as the raylet's
    children)."""
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        if proc.pid == os.getpid():
            continue
        try:
            ours = (any(temp_dir in arg for arg in proc.info["cmdline"] or [])
                    or proc.environ().get("RAY_TMPDIR") == temp_dir)
            if ours:
                found[proc.pid] = proc
                found.update({c.pid: c for c in proc.children(recursive=True)})
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return list(found.values())


def stop_processes(procs: list[psutil.Process], grace_s: float = 2.0) -> None:
    """SIGTERM, then SIGKILL what is alive ``grace_s`` seconds later: a head's gcs_server, raylet and
    runtime-env agent, all signalled at once, wait on each other for 10 s or more (measured with Ray 2.60)."""
    for proc in procs:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


#: Not uploaded with --working-dir (Ray already leaves out what .gitignore lists, e.g. runs/):
#: version control, test data and benchmarks are not needed to train.
JOB_EXCLUDES = [".git", "tests", "benchmarks", "**/__pycache__"]


def uploaded(temp_dir: str) -> tuple[int, set[str]]:
    """(bytes, top-level names) of the working dirs the head unpacked for jobs: what was uploaded
    (less the numba caches that a job itself wrote into ``__pycache__`` there)."""
    size, names = 0, set()
    # session_latest is a symlink to the session folder: count each package once
    for pkg in {p.resolve() for p in Path(temp_dir).glob("session_*/runtime_resources/working_dir_files/*")}:
        if pkg.is_dir():
            names |= {p.name for p in pkg.iterdir()}
            size += sum(f.stat().st_size for f in pkg.rglob("*") if f.is_file() and "__pycache__" not in f.parts)
    return size, names


def head_env(temp_dir: str) -> dict[str, str]:
    """The environment of the head and the ``ray job`` CLI: this venv's ``python`` first on PATH
    (a job inherits the head's environment), this checkout importable, auth off, Ray's own files
    under ``temp_dir``."""
    os.makedirs(os.path.join(temp_dir, "ray"), exist_ok=True)
    return {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "RAY_AUTH_MODE": "disabled", "RAY_TMPDIR": temp_dir}


@contextmanager
def private_head(temp_dir: str, env: dict[str, str], num_cpus: int = 2) -> Iterator[str]:
    """Start a head with a dashboard (the job API) and yield its address ``http://127.0.0.1:<port>``;
    on exit kill its processes and check none is left."""
    gcs, dashboard, client, agent_http, agent_grpc, metrics, runtime_env = free_ports(7)
    head = subprocess.run(
        [RAY_CLI, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={gcs}", f"--temp-dir={temp_dir}",
         f"--num-cpus={num_cpus}", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
         f"--dashboard-port={dashboard}", f"--ray-client-server-port={client}",
         f"--dashboard-agent-listen-port={agent_http}", f"--dashboard-agent-grpc-port={agent_grpc}",
         f"--metrics-export-port={metrics}", f"--runtime-env-agent-port={runtime_env}", "--disable-usage-stats"],
        env=env, capture_output=True, text=True, timeout=120)
    try:
        assert head.returncode == 0, f"ray start --head failed:\n{head.stdout}\n{head.stderr}"
        yield f"http://127.0.0.1:{dashboard}"
    finally:
        stop_processes(processes_under(temp_dir))
        left = [p.pid for p in processes_under(temp_dir)]
        assert not left, f"processes of the private head still alive: {left}"
