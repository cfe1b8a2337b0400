"""Envs in processes of their own, forked from a warm template: a crash or hang of env code
costs a fork and an env construction (milliseconds), not a Ray worker restart (a second of CPU).

An `EnvHost` starts one helper process, the *template* (`main` in a fresh interpreter): it unpickles the env factory (importing its modules), builds
one env and resets it once (Numba caches, lazily built tables), then waits. `EnvHost.spawn`
asks it to fork a child that builds its own env (so per-process state such as
`FaultInjector`'s ``(seed, pid)`` generator differs between children) and serves ``reset`` and
``step`` over a socket. `ProcessEnv` is the runner's side of one child, with deadlines:

* the child exits (``os._exit``, SIGKILL, SIGSEGV, the OOM killer): `EnvProcessFault` ``crash``
  as soon as its socket closes;
* no answer within the op's limit: the child is SIGKILLed, `EnvProcessFault` ``hang``; unless
  it is runnable and has used less CPU time than the limit since the op began: on an overloaded
  machine a healthy step waits for a core, so it gets up to `STARVED_GRACE` x the limit (a busy
  loop uses CPU and is caught once it has used the limit's worth);
* env code raises: the child is discarded, `EnvProcessFault` ``error`` with its traceback.

The template forks from its single thread (a Ray worker, with its gRPC threads, should not
fork). Children die with the template (``PR_SET_PDEATHSIG`` on Linux), the template exits
when its runner's socket closes, so nothing outlives the runner. POSIX only.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from multiprocessing.connection import Connection
from multiprocessing.reduction import recv_handle, send_handle
from typing import Any, Callable

import cloudpickle
import gymnasium as gym
import numpy as np
import psutil

#: How long the template may take to start (imports, one env built and reset), seconds.
TEMPLATE_TIMEOUT_S = 300.0
#: How long a forked child may take to build its env, seconds.
SPAWN_TIMEOUT_S = 60.0
#: A step starved of CPU (runnable, under the limit in CPU seconds) may run this many times its limit.
STARVED_GRACE = 10.0


class EnvProcessFault(RuntimeError):
    """An env process failed: ``kind`` is ``"crash"``, ``"hang"`` or ``"error"``; the message
    says what happened (exit status, the limit it passed, or the env's traceback)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _describe_exit(status: int | None) -> str:
    if status is None:
        return "closed its socket"
    if status < 0:
        try:
            return f"was killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"was killed by signal {-status}"
    return f"exited with status {status}"


class EnvHost:
    """The template process of one runner; forks `ProcessEnv` children on request.

    ``env_factory``: a zero-argument callable returning a gymnasium env (cloudpickled to the
    template). The constructor returns once the template has built and reset its env; an env
    whose constructor or reset raises fails here with the env's traceback."""

    def __init__(self, env_factory: Callable[[], gym.Env]):
        if os.name != "posix":
            raise RuntimeError("rollout.isolate_envs needs POSIX fork(); turn it off on this platform")
        self._payload = cloudpickle.dumps(env_factory)
        self._start()

    def _start(self) -> None:
        mine, theirs = socket.socketpair()
        self._proc = subprocess.Popen(
            [sys.executable, "-c", f"from firebreak.rollout.env_process import main; main({theirs.fileno()})"],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, close_fds=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},  # the runner's imports
        )
        theirs.close()
        self._conn = Connection(mine.detach())
        self._conn.send_bytes(self._payload)
        if not self._conn.poll(TEMPLATE_TIMEOUT_S):
            self.close()
            raise RuntimeError(f"the env template process did not start within {TEMPLATE_TIMEOUT_S:.0f} s")
        try:
            reply = self._conn.recv()
        except EOFError:
            status = self._proc.wait()
            raise RuntimeError(f"the env template process {self._proc.pid} {_describe_exit(status)} while building its env") from None
        if reply[0] == "error":
            self.close()
            raise RuntimeError(f"building the env in the template process failed:\n{reply[1]}")
        self.observation_space, self.action_space, self.metadata, self.has_masks = reply[1:]

    def spawn(self, limits: dict[str, float | None]) -> "ProcessEnv":
        """Fork a child with its own env; ``limits`` (shared, read at every call) are the
        seconds a ``"step"`` or ``"reset"`` may take (None: no limit). A dead template is
        started again once."""
        for attempt in (0, 1):
            try:
                self._conn.send(("fork",))
                if not self._conn.poll(SPAWN_TIMEOUT_S):
                    raise EnvProcessFault("hang", f"the env template did not fork within {SPAWN_TIMEOUT_S:.0f} s")
                reply = self._conn.recv()
                pid, conn = reply[1], Connection(recv_handle(self._conn))
            except (EOFError, OSError):
                if attempt:
                    raise
                self.close()
                self._start()
                continue
            # the child answers once its env is built
            if not conn.poll(SPAWN_TIMEOUT_S):
                os.kill(pid, signal.SIGKILL)
                conn.close()
                raise EnvProcessFault("hang", f"env process {pid} did not build its env within {SPAWN_TIMEOUT_S:.0f} s")
            try:
                built = conn.recv()
            except EOFError:
                conn.close()
                raise EnvProcessFault("crash", f"env process {pid} {_describe_exit(self.exit_status(pid))} while building its env") from None
            if built[0] == "error":
                conn.close()
                raise EnvProcessFault("error", f"building the env in env process {pid} failed:\n{built[1]}")
            return ProcessEnv(self, pid, conn, limits, built[1])
        raise AssertionError("unreachable")

    def exit_status(self, pid: int) -> int | None:
        """The exit status of child ``pid`` as `subprocess` gives it (negative: killed by that
        signal), after waiting up to 1 s for it to end; None if it has not ended."""
        try:
            self._conn.send(("status", pid))
            if self._conn.poll(2.0):
                return self._conn.recv()[1]
        except (EOFError, OSError):
            pass
        return None

    def close(self) -> None:
        """Stop the template (its children get SIGKILL with it)."""
        self._conn.close()
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()


