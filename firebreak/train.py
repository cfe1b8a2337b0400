"""The training driver: env runners feed a DQN learner; metrics, evaluation, checkpoints.

    cfg = load_config("ray_configs/local.yaml")
    summary = train(cfg)            # or: python train_ray.py --config ray_configs/local.yaml

The loop (DESIGN.md, "Data flow"): the supervisor keeps one ``sample`` call in flight per
runner and hands over whole fragments; each goes to the learner's replay; the learner then
runs the updates owed by the replay ratio; every ``weights_every`` updates one ``ray.put``
of the weights reaches every runner with its next call. A lost fragment is counted by the
supervisor and never replaced. Every learner call has a deadline (``learner.call_timeout_s``):
a hung or dead learner is restarted from the latest checkpoint (`_RemoteLearner`), its lost
updates counted. Every ``run.eval_every_env_steps`` a greedy evaluation is launched as a Ray
task on the learner's current weights (`_Evaluations`): sampling and training go on while it
plays, and its result is logged at the env step it was launched at. With ``rollout.runners: 0``
the same loop runs in this process without Ray (breakpoints and profilers work), evaluation
included. Ctrl-C or SIGTERM ends the loop without waiting for the fragments in flight and writes
a final checkpoint (``ray job stop`` SIGKILLs 3 s later).

`train` reads top to bottom as the phases of one `_Run`: set-up (Ray, learner, pre-training,
runners, logs), the loop (sample, train, publish weights, log, evaluate, checkpoint), the end
(final evaluation and checkpoint) and the clean-up.

Run folder ``<run.out_dir>/<run.name>/``: ``config.yaml`` (resolved), ``tb/`` (TensorBoard),
``checkpoints/{latest,best,step_<N>}.pt``, ``faults/`` (fault-injection log when enabled).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
import signal
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm import tqdm

from .config import Config, ConfigError, config_from_dict
from .demonstrations import collect_demonstrations
from .dqn import DQNConfig, linear_schedule
from .dqn.checkpoint import load_checkpoint, save_checkpoint
from .dqn.algorithm import DQN, check_saved_replay
from .dqn.exploration import QPolicy
from .env import FuelBreakEnv, observation_layers
from .evaluate import eval_landscapes, evaluate
from .placement import BASELINES

log = logging.getLogger("firebreak.train")

#: Republish to the runners whenever epsilon has moved this much since they last got it.
EPSILON_STEP = 0.01
#: The rollout counters (`firebreak.rollout.metrics`) logged as ``faults/*`` and in the summary.
FAULT_COUNTERS = ("hangs", "crashes", "env_errors", "restarts", "replacements", "recycled", "lost_fragments",
                  "lost_steps", "salvaged_steps", "spare_takeovers", "env_respawns", "unavailable")


@dataclass
class EnvFactory:
    """Picklable: builds the configured `FuelBreakEnv`, wrapped in fault injection when enabled."""

    env: dict[str, Any]
    faults: dict[str, Any] | None = None

    def __call__(self):
        env = FuelBreakEnv(**self.env)
        if self.faults:
            from .rollout import FaultInjector

            env = FaultInjector.from_config(env, self.faults)
        return env


def dqn_config(cfg: Config) -> DQNConfig:
    """The `DQNConfig` fields of the learner section."""
    fields = DQNConfig.__dataclass_fields__
    return DQNConfig(**{k: v for k, v in cfg.learner.model_dump().items() if k in fields})


class _Stop:
    """Set by SIGTERM/SIGINT: the loop ends without waiting for the fragments in flight (`next_fragment`),
    then a checkpoint is written. ``ray job stop`` SIGKILLs 3 s after its SIGTERM
    (RAY_JOB_STOP_WAIT_TIME_S), and one fragment can take longer than that."""

    def __init__(self):
        self.reason: str | None = None
        self._previous = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)

    def rearm(self):
        """Take SIGTERM back from `ray.init`, which replaces its handler with ``sys.exit``."""
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        if self.reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.reason = signal.Signals(signum).name
        log.warning("%s received: writing a final checkpoint (the fragments in flight are not waited for)",
                    self.reason)

    def next_fragment(self, sampler, poll_s: float = 0.25):
        """The sampler's next fragment, or None once stopped (looked at every `poll_s` seconds)."""
        while not self:
            try:
                return sampler.next_fragment(timeout=poll_s)
            except TimeoutError:
                pass
        return None

    def restore(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def __bool__(self):
        return self.reason is not None


class _LocalLearner:
    """The learner in this process (rollout.runners: 0): training runs when it is started."""

    def __init__(self, config: DQNConfig, obs_shape, payload, seed, demonstrations=(), **replay_layout):
        self.learner = DQN(config, obs_shape, seed=seed, **replay_layout)
        for demonstration in demonstrations:
            self.learner.add_demonstration(**demonstration.arrays)
        self.restored = payload is not None
        if payload is not None:
            self.learner.load_state_dict(payload["learner"])
        self.restarts = self.hangs = self.lost_updates = self.lost_steps = 0  # its fragments are in this process
        self.restarted = False  # never: a crash here ends the process
        self._result: dict | None = None

    def info(self):
        return {"pid": os.getpid(), "device": self.learner.device, "restored": self.restored,
                "replay_size": len(self.learner.replay)}

    def add_fragment(self, f):
        f.arrays().add_to(self.learner)

    def pretrain(self, n):
        return self.learner.pretrain(n)

    def start_train(self, n):
        self._result = self.learner.train(n) if self.learner.can_train else None

    def finished_train(self, wait: bool = False) -> tuple[bool, dict | None]:
        result, self._result = self._result, None
        return True, result

    def get_weights(self):
        return self.learner.get_weights()

    def save_replay(self, path):
        self.learner.save_replay(path)

    def state_dict(self):
        """A copy (the live tensors change with the next update), as a remote learner's is."""
        return copy.deepcopy(self.learner.state_dict())

    def set_restore_point(self, state):
        pass


class _RemoteLearner:
    """The learner actor behind deadlines. Fragments and training calls are queued on it without
    waiting, so the runners keep sampling while it trains; calls run in submission order.

    Every call has a deadline (``call_timeout_s``): past it the learner is hung and is killed
    with ``ray.kill(no_restart=False)``. A dead or killed learner is restarted by Ray
    (max_restarts) and reloads the run's restore point (the latest checkpoint) and the
    demonstrations by itself; this wrapper then waits for the new incarnation (up to
    ``restart_timeout_s``), counts the updates it lost since that checkpoint, takes its update
    count and sets `restarted` for the driver to re-sync. Fragments queued on the dead
    incarnation are gone with its replay; they are not resent. `lost_steps`: env steps whose
    arrays the learner could not fetch (their runner's node died first), over all incarnations
    as far as their training results told."""

    def __init__(self, handle, restore_point=None, *, max_restarts: int = 3, call_timeout_s: float = 300.0,
                 restart_timeout_s: float = 900.0):
        self.handle, self.restore_point, self.max_restarts = handle, restore_point, max_restarts
        self.call_timeout_s, self.restart_timeout_s = call_timeout_s, restart_timeout_s
        self.restarts = self.hangs = self.lost_updates = 0
        self._lost_steps_before = self._lost_steps_now = 0  # of earlier incarnations; of this one
        self.restarted = False  # set by a restart, cleared by the driver once it has re-synced
        self._unavailable = False  # the last failure was ActorUnavailableError (transient)
        self._pending = None
        self._pending_since = 0.0
        self._added: list = []
        self.incarnation = None
        info = self._next_incarnation()  # start-up (a GPU node may still be booting): restart_timeout_s
        self.incarnation, self.updates = info["incarnation"], int(info["updates"])

    def _get(self, refs, what: str):
        """(True, value), or (False, None) after a failure: a hung learner is killed here."""
        import ray
        from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError

        try:
            return True, ray.get(refs, timeout=self.call_timeout_s)
        except GetTimeoutError:
            self._kill_hung(what)
        except ActorUnavailableError as err:  # transient: the same process may answer again
            self._unavailable = True
            log.warning("learner unreachable in %s (%s); waiting for it", what, str(err).splitlines()[0])
        except RayActorError as err:
            log.error("learner actor failed in %s (%s); Ray restarts it from the latest checkpoint",
                      what, str(err).splitlines()[0])
        return False, None

    def _kill_hung(self, what: str) -> None:
        import ray

        self.hangs += 1
        log.error("learner call %s passed its deadline (learner.call_timeout_s=%g s): killing the hung learner; "
                  "Ray restarts it from the latest checkpoint", what, self.call_timeout_s)
        ray.kill(self.handle, no_restart=False)

    def _recover(self) -> None:
        """Wait for the restarted learner; count the updates it lost; flag the restart."""
        self._pending, self._added = None, []
        if self._unavailable:  # reachable again as the same incarnation: no restart, nothing reloaded
            self._unavailable = False
            info = self._next_incarnation(same=True)
            if info["incarnation"] == self.incarnation:
                log.warning("learner reachable again (pid %s): not a restart; the call that failed is not resent",
                            info["pid"])
                return
        elif 0 <= self.max_restarts <= self.restarts:
            raise RuntimeError(f"the learner actor failed again after its learner.max_restarts={self.max_restarts} "
                               "restarts; see the log above (raise learner.max_restarts, or -1 for no limit)")
        else:
            info = self._next_incarnation()
        self.restarts += 1
        self.lost_updates += max(self.updates - int(info["updates"]), 0)
        self._lost_steps_before, self._lost_steps_now = self.lost_steps, 0
        log.warning("learner restarted (pid %s, %s): %d update(s) since the latest checkpoint lost, training "
                    "continues from %d", info["pid"], "restore point loaded" if info["restored"] else "no restore point",
                    max(self.updates - int(info["updates"]), 0), info["updates"])
        self.incarnation, self.updates, self.restarted = info["incarnation"], int(info["updates"]), True

    def _next_incarnation(self, same: bool = False) -> dict:
        """The info of the first incarnation other than `self.incarnation` (or any, `same`) to answer."""
        import ray
        from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError

        deadline = time.monotonic() + self.restart_timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"the learner actor did not start within learner.restart_timeout_s="
                                   f"{self.restart_timeout_s:g} s (no node may hold it: see `train_ray.py --check`); "
                                   "see the log above")
            try:
                info = ray.get(self.handle.info.remote(), timeout=remaining)
            except (RayActorError, ActorUnavailableError, GetTimeoutError):
                time.sleep(min(1.0, max(remaining, 0)))
                continue
            if same or info["incarnation"] != self.incarnation:
                return info
            time.sleep(0.2)  # ray.kill is asynchronous: the old incarnation may still answer

    def _result(self, result: dict) -> dict | None:
        """A training result, or None when it came from an incarnation this wrapper has not met
        (a restart between calls: recovered here) or the replay was not ready."""
        if result.get("incarnation") != self.incarnation:
            self._recover()
            return None
        self.updates, self._lost_steps_now = int(result["updates"]), int(result["lost_steps"])
        return result if "loss" in result else None

    @property
    def lost_steps(self) -> int:
        return self._lost_steps_before + self._lost_steps_now

    def _call(self, method: str, *args):
        for _ in range(3):
            ok, result = self._get(getattr(self.handle, method).remote(*args), method)
            if ok:
                return result
            self._recover()
        raise RuntimeError(f"the learner actor failed three times in a row in {method}; see the log above")

    def info(self):
        return self._call("info")

    def add_fragment(self, f):
        self._added.append(self.handle.add_fragment.remote(f))

    def pretrain(self, n):
        while True:
            result = self._call("pretrain", n)
            if result["incarnation"] == self.incarnation:
                self.updates = int(result["updates"])
                return result
            self._recover()

    def start_train(self, n):
        self._pending, self._pending_since = self.handle.train.remote(n), time.monotonic()

    def finished_train(self, wait: bool = False) -> tuple[bool, dict | None]:
        """(done, metrics or None): whether the last training call has returned (or failed:
        then done, None, and the learner is restarted)."""
        import ray

        if self._pending is None:  # (before learning_starts: no call yet) fragments may still have failed
            ready, self._added = ray.wait(self._added, num_returns=len(self._added), timeout=0) if self._added else ([], [])
            if ready and not self._get(ready, "add_fragment")[0]:
                self._recover()
            return True, None
        left = self._pending_since + self.call_timeout_s - time.monotonic()
        if not ray.wait([self._pending], timeout=max(left, 0) if wait else 0)[0]:
            if time.monotonic() < self._pending_since + self.call_timeout_s:
                return False, None
            self._kill_hung("train")
            self._recover()
            return True, None
        ok, _ = self._get(self._added, "add_fragment")  # done before it: surfaces a failure of the fragments
        if ok:
            ok, result = self._get(self._pending, "train")
        if not ok:
            self._recover()
            return True, None
        self._pending, self._added = None, []
        return True, self._result(result)

    def get_weights(self):
        return self._call("get_weights")

    def save_replay(self, path):
        self._call("save_replay", str(path))

    def state_dict(self):
        return self._call("state_dict")

    def set_restore_point(self, state):
        """What a restarted learner reloads: the state of the checkpoint just written."""
        import ray

        from .rollout.restore_point import update_restore_point

        if self.restore_point is not None:
            ray.get(update_restore_point(self.restore_point, state), timeout=self.restart_timeout_s)


