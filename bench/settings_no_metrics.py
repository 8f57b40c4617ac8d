"""Benchmark settings without the metrics middleware (telemetry/metrics.py).

The baseline of scenario 23: every request as usual, but not counted or timed. Never a
configuration to run for real.
"""

from __future__ import annotations

from bench.settings import *  # noqa: F403

MIDDLEWARE = [
    name
    for name in MIDDLEWARE  # noqa: F405
    if name != "custodia.web.middleware.MetricsMiddleware"
]
