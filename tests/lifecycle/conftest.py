"""Backups in tests: drill results go to a log of the test's own; nobody is emailed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def private_drill_log(tmp_path: Path, settings: Any) -> Path:
    settings.BACKUP_DRILL_LOG_FILE = tmp_path / "drills.jsonl"
    settings.OPERATOR_EMAILS = []
    return Path(settings.BACKUP_DRILL_LOG_FILE)