class _LocalSampler:
    """`rollout.runners: 0`: one in-process runner, same fragments, no Ray."""

    def __init__(self, factory, policy, cfg: Config):
        from .rollout.runner import Runner

        self.runner = Runner(factory, policy, cfg.rollout.envs_per_runner, cfg.rollout.fragment_length,
                             cfg.run.seed, 0)
        self.weights = None

    def set_weights(self, weights):
        self.weights = weights

    def next_fragment(self, timeout=None):  # the fragment runs in this thread: no timeout
        weights, self.weights = self.weights, None
        return self.runner.sample(weights)

    def stats(self):
        return {}

    def close(self):
        pass


@dataclass
class Counters:
    """The run's progress; a checkpoint's ``counters`` (its keys are read back on --resume).

    `updates` counts every gradient step, `pretrain_updates` those on demonstrations before
    sampling, `lost_updates` those a learner restart lost (they count as done: not run again).
    `train_seconds` is wall time (s) of this run and those it resumes; `best_eval_burned` the lowest
    greedy burned fraction an evaluation has measured (best.pt's)."""

    env_steps: int = 0
    fragments: int = 0
    updates: int = 0
    pretrain_updates: int = 0
    lost_updates: int = 0
    episodes: int = 0
    train_seconds: float = 0.0
    best_eval_burned: float = math.inf

    @classmethod
    def from_checkpoint(cls, saved: dict) -> Counters:
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        return cls(**{k: type(defaults[k])(v) for k, v in saved.items() if k in defaults})


