"""The training driver: env runners feed a DQN learner; metrics, evaluation, checkpoints.

    cfg = load_config("ray_configs/local.yaml")
    summary = train(cfg)            # or: python train_ray.py --config ray_configs/local.yaml

The loop (DESIGN.md, "Data flow"): the supervisor keeps one ``sample`` call in flight per
runner and hands over whole fragments; each goes to the learner's replay; the learner then
runs the updates owed by the replay ratio; every ``weights_every`` updates one ``ray.put``
of the weights reaches every runner with its next call. A lost fragment is counted by the
supervisor and never replaced. Every learner call has a deadline (``learner.call_timeout_s``):
a hung or dead learner is restarted from the latest checkpoint (`_RemoteLearner`), its lost
updates counted. With ``rollout.runners: 0`` the same loop runs in this process
without Ray (breakpoints and profilers work). Ctrl-C or SIGTERM ends the loop without waiting
for the fragments in flight and writes a final checkpoint (``ray job stop`` SIGKILLs 3 s later).

Run folder ``<run.out_dir>/<run.name>/``: ``config.yaml`` (resolved), ``tb/`` (TensorBoard),
``checkpoints/{latest,best,step_<N>}.pt``, ``faults/`` (fault-injection log when enabled).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import time
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
from .env import OBSERVATION_LAYERS, FuelBreakEnv
from .evaluate import evaluate
from .landscape import load_landscapes, synthetic_landscape
from .placement import BASELINES

log = logging.getLogger("firebreak.train")


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
        self.restarts = self.hangs = self.lost_updates = 0
        self.restarted = False  # never: a crash here ends the process
        self._result: dict | None = None

    def info(self):
        return {"pid": os.getpid(), "device": self.learner.device, "restored": self.restored}

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
        return self.learner.state_dict()

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
    incarnation are gone with its replay; they are not resent."""

    def __init__(self, handle, restore_point=None, *, max_restarts: int = 3, call_timeout_s: float = 300.0,
                 restart_timeout_s: float = 900.0):
        self.handle, self.restore_point, self.max_restarts = handle, restore_point, max_restarts
        self.call_timeout_s, self.restart_timeout_s = call_timeout_s, restart_timeout_s
        self.restarts = self.hangs = self.lost_updates = 0
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
        self.updates = int(result["updates"])
        return result if "loss" in result else None

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

        if self._pending is None:
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

        if self.restore_point is not None:
            ray.get(self.restore_point.set.remote(state), timeout=self.restart_timeout_s)


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


class Evaluator:
    """Greedy evaluation on `run.eval_landscapes` (training tiles by default: it selects best.pt)
    against the baselines (computed once per run), on fires never trained on."""

    def __init__(self, cfg: Config):
        source, n = cfg.run.eval_landscapes, cfg.run.eval_tiles
        if source.startswith("synthetic:"):  # fixed tiles, seeds above the training range
            _, size, *kind = source.split(":")
            self.landscapes = [synthetic_landscape((int(size),) * 2, 2**31 + i, kind=(kind or ["mixed"])[0])
                               for i in range(n)]
        else:
            self.landscapes = load_landscapes(source)[:n]
        self.kwargs = {"budget": cfg.env.budget, "n_scenarios": cfg.run.eval_scenarios, "progress": False}
        self.baselines: dict[str, float] | None = None

    def __call__(self, policy: QPolicy) -> dict[str, float]:
        if self.baselines is None:
            results = evaluate(BASELINES, self.landscapes, **self.kwargs)
            self.untreated = float(np.mean(results["random"]["untreated"]))
            self.baselines = {name: float(np.mean(r["burned"])) for name, r in results.items()}
        greedy = {"dqn": lambda seed: (lambda env: policy.greedy(env.observation(), env.action_masks()))}
        burned = float(np.mean(evaluate(greedy, self.landscapes, **self.kwargs)["dqn"]["burned"]))
        best = min(v for k, v in self.baselines.items() if k != "random")
        out = {"eval/burned_fraction_dqn": burned, "eval/reduction_dqn": 1 - burned / self.untreated,
               "eval/ratio_vs_random": burned / self.baselines["random"], "eval/ratio_vs_best_heuristic": burned / best}
        out.update({f"eval/reduction_{k}": 1 - v / self.untreated for k, v in self.baselines.items()})
        return out


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


