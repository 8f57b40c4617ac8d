"""Benchmark settings with the audit trail switched off (`core.audit.record` does nothing).

The baseline of the audit-cost figures (scenario 9, bench/audit.py): the same build, settings
and dataset, without the event each read and refusal writes. Never a configuration to run for
real: Custodia's settings hard-code the trail on, and only this module turns it off.
"""

from __future__ import annotations

from bench.settings import *  # noqa: F403

AUDIT_ENABLED = False