class Evaluator:
    """Greedy evaluation of Q-network weights on `run.eval_landscapes` against the baselines, on
    fires never trained on (`firebreak.evaluate`'s evaluation seeds). The default source is the
    training tiles: this evaluation selects best.pt, so the held-out tiles stay unseen.

    The source is read by `firebreak.evaluate.eval_landscapes` (the one parser: a
    ``synthetic:<size>`` source cycles its kinds, a ``sample:<size>`` source gives all its tiles
    unless a split is named); the first `run.eval_tiles` landscapes are kept. Picklable: it is
    sent once to the evaluation tasks."""

    def __init__(self, cfg: Config):
        source = cfg.run.eval_landscapes
        try:
            self.landscapes = eval_landscapes(source, split="all", n=cfg.run.eval_tiles)
        except ValueError as err:  # LandscapeError too
            raise ConfigError(f"run.eval_landscapes={source!r}: {err}") from None
        self.layers = observation_layers(cfg.env.fire_count_layer)  # what the network reads
        self.network = (cfg.learner.network, dict(cfg.learner.network_kwargs), len(self.layers))
        # no warm-up episodes: their only use is honest CPU seconds, which are not reported here
        self.kwargs = {"budget": cfg.env.budget, "n_scenarios": cfg.run.eval_scenarios, "progress": False,
                       "warm": False}

    def baselines(self) -> dict[str, Any]:
        """Mean burned fraction (share of burnable cells) untreated and with each baseline's breaks:
        ``{"untreated": float, "burned": {name: float}}``. The costly part: compute it once per run."""
        results = evaluate(BASELINES, self.landscapes, **self.kwargs)
        return {"untreated": float(np.mean(results["random"]["untreated"])),
                "burned": {name: float(np.mean(r["burned"])) for name, r in results.items()}}

    def __call__(self, weights: dict, baselines: dict | None = None,
                 torch_threads: int | None = None) -> tuple[dict[str, float], dict[str, Any]]:
        """(the ``eval/*`` metrics of the greedy policy of `weights`, the baselines used). The
        baselines (`baselines()`) are computed when not given: pass them back on the next call."""
        baselines = baselines or self.baselines()
        kind, kwargs, in_channels = self.network
        policy = QPolicy(kind, kwargs, in_channels, epsilon=0.0, torch_threads=torch_threads)
        policy.set_weights({"weights": weights, "epsilon": 0.0})
        greedy = {"dqn": lambda seed: (lambda env: policy.greedy(env.observation(self.layers), env.action_masks()))}
        burned = float(np.mean(evaluate(greedy, self.landscapes, **self.kwargs)["dqn"]["burned"]))
        untreated, others = baselines["untreated"], baselines["burned"]
        best = min(v for k, v in others.items() if k != "random")
        metrics = {"eval/burned_fraction_dqn": burned, "eval/reduction_dqn": 1 - burned / untreated,
                   "eval/ratio_vs_random": burned / others["random"], "eval/ratio_vs_best_heuristic": burned / best}
        metrics.update({f"eval/reduction_{k}": 1 - v / untreated for k, v in others.items()})
        return metrics, baselines


def _evaluation_task(evaluator: Evaluator, weights: dict, baselines: dict | None):
    """The body of an evaluation Ray task: `Evaluator.__call__` on one thread (it shares its node's
    cores with the runners)."""
    return evaluator(weights, baselines, torch_threads=1)


@dataclass
class _Launch:
    """One evaluation: launched at env step `step` on the learner `state` of that moment (its
    Q-network weights are what is evaluated; best.pt is written from this state and `counters`)."""

    step: int
    state: dict
    counters: Counters
    started: float  # time.monotonic() at the launch
    ref: Any = None  # the Ray task's ObjectRef; None when it ran in this process
    result: tuple | None = None  # in this process: (metrics, baselines)
    error: Exception | None = None  # in this process: what it raised


