"""Test-session settings that must hold before any test starts Ray."""

import os

# Every Ray instance the tests start is private and loopback-only. With RAY_AUTH_MODE unset,
# Ray 2.60's first local `ray.init()` switches this *process* to token auth for good (it sets
# os.environ["RAY_AUTH_MODE"] = "token" and writes ~/.ray/auth_token), and every later instance
# of the session then mixes token and no-token processes: GCS clients are refused
# (InvalidAuthToken) and actors never start. One mode for the whole session: disabled.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
