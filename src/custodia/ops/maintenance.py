"""The daily loops `custodia serve` runs beside the server (`audit maintain`, `keys maintain`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from django.core.management.base import CommandError
from django.db import DatabaseError, connections

DAY_SECONDS = 24 * 60 * 60
RETRY_SECONDS = 60 * 60


def run_daily(
    name: str, steps: Sequence[Callable[[], object]], *, once: bool, logger: logging.Logger
) -> None:
    """A round of `steps` now, then one a day. A failing step is logged (a database outage
    retried in an hour); it never stops the others or the server this runs beside."""
    while True:
        pause = DAY_SECONDS
        for step in steps:
            try:
                step()
            except CommandError as exc:
                # Evidence of a problem (a broken chain, a missing key): loud, and go on.
                logger.error("%s: %s", name, exc)
            except DatabaseError as exc:
                logger.error("%s: database unavailable (%s)", name, type(exc).__name__)
                pause = RETRY_SECONDS
        if once:
            return
        for alias in connections:  # a day is long: no idle connections meanwhile
            connections[alias].close()
        time.sleep(pause)
