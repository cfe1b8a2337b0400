"""Fault injection: a gymnasium wrapper that crashes, hangs, raises or slows down on purpose.

Used by the tests and the benchmark to prove that the rollout engine detects and recovers
from every kind of failure a fire simulator can produce, and that its counters are exact.

Two modes, combinable:

* probabilities per ``step()`` call (``p_exit``, ``p_sigkill``, ...), drawn from a generator
  seeded with ``(seed, pid)``: a restarted process draws a different sequence, so a fault does
  not replay forever at the same step;
* a schedule ``[(step, kind), ...]``: fault ``kind`` on the ``step``-th ``step()`` call (0-based)
  of an env instance. Every entry fires ONCE across all processes and restarts: the first env
  reaching it claims a token file in ``log_dir`` (``O_CREAT | O_EXCL``). This gives exact counts.

Every injection appends one line ``<kind> <pid> <step> <unix time>`` to
``<log_dir>/injections.log`` BEFORE it fires (``os.write`` on an ``O_APPEND`` descriptor reaches
the kernel, so it survives the crash that follows); ``read_injections(log_dir)`` returns them as
`Injection` tuples for comparison with the counters. The wrapped env's ``action_masks`` stays
reachable through ``env.get_wrapper_attr("action_masks")``, as for any gymnasium wrapper.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import gymnasium as gym
import numpy as np

#: Fault kinds, in the order the probabilities are drawn.
KINDS = ("exit", "sigkill", "sigsegv", "hang", "busy_hang", "raise", "slow")
#: Kinds that lose the call they happen in (``slow`` does not).
FATAL_KINDS = KINDS[:-1]
LOG_NAME = "injections.log"


class Injection(NamedTuple):
    """One logged injection: fault ``kind`` before ``step`` (0-based) of an env in process ``pid``."""

    kind: str
    pid: int
    step: int
    time: float  # time.time() just before the fault fired, seconds


class InjectedFault(RuntimeError):
    """The exception raised by a ``raise`` fault."""


class FaultInjector(gym.Wrapper):
    """Wrap ``env`` and inject faults in ``step()``.

    Args:
        env: the env to wrap.
        seed: base seed of the fault generator (mixed with the pid).
        p_exit, p_sigkill, p_sigsegv, p_hang, p_busy_hang, p_raise, p_slow: probability per
            step of ``os._exit(3)``, SIGKILL to self, a segfault (read of address 0), ``time.sleep`` forever,
            a busy loop forever (holds a core and the GIL between switches), ``InjectedFault``,
            and a slow step (sleep ``slow_s`` seconds, then step normally).
        slow_s: duration of a slow step, in seconds.
        schedule: ``[(step, kind), ...]`` fire-once faults (needs ``log_dir``).
        log_dir: folder for the injection log and schedule tokens (created if missing).
    """

    def __init__(
        self,
        env: gym.Env,
        seed: int = 0,
        p_exit: float = 0.0,
        p_sigkill: float = 0.0,
        p_sigsegv: float = 0.0,
        p_hang: float = 0.0,
        p_busy_hang: float = 0.0,
        p_raise: float = 0.0,
        p_slow: float = 0.0,
        slow_s: float = 0.5,
        schedule: list[tuple[int, str]] | None = None,
        log_dir: str | None = None,
    ):
        super().__init__(env)
        self._p = np.array([p_exit, p_sigkill, p_sigsegv, p_hang, p_busy_hang, p_raise, p_slow])
        if self._p.min() < 0 or self._p.sum() > 1:
            raise ValueError(f"fault probabilities must be >= 0 and sum to <= 1, got {self._p}")
        self._schedule = [(int(step), str(kind)) for step, kind in (schedule or [])]
        for _, kind in self._schedule:
            if kind not in KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; known: {KINDS}")
        if self._schedule and log_dir is None:
            raise ValueError("a fault schedule needs log_dir (fire-once tokens live there)")
        self._slow_s = float(slow_s)
        self._log_dir = log_dir
        if log_dir is not None:
            os.makedirs(log_dir, exist_ok=True)
        self._rng = np.random.default_rng([seed, os.getpid()])
        self._steps = 0

    @classmethod
    def from_config(cls, env: gym.Env, config: dict[str, Any]) -> "FaultInjector":
        """Build from a ``faults:`` config section, e.g. ``{"p_hang": 0.01, "seed": 1}``."""
        config = dict(config)
        if "schedule" in config:
            config["schedule"] = [tuple(entry) for entry in config["schedule"]]
        return cls(env, **config)

    def step(self, action):
        kind = self._scheduled_kind()
        if kind is None and self._p.any():
            draw = self._rng.random()
            cumulative = np.cumsum(self._p)
            index = int(np.searchsorted(cumulative, draw, side="right"))
            kind = KINDS[index] if index < len(KINDS) else None
        self._steps += 1
        if kind is not None:
            self._fire(kind)
        return self.env.step(action)

    def _scheduled_kind(self) -> str | None:
        for number, (step, kind) in enumerate(self._schedule):
            if step == self._steps and self._claim(number):
                return kind
        return None

    def _claim(self, number: int) -> bool:
        """True for the one env (in any process) that first claims schedule entry ``number``."""
        path = os.path.join(self._log_dir, f"claim-{number}")
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    def _fire(self, kind: str) -> None:
        if self._log_dir is not None:
            fd = os.open(os.path.join(self._log_dir, LOG_NAME), os.O_CREAT | os.O_APPEND | os.O_WRONLY)
            os.write(fd, f"{kind} {os.getpid()} {self._steps - 1} {time.time():.6f}\n".encode())
            os.close(fd)
        if kind == "exit":
            os._exit(3)
        elif kind == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif kind == "sigsegv":
            # A real invalid read, as a crashing native simulator would do (faulthandler, if
            # enabled, dumps a traceback and the process still dies of SIGSEGV).
            ctypes.string_at(0)
        elif kind == "hang":
            while True:
                time.sleep(3600)
        elif kind == "busy_hang":
            while True:
                pass
        elif kind == "raise":
            raise InjectedFault(f"injected fault at step {self._steps - 1} in pid {os.getpid()}")
        elif kind == "slow":
            time.sleep(self._slow_s)


@dataclass
class FaultyEnvFactory:
    """A picklable env factory: ``env_factory()`` wrapped in a ``FaultInjector(**faults)``."""

    env_factory: Callable[[], gym.Env]
    faults: dict[str, Any] = field(default_factory=dict)

    def __call__(self) -> gym.Env:
        return FaultInjector.from_config(self.env_factory(), self.faults)


def read_injections(log_dir: str) -> list[Injection]:
    """The injections logged in ``log_dir`` so far, oldest first."""
    path = os.path.join(log_dir, LOG_NAME)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [Injection(kind, int(pid), int(step), float(t)) for kind, pid, step, t in (line.split() for line in f)]
