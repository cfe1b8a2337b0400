"""`RestorePoint`: a small actor on the driver's node that holds the learner state a restarted
learner actor starts from (see `firebreak.rollout.learner`).

It holds the state as an ObjectRef inside a list, which Ray passes through without resolving:
the actor never unpickles the state's torch tensors, so its process never imports torch (~3 s
of CPU per learner started, on the 2-core test machine), and this module imports Ray only.
"""

from __future__ import annotations

import ray


@ray.remote(num_cpus=0)
class RestorePoint:
    """``[ref]`` of the learner state (`DQN.state_dict`) a restarted learner starts from; None: none yet."""

    def __init__(self, held: list | None = None):
        self.held = held

    def set(self, held: list) -> None:
        self.held = held

    def get(self) -> list | None:
        return self.held


def create_restore_point(state: dict | None = None):
    """A `RestorePoint` on this (the driver's) node, holding ``state``: it lives and dies with the driver."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    node = ray.get_runtime_context().get_node_id()
    held = None if state is None else [ray.put(state)]
    return RestorePoint.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(held)


def update_restore_point(restore_point, state: dict):
    """Make ``restore_point`` hold ``state`` (one ``ray.put`` here); returns the call's ObjectRef."""
    return restore_point.set.remote([ray.put(state)])


def restore_state(restore_point) -> dict | None:
    """The state ``restore_point`` holds (None: none yet); blocks until it is fetched."""
    held = ray.get(restore_point.get.remote())
    return None if held is None else ray.get(held[0])
