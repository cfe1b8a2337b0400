"""firebreak: learn where to place fuel breaks so simulated wildfires burn as little as possible.

The package root imports nothing: the DQN core must load on a GPU machine without gymnasium or
Ray. `import firebreak.env` registers the gymnasium id ``firebreak/FuelBreak-v0``;
``gymnasium.make("firebreak.env:firebreak/FuelBreak-v0")`` imports it by itself.
"""

__version__ = "0.1.0"
