"""The backups' periodic tasks (lifecycle/tasks.py), run as the job worker runs them: registered
under the names `custodia serve --no-backups` leaves out, each doing its whole round."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from custodia.jobs.registry import periodic_tasks
from custodia.lifecycle import backups, tasks
from custodia.ops.management.commands.serve import worker_args
from tests.lifecycle.support import write_identity


def test_the_tasks_are_registered_and_left_out_together() -> None:
    registered = {task.name: task for task in periodic_tasks()}
    assert (
        registered[tasks.BACKUPS].run_at_start and registered[tasks.KEYSTORE_BACKUPS].run_at_start
    )
    assert not registered[tasks.BACKUP_DRILL].run_at_start
    assert registered[tasks.BACKUPS].function is tasks.backup_database
    assert registered[tasks.KEYSTORE_BACKUPS].function is tasks.backup_keystore
    assert registered[tasks.BACKUP_DRILL].function is tasks.restore_drill
    command = worker_args({"no_backups": True})
    for name in tasks.BACKUP_TASKS:
        assert command[command.index(name) - 1] == "--without"


def test_each_task_does_its_round(
    database: str, identities: Any, settings: Any, tmp_path: Path
) -> None:
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.KEYSTORE_BACKUP_DIR = tmp_path / "keystore-backups"
    tasks.backup_database()
    tasks.backup_keystore()
    [backup] = backups.database_store().backups()
    [keystore_backup] = backups.keystore_store().backups()
    assert backup.problem is None and keystore_backup.problem is None

    # No identity on this host (production): the drill is skipped, nothing recorded.
    settings.PRODUCTION = True
    tasks.restore_drill()
    assert backups.latest_drill() is None
    settings.PRODUCTION = False
    settings.BACKUP_DRILL_IDENTITY_FILE = str(write_identity(tmp_path / "id.txt", identities[0]))
    tasks.restore_drill()
    status = backups.latest_drill()
    assert status is not None and status.ok and status.backup_id == backup.id
    tasks.restore_drill()  # a week has not passed
    assert len(backups.drill_records()) == 1

    # A failed drill fails the task, so the scheduler records it too.
    backup.dump_path.write_bytes(b"altered")
    (tmp_path / "drills.jsonl").unlink()
    with pytest.raises(backups.BackupError, match="FAILED"):
        tasks.restore_drill()
