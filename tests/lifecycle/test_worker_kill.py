"""kill -9 of the job worker during its backup (the `backups` periodic task, at the worker's
start): no partial backup is ever listed, and the next worker's run succeeds and cleans up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from custodia.lifecycle.backups import BackupStore
from tests.lifecycle.conftest import admin

REPO = Path(__file__).resolve().parents[2]


def wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def start_worker(database: str, tmp_path: Path) -> Iterator[Any]:
    started: list[subprocess.Popen[bytes]] = []

    def start(store: BackupStore) -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"worker-{len(started)}.log", "ab")  # noqa: SIM115
        process = subprocess.Popen(  # noqa: S603  (fixed arguments)
            [sys.executable, "-m", "custodia.cli", "worker", "--only", "backups"],
            cwd=REPO,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
                "CUSTODIA_DB_NAME": database,
                "CUSTODIA_KEYSTORE_DIR": str(settings.KEYSTORE_DIR),
                "CUSTODIA_BACKUP_DIR": str(store.directory),
                "CUSTODIA_BACKUP_RECIPIENTS": ",".join(settings.BACKUP_RECIPIENTS),
                "CUSTODIA_JOB_HEARTBEAT_SECONDS": "1",
                "CUSTODIA_JOB_STALLED_SECONDS": "3",
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_a_worker_killed_mid_backup_leaves_nothing_listed_and_the_next_succeeds(
    database: str, store: BackupStore, identities: Any, start_worker: Any
) -> None:
    # A lock on one table holds the backup after its file is open and before its dump ends.
    with admin(database) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE clients_client IN ACCESS EXCLUSIVE MODE")
        worker = start_worker(store)
        try:
            wait_for(
                lambda: (
                    store.directory.exists()
                    and any(p.name.endswith(".partial") for p in store.directory.iterdir())
                ),
                90,
                "the worker's backup to start writing",
            )
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
        finally:
            blocker.execute("ROLLBACK")
    assert worker.returncode == -signal.SIGKILL
    assert store.backups() == [], "nothing of the killed backup is listed"

    second = start_worker(store)
    wait_for(lambda: len(store.backups()) >= 1, 120, "the next worker's backup")
    # (It may start another: the killed worker's job, requeued as stalled. Stop it too.)
    second.send_signal(signal.SIGKILL)
    second.wait(timeout=30)
    with store.locked():  # what the next writer does first
        pass
    found = store.backups()
    assert found and all(backup.problem is None for backup in found)
    # The card vault's backups have a store of their own beneath (lifecycle/backups/vault.py).
    names = sorted(p.name for p in store.directory.iterdir() if p.name not in (".lock", "vault"))
    expected = [name for b in found for name in (b.payload_name, b.manifest_name)]
    assert names == sorted(expected), "only complete backups remain"
