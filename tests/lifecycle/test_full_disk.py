"""A backup target that runs out of room: the run fails with a clear error naming the problem,
no partial backup is ever listed or left behind, older backups stay intact, and once there is
room again the next run succeeds.

Running out of room is made real for the writing process alone: `custodia backup run` runs with
a file-size limit (RLIMIT_FSIZE) below the size of a dump, so its write fails mid-file with the
kernel's error, as it would on a full disk (no privileges, no mount needed).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings

from custodia.lifecycle import backups
from custodia.lifecycle.backups import BackupStore


def _run_with_room(
    database: str, store: BackupStore, room: int
) -> subprocess.CompletedProcess[str]:
    def no_more_than_room() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (room, room))

    return subprocess.run(  # noqa: S603  (fixed arguments)
        [str(Path(sys.executable).parent / "custodia"), "backup", "run"],
        env={
            **os.environ,
            "CUSTODIA_DB_NAME": database,
            "CUSTODIA_BACKUP_DIR": str(store.directory),
            "CUSTODIA_BACKUP_RECIPIENTS": ",".join(settings.BACKUP_RECIPIENTS),
        },
        preexec_fn=no_more_than_room,  # noqa: PLW1509  (no threads run in the test meanwhile)
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_full_target_is_a_clear_error_and_older_backups_stay_intact(
    database: str, store: BackupStore, identities: Any
) -> None:
    older = backups.run_backup(store)
    before = {path.name: path.read_bytes() for path in store.directory.iterdir()}

    done = _run_with_room(database, store, older.dump_path.stat().st_size // 2)

    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    assert "File too large" in done.stderr or "No space" in done.stderr, done.stderr
    assert {path.name: path.read_bytes() for path in store.directory.iterdir()} == before
    assert store.backups() == [older]

    newer = backups.run_backup(store)  # room again
    assert store.backups() == [older, newer]
    backups.verify_backup(newer, identities)