class ProcessEnv(gym.Env):
    """The runner's side of one env process: ``reset``/``step`` as in gymnasium, plus
    ``action_masks()`` when the env has it (the mask travels with every answer, no extra call).
    Any failure raises `EnvProcessFault`; the process is then gone and this object is spent."""

    def __init__(self, host: EnvHost, pid: int, conn: Connection, limits: dict[str, float | None], cpu_s: float):
        self.pid, self._host, self._conn, self._limits = pid, host, conn, limits
        self._process = psutil.Process(pid)
        self._cpu_s = cpu_s  # the child's CPU time at the end of its last answer, seconds
        self.observation_space, self.action_space, self.metadata = host.observation_space, host.action_space, host.metadata
        self._mask: np.ndarray | None = None
        if host.has_masks:
            self.action_masks = lambda: self._mask

    def _call(self, op: str, *args: Any) -> Any:
        limit = self._limits.get(op)
        try:
            self._conn.send((op, *args))
            ready = self._answered(limit)
        except (BrokenPipeError, ConnectionResetError):
            ready = True  # died before reading: recv reports it
        if not ready:
            self.close()
            raise EnvProcessFault("hang", f"env.{op}() in env process {self.pid} ran past its limit {limit:.2f} s; killed it")
        try:
            reply = self._conn.recv()
        except (EOFError, ConnectionResetError):
            self._conn.close()
            raise EnvProcessFault("crash", f"env process {self.pid} {_describe_exit(self._host.exit_status(self.pid))} in env.{op}()") from None
        if reply[0] == "error":
            self.close()
            raise EnvProcessFault("error", f"env.{op}() raised in env process {self.pid}:\n{reply[1]}")
        _, result, self._mask, self._cpu_s = reply
        return result

    def _answered(self, limit: float | None) -> bool:
        """Wait for the answer: True when it is there (or the socket closed), False when the op
        hangs: no answer within ``limit`` seconds (None: wait forever) while the child was not
        starved of CPU, or within `STARVED_GRACE` x ``limit`` in any case."""
        if limit is None or self._conn.poll(limit):
            return True
        end = time.monotonic() + (STARVED_GRACE - 1) * limit
        while self._starved(limit):
            left = end - time.monotonic()
            if left <= 0:
                return False
            if self._conn.poll(min(left, max(0.05, limit / 4))):
                return True
        return False

    def _starved(self, limit: float) -> bool:
        """The child is runnable and has used less than ``limit`` CPU seconds on this op."""
        try:
            with self._process.oneshot():
                status, cpu = self._process.status(), self._process.cpu_times()
        except psutil.Error:
            return False  # gone: the socket tells
        return status == psutil.STATUS_RUNNING and cpu.user + cpu.system - self._cpu_s < limit

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self._call("reset", seed, options)
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self._call("step", action)
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        """Kill the process (if it still runs) and close the socket."""
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._conn.close()


