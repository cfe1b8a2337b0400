"""DQN core: per-cell Q-networks, prioritized n-step replay, Double-DQN update, exploration.

Plain PyTorch and numpy, no Ray and no env imports: the learner runs on a GPU machine
alone, the rollout layer wraps these pieces in actors.
"""

from .algorithm import DQN
from .exploration import QPolicy, act, apex_epsilons, exponential_schedule, linear_schedule
from .networks import (
    Q_NETWORKS,
    BasicQNetwork,
    DuelingQNetwork,
    ResidualQNetwork,
    build_q_network,
    masked_argmax,
)
from .replay import PrioritizedReplayBuffer, ReplayBatch, SumTree
from .update import DQNConfig, DQNUpdate

__all__ = [
    "BasicQNetwork", "DQN", "DQNConfig", "DQNUpdate", "DuelingQNetwork", "PrioritizedReplayBuffer",
    "QPolicy", "Q_NETWORKS", "ReplayBatch", "ResidualQNetwork", "SumTree", "act", "apex_epsilons",
    "build_q_network", "exponential_schedule", "linear_schedule", "masked_argmax",
]
