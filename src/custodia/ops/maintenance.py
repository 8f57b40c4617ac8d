"""One round of a daily maintenance (`audit maintain`, `keys maintain`, `backup maintain`).

The scheduler that runs them daily and at start is the job worker's (ops/tasks.py, `custodia
worker`, which `custodia serve` starts); an operator may run a round by hand at any time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from django.core.management.base import CommandError
from django.db import DatabaseError


def run_round(name: str, steps: Sequence[Callable[[], object]], *, logger: logging.Logger) -> None:
    """Run each of `steps` once. A failing step is logged, and never stops the others."""
    for step in steps:
        try:
            step()
        except CommandError as exc:
            # Evidence of a problem (a broken chain, a missing key): loud, and go on.
            logger.error("%s: %s", name, exc)
        except DatabaseError as exc:
            logger.error("%s: database unavailable (%s)", name, type(exc).__name__)
