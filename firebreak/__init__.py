"""firebreak: learn where to place fuel breaks so simulated wildfires burn as little as possible."""

import gymnasium

__version__ = "0.1.0"

# Registering names the entry point only; firebreak.env is imported by gymnasium.make.
gymnasium.register(id="firebreak/FuelBreak-v0", entry_point="firebreak.env:FuelBreakEnv")
