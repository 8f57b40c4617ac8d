"""Benchmark settings without Custodia's session-lifetime middleware (accounts/sessions.py).

The baseline of the session-cost figure: Django's sessions and authentication as usual, but no
idle or absolute expiry and no session-list tracking. Never a configuration to run for real.
"""

from __future__ import annotations

from bench.settings import *  # noqa: F403

MIDDLEWARE = [
    name
    for name in MIDDLEWARE  # noqa: F405
    if name != "custodia.accounts.sessions.SessionLifetimeMiddleware"
]