class _Evaluations:
    """The run's periodic evaluations, at most one at a time.

    With `remote`, each is a Ray task (`_evaluation_task`) on a ``ray.put`` of the weights, so the
    runners and the learner go on while it plays; it takes no CPU reservation (it borrows CPU time
    as the driver's evaluation did, rather than idle a reserved core between evaluations) and runs
    on the driver's node when it can. The first task also computes the baselines; they are kept
    and sent with every later task. A task past `timeout_s` (``run.eval_timeout_s``) is cancelled
    (its worker killed); a failed or cancelled one is logged and counted in `failed`, and training
    goes on. An evaluation due while one is still running is skipped (counted in `skipped`), never
    waited for. Without `remote` (``rollout.runners: 0``) it runs in this process at the launch."""

    def __init__(self, evaluator: Evaluator, *, timeout_s: float, remote: bool):
        self.evaluator, self.timeout_s, self.remote = evaluator, timeout_s, remote
        self.baselines: dict | None = None
        self.pending: _Launch | None = None
        self.last_step: int | None = None  # env step of the latest launch
        self.launched = self.done = self.failed = self.skipped = 0
        if remote:
            import ray
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            self._evaluator_ref = ray.put(evaluator)  # the landscapes travel once
            node = ray.get_runtime_context().get_node_id()
            self._task = ray.remote(_evaluation_task).options(
                num_cpus=0, max_retries=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=True))

    def launch(self, step: int, state: dict, counters: Counters) -> bool:
        """Start evaluating the Q-network of learner `state` (taken at env step `step`); False
        (skipped, counted) while the previous evaluation is still running."""
        if self.pending is not None:
            self.skipped += 1
            log.warning("evaluation due at env step %d skipped: the one launched at env step %d is still running "
                        "(raise run.eval_every_env_steps, or lower run.eval_tiles or run.eval_scenarios)",
                        step, self.pending.step)
            return False
        weights = {name: tensor.detach().cpu() for name, tensor in state["dqn"]["q_network"].items()}
        launch = _Launch(step, state, counters, time.monotonic())
        if self.remote:
            import ray

            launch.ref = self._task.remote(self._evaluator_ref, ray.put(weights), self.baselines)
        else:
            try:
                launch.result = self.evaluator(weights, self.baselines)
            except Exception as err:  # counted like a failed task; the traceback is logged in poll
                launch.error = err
        self.pending, self.last_step = launch, step
        self.launched += 1
        return True

    def poll(self, timeout_s: float = 0.0) -> tuple[_Launch, dict[str, float]] | None:
        """(the launch, its ``eval/*`` metrics) once the evaluation in flight has finished; None
        while none is or it is still running after waiting up to `timeout_s` seconds, and when it
        failed or passed its deadline (then it is logged, counted in `failed` and dropped)."""
        launch = self.pending
        if launch is None:
            return None
        if launch.ref is not None:
            import ray

            left = launch.started + self.timeout_s - time.monotonic()
            if not ray.wait([launch.ref], timeout=max(min(timeout_s, left), 0.0))[0]:
                if timeout_s < left:  # (ray.wait may return a little before its timeout)
                    return None
                ray.cancel(launch.ref, force=True)
                return self._failed(f"passed its deadline (run.eval_timeout_s={self.timeout_s:g} s) and was "
                                    "cancelled; raise run.eval_timeout_s or lower run.eval_tiles or run.eval_scenarios")
            try:
                launch.result = ray.get(launch.ref)
            except ray.exceptions.RayError as err:  # the task raised, or its worker died
                return self._failed(f"failed: {err}")
        elif launch.error is not None:
            return self._failed(f"failed: {launch.error!r}", exc_info=launch.error)
        self.pending = None
        self.done += 1
        metrics, self.baselines = launch.result
        return launch, metrics

    def _failed(self, why: str, exc_info=None) -> None:
        log.error("evaluation launched at env step %d %s; training goes on", self.pending.step, why, exc_info=exc_info)
        self.pending = None
        self.failed += 1
        return None

    def close(self) -> None:
        """Cancel the evaluation in flight (the run ends without its result)."""
        if self.pending is not None and self.pending.ref is not None:
            import ray

            log.info("evaluation launched at env step %d cancelled: the run ended", self.pending.step)
            ray.cancel(self.pending.ref, force=True)
        self.pending = None

    def stats(self) -> dict[str, int]:
        return {"launched": self.launched, "done": self.done, "failed": self.failed, "skipped": self.skipped}


def _check_cpus(cfg: Config, available: float, strict: bool) -> None:
    """Actors that cannot all be placed wait forever for a CPU (and the supervisor would keep
    replacing a runner that never starts): on a local instance that is a configuration error."""
    needed = (cfg.rollout.runners + cfg.rollout.spare_runners) * cfg.rollout.num_cpus_per_runner + cfg.learner.num_cpus
    if needed <= available:
        return
    spares = f" + spare_runners={cfg.rollout.spare_runners}" if cfg.rollout.spare_runners else ""
    message = (f"rollout.runners={cfg.rollout.runners}{spares} x rollout.num_cpus_per_runner="
               f"{cfg.rollout.num_cpus_per_runner:g} + learner.num_cpus={cfg.learner.num_cpus:g} = {needed:g} CPUs, "
               f"but this Ray cluster has {available:g}")
    if strict:
        raise ConfigError(f"{message}: lower rollout.runners or rollout.num_cpus_per_runner (fractions are fine, "
                          "e.g. 0.5), or set run.num_cpus")
    log.warning("%s now: the actors that do not fit wait until the autoscaler adds nodes", message)


def _collect_demonstrations(cfg: Config, env_kwargs: dict, progress: bool) -> list:
    """The expert episodes `cfg.demonstrations` asks for: with runners, ObjectRefs of Ray tasks
    (the learner actor fetches them; the driver never does), else `Demonstration`s played here."""
    if cfg.demonstrations.episodes == 0:
        return []
    return list(collect_demonstrations(env_kwargs, cfg.demonstrations.episodes,
                                       expert_scenarios=cfg.demonstrations.expert_scenarios,
                                       num_cpus=cfg.rollout.num_cpus_per_runner, use_ray=cfg.rollout.runners > 0,
                                       progress=progress))