# -- the template and its children ----------------------------------------------------------

def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _mask_of(env: gym.Env, has_masks: bool) -> np.ndarray | None:
    return np.asarray(env.get_wrapper_attr("action_masks")(), dtype=bool) if has_masks else None


def _serve(conn: Connection, env: gym.Env, has_masks: bool) -> None:
    """A child's loop: answer ``reset``/``step`` until the runner closes the socket."""
    while True:
        try:
            op, *args = conn.recv()
        except EOFError:
            os._exit(0)
        try:
            if op == "reset":
                result = env.reset(seed=args[0], options=args[1])
            else:
                result = env.step(args[0])
            conn.send(("ok", result, _mask_of(env, has_masks), time.process_time()))
        except Exception:
            conn.send(("error", traceback.format_exc()))


def _fork_child(control: Connection, factory: Callable[[], gym.Env], has_masks: bool) -> int:
    mine, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the child: build an env, say so, serve it; never return into the template
        try:
            control.close()
            mine.close()
            _die_with_parent()
            conn = Connection(theirs.detach())
            try:
                env = factory()
            except Exception:
                conn.send(("error", traceback.format_exc()))
                os._exit(1)
            conn.send(("ready", time.process_time()))
            _serve(conn, env, has_masks)
        finally:
            os._exit(0)
    theirs.close()
    control.send(("forked", pid))
    send_handle(control, mine.fileno(), os.getppid())
    mine.close()
    return pid


def _template(fd: int) -> None:
    """Build and reset one env (to warm every cache), report its spaces, then fork on request
    until the runner's socket closes; reap children and report their exit status."""
    control = Connection(fd)
    factory = cloudpickle.loads(control.recv_bytes())
    try:
        env = factory()
        has_masks = env.has_wrapper_attr("action_masks")
        env.reset(seed=0)
        control.send(("ok", env.observation_space, env.action_space, env.metadata, has_masks))
    except Exception:
        control.send(("error", traceback.format_exc()))
        return
    statuses: dict[int, int] = {}
    while True:
        try:
            message = control.recv()
        except EOFError:
            return  # the runner is gone; children die with this process
        if message[0] == "fork":
            _fork_child(control, factory, has_masks)
        else:
            pid, status = message[1], None
            end = time.monotonic() + 1.0
            while status is None and time.monotonic() < end:
                try:
                    done, raw = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    status = statuses.pop(pid, None)
                    break
                if done:
                    status = os.waitstatus_to_exitcode(raw)
                else:
                    time.sleep(0.005)
            control.send(("status", status))
        while True:  # reap what has ended meanwhile (killed hangs), keep their statuses
            try:
                done, raw = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if not done:
                break
            statuses[done] = os.waitstatus_to_exitcode(raw)


def main(fd: int) -> None:
    """The template process: serve the runner on socket ``fd``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    _template(fd)
