"""Ray rollout engine: env runners, the supervisor that keeps them alive, a fault-tolerant
vector env, fault injection and metrics. Only this layer (and the app) imports Ray.

Typical use (driver)::

    spec = RunnerSpec(env_factory, policy, envs_per_runner=4, fragment_length=64)
    with Supervisor(spec, num_runners=8) as sup:
        sup.set_weights(q_net_state)
        for fragment in sup:  # a small record; its arrays stay in the object store
            learner.add_fragment.remote(fragment)  # the learner fetches them (fragment.arrays())
"""

from firebreak.rollout.faults import FaultInjector, FaultyEnvFactory, InjectedFault, Injection, read_injections
from firebreak.rollout.fragment import EpisodeStats, Fragment, Transitions
from firebreak.rollout.metrics import RolloutMetrics
from firebreak.rollout.policy import Policy, RandomPolicy
from firebreak.rollout.restore_point import RestorePoint, create_restore_point
from firebreak.rollout.runner import EnvRunner, RunnerSpec, create_runner
from firebreak.rollout.supervisor import RolloutError, Supervisor
from firebreak.rollout.vector_env import RayVectorEnv

# The learner actor pulls in torch; runners with a non-torch policy and RayVectorEnv do not need it.
_LEARNER_NAMES = ("Learner", "create_learner")


def __getattr__(name: str):
    if name in _LEARNER_NAMES:
        from firebreak.rollout import learner

        return getattr(learner, name)
    raise AttributeError(f"module 'firebreak.rollout' has no attribute {name!r}")


__all__ = [
    "EnvRunner",
    "EpisodeStats",
    "FaultInjector",
    "FaultyEnvFactory",
    "Fragment",
    "InjectedFault",
    "Injection",
    "Learner",
    "Policy",
    "RandomPolicy",
    "RayVectorEnv",
    "RestorePoint",
    "RolloutError",
    "RolloutMetrics",
    "RunnerSpec",
    "Supervisor",
    "Transitions",
    "create_learner",
    "create_restore_point",
    "create_runner",
    "read_injections",
]