def _pretrain(cfg: Config, learner, *, deadline: float, stop: _Stop, progress: bool) -> dict[str, float]:
    """`cfg.demonstrations.pretrain_updates` updates on the demonstrations, in chunks so that a
    stop signal or the time budget ends it; returns the last metrics (empty when none ran)."""
    total = cfg.demonstrations.pretrain_updates if cfg.demonstrations.episodes else 0
    metrics: dict[str, float] = {}
    bar = tqdm(total=total, desc="pre-training on demonstrations", unit="update", disable=not progress or not total,
               dynamic_ncols=True)
    done = 0
    while done < total and not stop and time.monotonic() < deadline:
        n = min(50, total - done)
        metrics = learner.pretrain(n)
        done += n
        bar.update(n)
        bar.set_postfix(loss=f"{metrics['loss']:.3g}", expert=f"{metrics['expert_loss']:.3g}")
    bar.close()
    if metrics:
        log.info("pre-trained %d updates on %d expert episodes: loss %.4g, expert-value loss %.4g", done,
                 cfg.demonstrations.episodes, metrics["loss"], metrics["expert_loss"])
    return metrics


def _check_resume(cfg: Config, payload: dict, model: dict, path: str) -> None:
    """A checkpoint's networks load only into the network it was trained with."""
    differ = [f"learner.{key} (checkpoint {payload['model'].get(name)!r}, config {model[name]!r})"
              for key, name in (("network", "kind"), ("network_kwargs", "kwargs"))
              if payload["model"].get(name) != model[name]]
    differ += [f"{key} (checkpoint {payload['model'].get(key)!r}, config {model[key]!r})"
               for key in ("obs_shape", "obs_layers") if list(payload["model"].get(key) or []) != model[key]]
    if differ:
        raise ConfigError(f"{path}: cannot resume, the network differs: {'; '.join(differ)}. Resume without "
                          "--config (the checkpoint's own config is used) or set those keys as the checkpoint has them")


