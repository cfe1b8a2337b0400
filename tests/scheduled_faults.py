"""A training env factory whose faults follow a fixed schedule (the config has probabilities only).

Its own module so that the runners unpickling it import nothing from the test modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from firebreak.train import EnvFactory


@dataclass
class ScheduledEnvFactory(EnvFactory):
    """`EnvFactory` with ``schedule`` ``[(step, kind), ...]`` added to its fault injection: each
    entry fires once, in the first env instance that reaches that step (`FaultInjector`)."""

    schedule: list = field(default_factory=list)

    def __post_init__(self):
        if self.faults is not None:
            self.faults = {**self.faults, "schedule": list(self.schedule)}
