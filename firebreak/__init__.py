"""firebreak: learn where to place fuel breaks so simulated wildfires burn as little as possible."""

__version__ = "0.1.0"