class _Run:
    """One training run: its state and the phases `train` calls in order.

    The constructor does everything that needs no Ray and can fail fast (the resume checkpoint,
    the evaluation source, the run folder); the signal handlers are installed last, so a failure
    there leaves them alone. `close` releases whatever was started, after an error too."""

    def __init__(self, cfg: Config, resume: str | None):
        self.cfg = cfg
        self.run_dir = Path(cfg.run.out_dir) / cfg.run.name
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.resume = str(self.ckpt_dir / "latest.pt") if resume == "latest" else resume
        self.payload = load_checkpoint(self.resume) if self.resume else None
        self.env_kwargs = cfg.env.model_dump()
        env = FuelBreakEnv(**self.env_kwargs)
        self.obs_shape = env.observation_space.shape
        self.replay_layout = {"static_channels": env.static_channels,  # stored once per episode
                              "episode_steps": max(1, round(cfg.env.budget * self.obs_shape[1] * self.obs_shape[2]))}
        self.model = {"kind": cfg.learner.network, "kwargs": cfg.learner.network_kwargs,
                      "obs_shape": list(self.obs_shape), "obs_layers": list(env.observation_layers)}
        if self.payload is not None:
            _check_resume(cfg, self.payload, self.model, self.resume)
            check_saved_replay(self.payload["learner"], dqn_config(cfg), self.obs_shape,  # here, not as a dead actor
                               **self.replay_layout)
        self.evaluator = Evaluator(cfg)  # a bad run.eval_landscapes fails here, before minutes of set-up
        self.counters = Counters.from_checkpoint(self.payload["counters"]) if self.payload else Counters()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(), sort_keys=False))
        self.faults = None
        if cfg.faults.enabled:
            self.faults = {k: v for k, v in cfg.faults.model_dump().items() if k != "enabled"}
            self.faults["log_dir"] = str((self.run_dir / "faults").resolve())

        self.started = time.monotonic()  # the time budget covers the warm start too
        self.deadline = self.started + (cfg.run.time_budget_s if cfg.run.time_budget_s is not None else math.inf)
        self.seconds_before = self.counters.train_seconds  # of the runs this one resumes
        self.started_ray = False
        self.learner = self.sampler = self.writer = self.bar = self.evals = None
        self.learner_info: dict = {}
        self.pretrain_metrics: dict[str, float] = {}
        self.metrics: dict[str, float] = {}  # the latest training call's
        self.latest_eval: dict[str, float] = {}
        self.final: Path | None = None
        self.session_steps = 0  # env steps sampled by this session (not those it resumes)
        self.ratio_start = (0, 0, 0)  # updates, lost updates, replay size where the replay ratio counts from
        self.recent_returns: deque[float] = deque(maxlen=50)
        self.sampler_stats: dict = {}
        self.lost_seen = 0  # the learner's lost updates already in counters
        self.last_weights = self.last_eval = self.last_ckpt = self.counters.env_steps
        self.last_epsilon = math.nan  # the epsilon the runners last received
        self.train_started = time.monotonic()  # of the training call in flight (updates/s)
        self.stop = _Stop()

    # --- set-up ---------------------------------------------------------------------------------

    @property
    def runners(self) -> int:
        return self.cfg.rollout.runners

    def connect(self, address: str | None, ray_init_kwargs: dict | None) -> None:
        """Join or start Ray (not with rollout.runners: 0) and check that the actors fit it."""
        if self.runners == 0:
            return
        import ray

        if not ray.is_initialized():
            address = address or ("auto" if os.environ.get("RAY_ADDRESS") else "local")
            kwargs = {"num_cpus": self.cfg.run.num_cpus} if address == "local" and self.cfg.run.num_cpus else {}
            ray.init(address=address, **{**kwargs, **(ray_init_kwargs or {})})
            self.stop.rearm()
            self.started_ray = True
        _check_cpus(self.cfg, ray.cluster_resources().get("CPU", 0.0), strict=self.started_ray)

    def start_learner(self, progress: bool) -> None:
        """The demonstrations, then the learner (an actor behind deadlines, or in this process),
        then latest.pt: a learner restarted from here on has a checkpoint to reload."""
        cfg = self.cfg
        saved = self.payload["learner"] if self.payload is not None else None
        if self.runners > 0:
            import ray

            from .rollout.learner import create_learner
            from .rollout.restore_point import create_restore_point

            # the expert episodes run before the runners exist: on 2 cores they need the CPUs
            demonstrations = _collect_demonstrations(cfg, self.env_kwargs, progress)
            if demonstrations:  # played before the learner starts: its first call's deadline does not cover them
                ray.wait(demonstrations, num_returns=len(demonstrations), fetch_local=False)
            restore_point = create_restore_point(saved)
            handle = create_learner(
                dqn_config(cfg), self.obs_shape, restore_point, cfg.run.seed, num_gpus=cfg.learner.num_gpus,
                num_cpus=cfg.learner.num_cpus, resources=cfg.learner.resources, max_restarts=cfg.learner.max_restarts,
                demonstrations=demonstrations, **self.replay_layout)
            self.learner = _RemoteLearner(handle, restore_point, max_restarts=cfg.learner.max_restarts,
                                          call_timeout_s=cfg.learner.call_timeout_s,
                                          restart_timeout_s=cfg.learner.restart_timeout_s)
        else:
            self.learner = _LocalLearner(dqn_config(cfg), self.obs_shape, self.payload, cfg.run.seed,
                                         _collect_demonstrations(cfg, self.env_kwargs, progress), **self.replay_layout)
        self.learner_info = self.learner.info()
        log.info("learner on %s (pid %s)%s", self.learner_info["device"], self.learner_info["pid"],
                 f", restored from {self.resume}" if self.learner_info["restored"] else "")
        self.checkpoint("latest.pt")

    def pretrain(self, progress: bool) -> None:
        """Pre-train on the demonstrations (a fresh run only: a resumed run's checkpoint holds the
        pre-trained networks), then write latest.pt."""
        if self.payload is None:
            self.pretrain_metrics = _pretrain(self.cfg, self.learner, deadline=self.deadline, stop=self.stop,
                                              progress=progress)
        if self.pretrain_metrics:
            self.resync()
            self.counters.updates = self.counters.pretrain_updates = int(self.pretrain_metrics["updates"])
            self.counters.lost_updates = self.lost_seen = self.learner.lost_updates  # not owed again
            self.checkpoint("latest.pt")
        # the replay ratio counts from here (pre-training, and what a resumed run did, are not owed)
        self.ratio_start = (self.counters.updates, self.counters.lost_updates, self.learner_info["replay_size"])

    def start_sampler(self) -> None:
        """The env runners under a `Supervisor` (after pre-training: on 2 cores it needs the CPUs
        the runners take), or one runner in this process."""
        cfg, obs_channels = self.cfg, self.obs_shape[0]
        factory = EnvFactory(self.env_kwargs, self.faults)
        if self.runners == 0:
            self.sampler = _LocalSampler(factory, QPolicy(cfg.learner.network, cfg.learner.network_kwargs,
                                                          obs_channels, torch_threads=None), cfg)
            return
        from .rollout import RunnerSpec, Supervisor

        spec = RunnerSpec(
            env_factory=factory,
            policy_for_runner=lambda i: QPolicy(cfg.learner.network, cfg.learner.network_kwargs, obs_channels,
                                                runner_index=i, num_runners=cfg.rollout.runners,
                                                apex_alpha=cfg.exploration.apex_alpha),
            envs_per_runner=cfg.rollout.envs_per_runner, fragment_length=cfg.rollout.fragment_length,
            seed=cfg.run.seed + self.counters.fragments * 7919,  # a resumed run draws new episodes
            num_cpus=cfg.rollout.num_cpus_per_runner, resources=cfg.rollout.runner_resources,
            max_restarts=cfg.rollout.max_restarts, isolate_envs=cfg.rollout.isolate_envs)
        memory = None if cfg.rollout.memory_limit_mb is None else int(cfg.rollout.memory_limit_mb * 2**20)
        self.sampler = Supervisor(spec, cfg.rollout.runners, sample_timeout_s=cfg.rollout.sample_timeout_s,
                                  min_timeout_s=cfg.rollout.min_timeout_s, first_timeout_s=cfg.rollout.first_timeout_s,
                                  restart_timeout_s=cfg.rollout.restart_timeout_s,
                                  max_consecutive_failures=cfg.rollout.max_consecutive_failures,
                                  memory_limit_bytes=memory, stall_factor=cfg.rollout.stall_factor,
                                  stall_floor_s=cfg.rollout.stall_floor_s, spare_runners=cfg.rollout.spare_runners,
                                  chunk_length=cfg.rollout.chunk_length)

    def start_logging(self, progress: bool) -> None:
        """TensorBoard, the evaluations and the progress bar."""
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.run_dir / "tb"))
        if self.pretrain_metrics:
            for key in ("loss", "expert_loss", "q_mean", "td_error"):
                self.writer.add_scalar(f"pretrain/{key}", self.pretrain_metrics[key], 0)
        self.evals = _Evaluations(self.evaluator, timeout_s=self.cfg.run.eval_timeout_s, remote=self.runners > 0)
        total = self.cfg.run.total_env_steps
        self.bar = tqdm(total=total, initial=min(self.counters.env_steps, total), unit="step", desc="training",
                        disable=not progress, dynamic_ncols=True)

    # --- the loop -------------------------------------------------------------------------------

    @property
    def epsilon(self) -> float:
        x = self.cfg.exploration
        return linear_schedule(x.epsilon_start, x.epsilon_end, x.decay_env_steps, self.counters.env_steps)

    def running(self) -> bool:
        """Whether to sample another fragment: not at the step budget, the time budget or a stop signal."""
        if self.stop or self.counters.env_steps >= self.cfg.run.total_env_steps:
            return False
        if time.monotonic() >= self.deadline:
            self.stop.reason = "time budget"
            return False
        return True

    def record(self, fragment) -> None:
        """Count a fragment and log its finished episodes."""
        c = self.counters
        c.env_steps += fragment.num_steps
        c.fragments += 1
        self.session_steps += fragment.num_steps
        for episode in fragment.episodes:
            c.episodes += 1
            self.recent_returns.append(episode.return_)
            self.writer.add_scalar("episode/return", episode.return_, c.env_steps)
            for key in ("burned_fraction", "baseline_burned_fraction", "relative_reduction"):
                if key in episode.info:
                    self.writer.add_scalar(f"episode/{key}", episode.info[key], c.env_steps)
        self.bar.update(min(fragment.num_steps, self.bar.total - self.bar.n))

    def owed_updates(self) -> int:
        """Updates the replay ratio asks for by now and not yet run: `replay_ratio` per transition
        this session added to the replay past its first `learning_starts` (counting those a resumed
        run reloaded: one that refills its replay first waits for it, as the learner does).
        Updates lost to a learner restart count as run (they are not run again)."""
        c, learner = self.counters, self.cfg.learner
        updates, lost, replay = self.ratio_start
        ready = lambda size: max(size - learner.learning_starts, 0)  # transitions past learning_starts
        done = c.updates - updates + c.lost_updates - lost
        return int(learner.replay_ratio * (ready(replay + self.session_steps) - ready(replay))) - done

    def train_step(self) -> None:
        """Keep the replay ratio with one training call in flight: take the finished call's
        metrics and start the next. Past two fragments' worth of owed updates, wait for the call
        (up to its deadline) instead of sampling further ahead of the learner."""
        cfg, step = self.cfg, self.counters.env_steps
        lag_limit = 2 * cfg.learner.replay_ratio * cfg.rollout.envs_per_runner * cfg.rollout.fragment_length
        done, result = self.learner.finished_train(wait=self.owed_updates() > lag_limit)
        if self.resync():  # the restarted learner has the checkpoint's weights: the runners get them now
            self.publish_weights()
        if not done:
            return
        if result is not None:
            rate = (result["updates"] - self.counters.updates) / max(time.monotonic() - self.train_started, 1e-9)
            self.writer.add_scalar("learner/updates_per_s", rate, step)
            self.counters.updates = int(result["updates"])
            self.metrics = result
            for key in ("loss", "q_mean", "td_error", "grad_norm", "replay_size", "beta", "expert_loss"):
                if key in result:  # expert_loss: with demonstrations only
                    self.writer.add_scalar(f"learner/{key}", result[key], step)
        owed = self.owed_updates()
        if owed > 0:  # in chunks of two fragments' worth: each call stays well inside its deadline
            self.train_started = time.monotonic()
            self.learner.start_train(min(owed, max(int(lag_limit), 1)))

    def publish_weights(self) -> None:
        """One copy of the learner's weights and the current epsilon to every runner."""
        self.sampler.set_weights({"weights": self.learner.get_weights(), "epsilon": self.epsilon})
        self.last_weights, self.last_epsilon = self.counters.updates, self.epsilon

    def publish_weights_if_due(self) -> None:
        """Every `weights_every` updates, and whenever epsilon has moved by `EPSILON_STEP` since
        (before learning_starts no update runs, but the schedule, in env steps, goes on)."""
        if (self.counters.updates - self.last_weights >= self.cfg.learner.weights_every
                or abs(self.epsilon - self.last_epsilon) >= EPSILON_STEP):
            self.publish_weights()

    def log_progress(self) -> None:
        """Throughput, epsilon and fault counts at the current env step; the progress bar."""
        w, step, elapsed = self.writer, self.counters.env_steps, time.monotonic() - self.started
        w.add_scalar("rollout/env_steps_per_s", self.session_steps / elapsed, step)
        w.add_scalar("explore/epsilon", self.epsilon, step)
        faults = self.sampler.stats()
        for key in FAULT_COUNTERS:
            if key in faults:
                w.add_scalar(f"faults/{key}", faults[key], step)
        w.add_scalar("faults/learner_restarts", self.learner.restarts, step)
        w.add_scalar("faults/learner_hangs", self.learner.hangs, step)
        w.add_scalar("faults/learner_lost_updates", self.counters.lost_updates, step)
        w.add_scalar("faults/learner_lost_steps", self.learner.lost_steps, step)
        w.add_scalar("faults/eval_failures", self.evals.failed, step)
        w.add_scalar("eval/skipped", self.evals.skipped, step)
        self.bar.set_postfix(frag_s=f"{self.counters.fragments / max(elapsed, 1e-9):.1f}", eps=f"{self.epsilon:.2f}",
                             loss=f"{self.metrics.get('loss', math.nan):.3g}",
                             faults=int(sum(faults.get(k, 0) for k in ("hangs", "crashes", "env_errors"))))

    def launch_eval(self) -> None:
        """Evaluate the learner's network as it is now, at the current env step: in the background
        with runners (`collect_eval` takes the result later), else here and now."""
        state, counters = self.snapshot()
        self.evals.launch(self.counters.env_steps, state, counters)
        self.last_eval = self.counters.env_steps
        self.collect_eval()  # in this process it has finished already

    def collect_eval(self, wait_s: float = 0.0) -> None:
        """Log a finished evaluation at the env step it was launched at (its lag, in env steps,
        too) and write best.pt from the evaluated state when it is the best so far."""
        done = self.evals.poll(wait_s)
        if done is None:
            return
        launch, metrics = done
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, launch.step)
        self.writer.add_scalar("eval/lag_env_steps", self.counters.env_steps - launch.step, launch.step)
        self.latest_eval = metrics
        burned = metrics["eval/burned_fraction_dqn"]
        if burned < self.counters.best_eval_burned:
            self.counters.best_eval_burned = launch.counters.best_eval_burned = burned
            self._save("best.pt", launch.state, launch.counters)

    def evaluate_if_due(self) -> None:
        self.collect_eval()
        if self.counters.env_steps - self.last_eval >= self.cfg.run.eval_every_env_steps:
            self.launch_eval()

    def checkpoint_if_due(self) -> None:
        step = self.counters.env_steps
        if step - self.last_ckpt >= self.cfg.run.checkpoint_every_env_steps:
            self.checkpoint("latest.pt")
            if self.cfg.run.keep_step_checkpoints:
                self.checkpoint(f"step_{step}.pt")
            self.last_ckpt = step

    # --- learner state --------------------------------------------------------------------------

    def resync(self) -> bool:
        """After a learner restart: take its update count and count the updates it lost."""
        if not self.learner.restarted:
            return False
        self.learner.restarted = False
        self.counters.lost_updates += self.learner.lost_updates - self.lost_seen
        self.lost_seen = self.learner.lost_updates
        self.counters.updates = self.learner.updates
        return True

    def snapshot(self) -> tuple[dict, Counters]:
        """The learner's state now and a copy of the counters that go with it."""
        self.counters.train_seconds = self.seconds_before + time.monotonic() - self.started
        state = self.learner.state_dict()
        self.resync()  # the state may come from a learner restarted by that very call
        return state, dataclasses.replace(self.counters)

    def checkpoint(self, name: str) -> Path:
        """checkpoints/<name> from the learner's state now; latest.pt also becomes the restore point
        of a restarted learner (and saves the replay beside it with learner.save_replay)."""
        if name == "latest.pt" and self.cfg.learner.save_replay:  # before state_dict: the state names the file
            self.learner.save_replay((self.ckpt_dir / "latest.replay.npz").resolve())
        state, counters = self.snapshot()
        path = self._save(name, state, counters)
        if name == "latest.pt":
            self.learner.set_restore_point(state)
        return path

    def _save(self, name: str, state: dict, counters: Counters) -> Path:
        return save_checkpoint(self.ckpt_dir / name, learner_state=state, model=self.model,
                               config=self.cfg.model_dump(), counters=dataclasses.asdict(counters))

    # --- the end --------------------------------------------------------------------------------

    def finish(self) -> None:
        """Take the last training call; unless a stop signal ended the run, await the evaluation in
        flight and a final one (unless one was launched at this env step; each up to
        run.eval_timeout_s); write the final latest.pt."""
        _, result = self.learner.finished_train(wait=True)
        self.resync()
        if result is not None:
            self.counters.updates = int(result["updates"])
        if self.stop.reason in (None, "time budget"):
            timeout = self.cfg.run.eval_timeout_s
            self.collect_eval(timeout)
            if self.evals.last_step != self.counters.env_steps:  # not twice at one step
                self.launch_eval()
                self.collect_eval(timeout)
        else:  # SIGTERM: Ray's stop window is seconds; keep a finished result, cancel one in flight
            self.collect_eval()
        self.final = self.checkpoint("latest.pt")

    def close(self) -> None:
        """Release what was started, as it was before; after an error mid-run, first keep what was
        learned in latest.pt."""
        self.stop.restore()
        try:
            if self.bar is not None:
                self.bar.close()
            if self.writer is not None:
                self.writer.close()
            if self.final is None and self.learner is not None and self.counters.env_steps > 0:
                try:
                    self.final = self.checkpoint("latest.pt")
                except Exception:  # the error being raised says more than this one
                    log.exception("could not write a final checkpoint")
            if self.sampler is not None:
                self.sampler_stats = self.sampler.stats()
                self.sampler.close()
        finally:
            if self.evals is not None:
                self.evals.close()
            if self.started_ray:
                import ray

                ray.shutdown()
            elif self.runners > 0 and self.learner is not None:  # a Ray instance the caller owns: release the actors
                import ray

                ray.kill(self.learner.handle)
                ray.kill(self.learner.restore_point)

    def summary(self) -> dict[str, Any]:
        """Counters, rates, faults, the latest evaluation and the final checkpoint's path."""
        c, elapsed, faults = self.counters, time.monotonic() - self.started, self.sampler_stats
        return {
            "run_dir": str(self.run_dir), "stopped_by": self.stop.reason, "env_steps": c.env_steps,
            "fragments": c.fragments, "updates": c.updates, "pretrain_updates": c.pretrain_updates,
            "episodes": c.episodes, "seconds": elapsed, "env_steps_per_s": self.session_steps / max(elapsed, 1e-9),
            "mean_return_last_50": float(np.mean(self.recent_returns)) if self.recent_returns else math.nan,
            "learner_device": self.learner_info["device"], "learner_restarts": self.learner.restarts,
            "learner_hangs": self.learner.hangs, "learner_lost_updates": self.learner.lost_updates,
            "learner_lost_steps": self.learner.lost_steps,
            "faults": {k: faults[k] for k in FAULT_COUNTERS if k in faults},
            "eval": self.latest_eval, "evaluations": self.evals.stats(), "checkpoint": str(self.final),
        }