def train(cfg: Config, *, address: str | None = None, resume: str | None = None, progress: bool = True,
          ray_init_kwargs: dict | None = None) -> dict[str, Any]:
    """Train as `cfg` says; returns the summary (counters, faults, best evaluation, paths).

    address: ``"local"`` (a private Ray instance), ``"auto"`` (the running cluster, e.g. under
    ``ray job submit``) or ``"ray://host:10001"``; None: ``RAY_ADDRESS`` when set, else local.
    resume: a checkpoint path or ``"latest"`` (this run's latest.pt): continues its counters,
    epsilon, optimizer and target network; the replay is refilled, or reloaded when the run saved it
    (``learner.save_replay``).
    """
    from torch.utils.tensorboard import SummaryWriter

    run_dir = Path(cfg.run.out_dir) / cfg.run.name
    ckpt_dir = run_dir / "checkpoints"
    if resume == "latest":
        resume = str(ckpt_dir / "latest.pt")
    payload = load_checkpoint(resume) if resume else None
    env_kwargs = cfg.env.model_dump()
    obs_shape = FuelBreakEnv(**env_kwargs).observation_space.shape
    replay_layout = {"static_channels": FuelBreakEnv.static_channels,  # stored once per episode
                     "episode_steps": max(1, round(cfg.env.budget * obs_shape[1] * obs_shape[2]))}
    model = {"kind": cfg.learner.network, "kwargs": cfg.learner.network_kwargs, "obs_shape": list(obs_shape),
             "obs_layers": list(OBSERVATION_LAYERS)}
    if payload is not None:
        _check_resume(cfg, payload, model, resume)
        check_saved_replay(payload["learner"], dqn_config(cfg), obs_shape)  # fails here, not as a dead actor
    evaluator = Evaluator(cfg)  # a bad run.eval_landscapes fails here, before minutes of set-up
    # updates counts all gradient steps; pretrain_updates those on demonstrations before sampling;
    # lost_updates those a learner restart lost (run again: they count as not done)
    counters = {"env_steps": 0, "fragments": 0, "updates": 0, "pretrain_updates": 0, "lost_updates": 0,
                "episodes": 0, "train_seconds": 0.0, "best_eval_burned": math.inf}
    if payload is not None:
        counters.update({k: float(v) if k in ("train_seconds", "best_eval_burned") else int(v)
                         for k, v in payload["counters"].items() if k in counters})
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(), sort_keys=False))

    faults = None
    if cfg.faults.enabled:
        faults = {k: v for k, v in cfg.faults.model_dump().items() if k != "enabled"}
        faults["log_dir"] = str((run_dir / "faults").resolve())
    runners = cfg.rollout.runners
    started = time.monotonic()  # the time budget covers the warm start too
    deadline = started + (cfg.run.time_budget_s if cfg.run.time_budget_s is not None else math.inf)
    seconds_before = counters["train_seconds"]  # of the runs this one resumes
    stop = _Stop()
    started_ray = False
    learner = sampler = writer = bar = None
    final = None
    session_steps = 0
    recent_returns: list[float] = []
    latest_eval: dict[str, float] = {}
    info: dict = {}

    def checkpoint(name: str) -> Path:
        if name == "latest.pt" and cfg.learner.save_replay:  # before state_dict: the state names the file
            learner.save_replay((ckpt_dir / "latest.replay.npz").resolve())
        counters["train_seconds"] = seconds_before + time.monotonic() - started
        state = learner.state_dict()
        resync()  # the state may come from a learner restarted by that very call
        path = save_checkpoint(ckpt_dir / name, learner_state=state, model=model, config=cfg.model_dump(),
                               counters=dict(counters))
        if name == "latest.pt":
            learner.set_restore_point(state)
        return path

    lost_seen = [0]  # the learner's lost updates already in counters

    def resync() -> bool:
        """After a learner restart: take its update count and count the updates lost."""
        if not learner.restarted:
            return False
        learner.restarted = False
        counters["lost_updates"] += learner.lost_updates - lost_seen[0]
        lost_seen[0] = learner.lost_updates
        counters["updates"] = learner.updates
        return True

    try:  # on any error: actors, Ray, signal handlers and files are released as they were
        if runners > 0:
            import ray

            if not ray.is_initialized():
                address = address or ("auto" if os.environ.get("RAY_ADDRESS") else "local")
                kwargs = {"num_cpus": cfg.run.num_cpus} if address == "local" and cfg.run.num_cpus else {}
                ray.init(address=address, **{**kwargs, **(ray_init_kwargs or {})})
                stop.rearm()
                started_ray = True
            from .rollout import RunnerSpec, Supervisor
            from .rollout.learner import create_learner, create_restore_point

            _check_cpus(cfg, ray.cluster_resources().get("CPU", 0.0), strict=started_ray)
            # the expert episodes run before the runners exist: on 2 cores they need the CPUs
            demonstrations = _collect_demonstrations(cfg, env_kwargs, progress)
            if demonstrations:  # played before the learner starts: its first call's deadline does not cover them
                ray.wait(demonstrations, num_returns=len(demonstrations), fetch_local=False)
            restore_point = create_restore_point(payload["learner"] if payload is not None else None)
            learner = _RemoteLearner(create_learner(
                dqn_config(cfg), obs_shape, restore_point, cfg.run.seed, num_gpus=cfg.learner.num_gpus,
                num_cpus=cfg.learner.num_cpus, resources=cfg.learner.resources, max_restarts=cfg.learner.max_restarts,
                demonstrations=demonstrations, **replay_layout), restore_point, max_restarts=cfg.learner.max_restarts,
                call_timeout_s=cfg.learner.call_timeout_s,
                restart_timeout_s=cfg.learner.restart_timeout_s)
        else:
            learner = _LocalLearner(dqn_config(cfg), obs_shape, payload, cfg.run.seed,
                                    _collect_demonstrations(cfg, env_kwargs, progress), **replay_layout)
        info = learner.info()
        log.info("learner on %s (pid %s)%s", info["device"], info["pid"],
                 f", restored from {resume}" if info["restored"] else "")
        checkpoint("latest.pt")  # a learner restarted from here on has a checkpoint to reload
        # a resumed run's checkpoint already holds the pre-trained networks
        pretrain_metrics = {} if payload is not None else _pretrain(cfg, learner, deadline=deadline, stop=stop,
                                                                     progress=progress)
        if pretrain_metrics:
            resync()
            counters["updates"] = counters["pretrain_updates"] = int(pretrain_metrics["updates"])
            counters["lost_updates"] = lost_seen[0] = learner.lost_updates  # pre-training is not owed again
            checkpoint("latest.pt")
        if runners > 0:  # after pre-training: on 2 cores it needs the CPUs the runners take
            spec = RunnerSpec(
                env_factory=EnvFactory(env_kwargs, faults),
                policy_for_runner=lambda i: QPolicy(cfg.learner.network, cfg.learner.network_kwargs, obs_shape[0],
                                                    runner_index=i, num_runners=runners,
                                                    apex_alpha=cfg.exploration.apex_alpha),
                envs_per_runner=cfg.rollout.envs_per_runner, fragment_length=cfg.rollout.fragment_length,
                seed=cfg.run.seed + counters["fragments"] * 7919,  # a resumed run draws new episodes
                num_cpus=cfg.rollout.num_cpus_per_runner, resources=cfg.rollout.runner_resources,
                max_restarts=cfg.rollout.max_restarts, isolate_envs=cfg.rollout.isolate_envs)
            memory = None if cfg.rollout.memory_limit_mb is None else int(cfg.rollout.memory_limit_mb * 2**20)
            sampler = Supervisor(spec, runners, sample_timeout_s=cfg.rollout.sample_timeout_s,
                                 min_timeout_s=cfg.rollout.min_timeout_s, first_timeout_s=cfg.rollout.first_timeout_s,
                                 max_consecutive_failures=cfg.rollout.max_consecutive_failures, memory_limit_bytes=memory,
                                 stall_factor=cfg.rollout.stall_factor, stall_floor_s=cfg.rollout.stall_floor_s,
                                 spare_runners=cfg.rollout.spare_runners, chunk_length=cfg.rollout.chunk_length)
        else:
            sampler = _LocalSampler(EnvFactory(env_kwargs, faults),
                                    QPolicy(cfg.learner.network, cfg.learner.network_kwargs, obs_shape[0],
                                            torch_threads=None), cfg)
        writer = SummaryWriter(str(run_dir / "tb"))
        eval_policy = QPolicy(cfg.learner.network, cfg.learner.network_kwargs, obs_shape[0], epsilon=0.0,
                              torch_threads=None)
        total = cfg.run.total_env_steps
        epsilon = lambda: linear_schedule(cfg.exploration.epsilon_start, cfg.exploration.epsilon_end,
                                          cfg.exploration.decay_env_steps, counters["env_steps"])
        last = {"weights": counters["updates"], "eval": counters["env_steps"], "ckpt": counters["env_steps"]}
        metrics: dict[str, float] = {}
        if pretrain_metrics:
            for key in ("loss", "expert_loss", "q_mean", "td_error"):
                writer.add_scalar(f"pretrain/{key}", pretrain_metrics[key], 0)
        bar = tqdm(total=total, initial=min(counters["env_steps"], total), unit="step", desc="training",
                   disable=not progress, dynamic_ncols=True)

        def publish_weights():
            weights = learner.get_weights()
            sampler.set_weights({"weights": weights, "epsilon": epsilon()})
            last["weights"] = counters["updates"]
            return weights

        def run_eval(weights):
            eval_policy.set_weights({"weights": weights, "epsilon": 0.0})
            result = evaluator(eval_policy)
            for key, value in result.items():
                writer.add_scalar(key, value, counters["env_steps"])
            if result["eval/burned_fraction_dqn"] < counters["best_eval_burned"]:
                counters["best_eval_burned"] = result["eval/burned_fraction_dqn"]
                checkpoint("best.pt")
            return result

        def owed_updates(step: int) -> int:
            """Updates the replay ratio asks for by `step` and not yet run (pre-training and
            updates lost to a learner restart excluded: those are not run again)."""
            done = counters["updates"] - counters["pretrain_updates"] + counters["lost_updates"]
            return int(cfg.learner.replay_ratio * max(step - cfg.learner.learning_starts, 0)) - done

        weights = publish_weights()
        if pretrain_metrics:  # the warm-started policy is a candidate for best.pt too
            latest_eval = run_eval(weights)
        lag_limit = 2 * cfg.learner.replay_ratio * cfg.rollout.envs_per_runner * cfg.rollout.fragment_length
        train_started = time.monotonic()
        while counters["env_steps"] < total and not stop:
            if time.monotonic() >= deadline:
                stop.reason = "time budget"
                break
            fragment = stop.next_fragment(sampler)
            if fragment is None:
                break
            learner.add_fragment(fragment)
            counters["env_steps"] += fragment.num_steps
            counters["fragments"] += 1
            session_steps += fragment.num_steps
            step = counters["env_steps"]
            for episode in fragment.episodes:
                counters["episodes"] += 1
                recent_returns = (recent_returns + [episode.return_])[-50:]
                writer.add_scalar("episode/return", episode.return_, step)
                for key in ("burned_fraction", "baseline_burned_fraction", "relative_reduction"):
                    if key in episode.info:
                        writer.add_scalar(f"episode/{key}", episode.info[key], step)
            # Keep the replay ratio: one training call in flight; past two fragments' worth of
            # owed updates, wait for it instead of sampling further ahead of the learner.
            owed = owed_updates(step)
            done, result = learner.finished_train(wait=owed > lag_limit)
            if resync():  # the restarted learner has the checkpoint's weights: the runners get them now
                weights = publish_weights()
            if done:
                if result is not None:
                    rate = (result["updates"] - counters["updates"]) / max(time.monotonic() - train_started, 1e-9)
                    writer.add_scalar("learner/updates_per_s", rate, step)
                    counters["updates"] = int(result["updates"])
                    metrics = result
                    for key in ("loss", "q_mean", "td_error", "grad_norm", "replay_size", "beta", "expert_loss"):
                        if key in result:  # expert_loss: with demonstrations only
                            writer.add_scalar(f"learner/{key}", result[key], step)
                owed = owed_updates(step)
                if owed > 0:  # in chunks of two fragments' worth: each call stays well inside its deadline
                    train_started = time.monotonic()
                    learner.start_train(min(owed, max(int(lag_limit), 1)))
            if counters["updates"] - last["weights"] >= cfg.learner.weights_every:
                weights = publish_weights()
            elapsed = time.monotonic() - started
            writer.add_scalar("rollout/env_steps_per_s", session_steps / elapsed, step)
            writer.add_scalar("explore/epsilon", epsilon(), step)
            faults = sampler.stats()
            for key in ("hangs", "crashes", "env_errors", "restarts", "replacements", "recycled", "lost_steps",
                        "lost_fragments", "salvaged_steps", "spare_takeovers"):
                if key in faults:
                    writer.add_scalar(f"faults/{key}", faults[key], step)
            writer.add_scalar("faults/learner_restarts", learner.restarts, step)
            writer.add_scalar("faults/learner_hangs", learner.hangs, step)
            writer.add_scalar("faults/learner_lost_updates", counters["lost_updates"], step)
            if step - last["eval"] >= cfg.run.eval_every_env_steps:
                latest_eval = run_eval(weights)
                last["eval"] = step
            if step - last["ckpt"] >= cfg.run.checkpoint_every_env_steps:
                checkpoint("latest.pt")
                if cfg.run.keep_step_checkpoints:
                    checkpoint(f"step_{step}.pt")
                last["ckpt"] = step
            bar.update(min(fragment.num_steps, total - bar.n))
            bar.set_postfix(frag_s=f"{counters['fragments'] / max(elapsed, 1e-9):.1f}", eps=f"{epsilon():.2f}",
                            loss=f"{metrics.get('loss', math.nan):.3g}",
                            faults=int(sum(faults.get(k, 0) for k in ("hangs", "crashes", "env_errors"))))
        _, result = learner.finished_train(wait=True)
        resync()
        if result is not None:
            counters["updates"] = int(result["updates"])
        if stop.reason in (None, "time budget"):
            latest_eval = run_eval(learner.get_weights())
        final = checkpoint("latest.pt")
    finally:
        stop.restore()
        try:
            if bar is not None:
                bar.close()
            if writer is not None:
                writer.close()
            if final is None and learner is not None and counters["env_steps"] > 0:
                try:  # an error mid-run: keep what was learned
                    final = checkpoint("latest.pt")
                except Exception:  # the error being raised says more than this one
                    log.exception("could not write a final checkpoint")
            faults = sampler.stats() if sampler is not None else {}
            if sampler is not None:
                sampler.close()
        finally:
            if started_ray:
                import ray

                ray.shutdown()
            elif runners > 0 and learner is not None:  # a Ray instance the caller owns: release the actors
                import ray

                ray.kill(learner.handle)
                ray.kill(learner.restore_point)
    elapsed = time.monotonic() - started
    summary = {
        "run_dir": str(run_dir), "stopped_by": stop.reason, "env_steps": counters["env_steps"],
        "fragments": counters["fragments"], "updates": counters["updates"],
        "pretrain_updates": counters["pretrain_updates"], "episodes": counters["episodes"], "seconds": elapsed,
        "env_steps_per_s": session_steps / max(elapsed, 1e-9),
        "mean_return_last_50": float(np.mean(recent_returns)) if recent_returns else math.nan,
        "learner_device": info["device"], "learner_restarts": learner.restarts, "learner_hangs": learner.hangs,
        "learner_lost_updates": learner.lost_updates,
        "faults": {k: faults[k] for k in ("hangs", "crashes", "env_errors", "restarts", "replacements", "recycled",
                                          "lost_fragments", "lost_steps", "salvaged_steps", "spare_takeovers", "env_respawns")
                   if k in faults},
        "eval": latest_eval, "checkpoint": str(final),
    }
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """The end-of-run table."""
    rows = [("run folder", summary["run_dir"]), ("stopped by", summary["stopped_by"] or "step budget"),
            ("env steps", f"{summary['env_steps']:,}"), ("fragments", f"{summary['fragments']:,}"),
            ("updates", f"{summary['updates']:,} ({summary['pretrain_updates']:,} pre-training)"),
            ("episodes", f"{summary['episodes']:,}"),
            ("wall time", f"{summary['seconds']:.0f} s"), ("env steps/s", f"{summary['env_steps_per_s']:.1f}"),
            ("mean return (last 50)", f"{summary['mean_return_last_50']:.4f}"),
            ("learner", f"{summary['learner_device']}, {summary['learner_restarts']} restart(s) "
                        f"({summary['learner_hangs']} hung), {summary['learner_lost_updates']:,} update(s) lost")]
    rows += [(f"faults: {k}", str(v)) for k, v in summary["faults"].items()]
    rows += [(k, f"{v:.4f}") for k, v in summary["eval"].items()]
    rows.append(("checkpoint", summary["checkpoint"]))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def config_from_checkpoint(path: str | Path) -> Config:
    """The resolved config a checkpoint was trained with."""
    return config_from_dict(load_checkpoint(path)["config"], str(path))
