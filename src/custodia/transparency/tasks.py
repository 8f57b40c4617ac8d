"""The daily subprocessor check (transparency/subprocessors.py: announce_changes)."""

from __future__ import annotations

from custodia.jobs.registry import periodic_task
from custodia.transparency.subprocessors import announce_changes

SUBPROCESSOR_NOTICES = "subprocessor-notices"


@periodic_task(SUBPROCESSOR_NOTICES, cron="45 3 * * *", run_at_start=True)
def subprocessor_notices() -> None:
    """Tell every active owner once when the subprocessor list changed."""
    announce_changes()