def train(cfg: Config, *, address: str | None = None, resume: str | None = None, progress: bool = True,
          ray_init_kwargs: dict | None = None) -> dict[str, Any]:
    """Train as `cfg` says; returns the summary (counters, faults, latest evaluation, paths).

    address: ``"local"`` (a private Ray instance), ``"auto"`` (the running cluster, e.g. under
    ``ray job submit``) or ``"ray://host:10001"``; None: ``RAY_ADDRESS`` when set, else local.
    resume: a checkpoint path or ``"latest"`` (this run's latest.pt): continues its counters,
    epsilon, optimizer and target network; the replay is refilled, or reloaded when the run saved it
    (``learner.save_replay``). ray_init_kwargs: extra `ray.init` arguments when it starts Ray.
    """
    run = _Run(cfg, resume)
    try:  # on any error: actors, Ray, signal handlers and files are released as they were
        run.connect(address, ray_init_kwargs)
        run.start_learner(progress)
        run.pretrain(progress)
        run.start_sampler()
        run.start_logging(progress)
        run.publish_weights()
        if run.pretrain_metrics:  # the warm-started policy is a candidate for best.pt too
            run.launch_eval()
        while run.running():
            fragment = run.stop.next_fragment(run.sampler)  # None: a stop signal came meanwhile
            if fragment is None:
                break
            run.learner.add_fragment(fragment)
            run.record(fragment)
            run.train_step()
            run.publish_weights_if_due()
            run.log_progress()
            run.evaluate_if_due()
            run.checkpoint_if_due()
        run.finish()
    finally:
        run.close()
    return run.summary()


def format_summary(summary: dict[str, Any]) -> str:
    """The end-of-run table."""
    rows = [("run folder", summary["run_dir"]), ("stopped by", summary["stopped_by"] or "step budget"),
            ("env steps", f"{summary['env_steps']:,}"), ("fragments", f"{summary['fragments']:,}"),
            ("updates", f"{summary['updates']:,} ({summary['pretrain_updates']:,} pre-training)"),
            ("episodes", f"{summary['episodes']:,}"),
            ("wall time", f"{summary['seconds']:.0f} s"), ("env steps/s", f"{summary['env_steps_per_s']:.1f}"),
            ("mean return (last 50)", f"{summary['mean_return_last_50']:.4f}"),
            ("learner", f"{summary['learner_device']}, {summary['learner_restarts']} restart(s) "
                        f"({summary['learner_hangs']} hung), {summary['learner_lost_updates']:,} update(s) lost, "
                        f"{summary['learner_lost_steps']:,} env step(s) whose arrays it could not fetch")]
    rows += [(f"faults: {k}", str(v)) for k, v in summary["faults"].items()]
    evals = summary["evaluations"]
    rows.append(("evaluations", f"{evals['done']} done, {evals['failed']} failed, {evals['skipped']} skipped"))
    rows += [(k, f"{v:.4f}") for k, v in summary["eval"].items()]
    rows.append(("checkpoint", summary["checkpoint"]))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def config_from_checkpoint(path: str | Path) -> Config:
    """The resolved config a checkpoint was trained with."""
    return config_from_dict(load_checkpoint(path)["config"], str(path))
