"""Backups (lifecycle/backups/, the logical engine in a directory): what a restore brings back
is what the manifest promised; a backup altered anywhere, a wrong key, a killed run or an
unusable directory is detected and leaves nothing half-made; retention deletes exactly what is
due.

A dump sees only committed data, so these tests build a business in a scratch database of their
module (as tests/crypto/test_dump.py does), back it up and restore it into new databases.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyrage
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from custodia.lifecycle import backups
from custodia.lifecycle.backups import Backup, BackupError, BackupStore
from tests.lifecycle.conftest import admin, database_exists
from tests.lifecycle.support import write_identity


def leftovers(store: BackupStore) -> list[str]:
    return sorted(p.name for p in store.directory.iterdir() if p.name not in {".lock"})


def test_a_restore_brings_back_what_the_manifest_promised(
    database: str, store: BackupStore, identities: Any, restored: str
) -> None:
    backup = backups.run_backup(store)
    manifest = backup.manifest
    assert store.backups() == [backup]
    assert manifest["engine"] == "logical" and manifest["database"] == database
    assert manifest["tables"]["public.clients_client"] == 2
    assert manifest["tables"]["public.audit_auditevent"] > 0
    assert "clients" in manifest["schema"] and manifest["schema"]["clients"].startswith("0")
    assert manifest["recipients"] == settings.BACKUP_RECIPIENTS
    # The file is age ciphertext, not a readable archive; nobody but the owner may read it.
    content = backup.dump_path.read_bytes()
    assert content.startswith(b"age-encryption.org/v1") and b"PGDMP" not in content
    assert len(content) == manifest["dump"]["size"]
    assert backup.dump_path.stat().st_mode & 0o777 == 0o600
    assert backup.manifest_path.stat().st_mode & 0o777 == 0o600

    counts = backups.restore_backup(backup, identities, restored)
    assert counts == manifest["tables"]
    for table in ("clients_client", "clients_homeaccess", "audit_auditevent", "accounts_user"):
        assert table_rows(restored, table) == table_rows(database, table), table
    with admin(restored) as conn:
        policies = conn.execute(
            "SELECT relforcerowsecurity FROM pg_class WHERE relname = 'clients_client'"
        ).fetchone()
    assert policies == (True,), "the restored table keeps its forced row-level security"


def table_rows(database: str, table: str) -> list[tuple[Any, ...]]:
    """Every row of `table`, every column, in a fixed order."""
    with admin(database) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()  # noqa: S608


def test_verify_with_the_identity_reads_the_archive(
    database: str, store: BackupStore, identities: Any, tmp_path: Path
) -> None:
    backup = backups.run_backup(store)
    backups.verify_backup(backup, identities)
    identity_file = write_identity(tmp_path / "identity.txt", identities[0])
    call_command(
        "backup",
        "--dir",
        str(store.directory),
        "verify",
        backup.id,
        "--identity",
        str(identity_file),
    )


def tamper_byte(path: Path, offset: int) -> None:
    content = bytearray(path.read_bytes())
    content[offset] ^= 0x01
    path.write_bytes(bytes(content))


@pytest.mark.parametrize("where", ["header", "middle", "end"])
def test_an_altered_dump_is_refused_and_nothing_is_restored(
    database: str, store: BackupStore, identities: Any, restored: str, where: str
) -> None:
    backup = backups.run_backup(store)
    size = backup.manifest["dump"]["size"]
    tamper_byte(backup.dump_path, {"header": 30, "middle": size // 2, "end": size - 1}[where])
    with pytest.raises(BackupError, match="does not match the manifest"):
        backups.verify_backup(backup)
    with pytest.raises(BackupError, match="does not match the manifest"):
        backups.restore_backup(backup, identities, restored)
    assert not database_exists(restored)


def test_a_truncated_dump_is_refused(database: str, store: BackupStore) -> None:
    backup = backups.run_backup(store)
    with open(backup.dump_path, "r+b") as handle:
        handle.truncate(backup.manifest["dump"]["size"] // 2)
    with pytest.raises(BackupError, match="altered or truncated"):
        backups.verify_backup(backup)


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m["tables"].__setitem__("public.clients_client", 1),
        lambda m: m.__setitem__("created_at", "2020-01-01T00:00:00+00:00"),
        lambda m: m["dump"].__setitem__("sha256", "0" * 64),
    ],
    ids=["row count", "date", "checksum"],
)
def test_an_altered_manifest_is_seen_and_refused(
    database: str, store: BackupStore, identities: Any, restored: str, edit: Any
) -> None:
    backup = backups.run_backup(store)
    document = json.loads(backup.manifest_path.read_text())
    edit(document["manifest"])
    backup.manifest_path.write_text(json.dumps(document))
    [listed] = store.backups()
    assert listed.problem is not None and "altered" in listed.problem
    with pytest.raises(BackupError, match="altered"):
        backups.restore_backup(listed, identities, restored)
    assert not database_exists(restored)


def test_a_manifest_swapped_onto_another_backup_is_seen(
    database: str, store: BackupStore, identities: Any
) -> None:
    first, second = backups.run_backup(store), backups.run_backup(store)
    first.manifest_path.write_bytes(second.manifest_path.read_bytes())
    problems = {backup.id: backup.problem for backup in store.backups()}
    assert problems == {first.id: "the manifest names another backup", second.id: None}
    # Both dumps swapped: each checksum is the other's.
    content = first.dump_path.read_bytes()
    first.dump_path.write_bytes(second.dump_path.read_bytes())
    second.dump_path.write_bytes(content)
    with pytest.raises(BackupError, match="does not match the manifest"):
        backups.verify_backup(store.get(second.id))


def test_another_identity_cannot_restore(
    database: str, store: BackupStore, identities: Any, restored: str
) -> None:
    backup = backups.run_backup(store)
    stranger = [pyrage.x25519.Identity.generate()]
    with pytest.raises(BackupError, match="does not decrypt with this identity"):
        backups.restore_backup(backup, stranger, restored)
    assert not database_exists(restored), "a failed restore leaves no database behind"


def test_a_backup_is_encrypted_to_every_recipient(
    database: str, store: BackupStore, settings: Any, restored: str
) -> None:
    first, second = pyrage.x25519.Identity.generate(), pyrage.x25519.Identity.generate()
    settings.BACKUP_RECIPIENTS = [str(first.to_public()), str(second.to_public())]
    backup = backups.run_backup(store)
    backups.verify_backup(backup, [second])
    backups.verify_backup(backup, [first])


def test_restore_refuses_an_existing_database_and_a_bad_name(
    database: str, store: BackupStore, identities: Any
) -> None:
    backup = backups.run_backup(store)
    with pytest.raises(BackupError, match="exists: restore into a new one"):
        backups.restore_backup(backup, identities, database)
    for name in ("Bad-Name", "x; DROP DATABASE postgres", ""):
        with pytest.raises(BackupError, match="is not a database name"):
            backups.restore_backup(backup, identities, name)
    with admin(database) as conn:
        assert conn.execute("SELECT count(*) FROM clients_client").fetchone() == (2,)


def test_production_refuses_to_back_up_without_recipients(
    settings: Any, store: BackupStore
) -> None:
    settings.BACKUP_RECIPIENTS = []
    settings.PRODUCTION = True
    with pytest.raises(BackupError, match="Set CUSTODIA_BACKUP_RECIPIENTS"):
        backups.run_backup(store)
    settings.BACKUP_RECIPIENTS = ["age1notakey"]
    with pytest.raises(BackupError, match="is not an age public key"):
        backups.run_backup(store)
    assert not store.directory.exists() or not store.backups()


def test_development_makes_a_private_key_pair(settings: Any, tmp_path: Path) -> None:
    settings.BACKUP_RECIPIENTS = []
    settings.BACKUP_DEV_IDENTITY_FILE = tmp_path / "secrets" / "backup-identity.txt"
    [recipient] = backups.recipients()
    assert settings.BACKUP_DEV_IDENTITY_FILE.stat().st_mode & 0o777 == 0o600
    assert str(backups.development_identity().to_public()) == str(recipient)
    assert backups.uses_development_key()


def test_identity_files_are_checked_without_quoting_them(tmp_path: Path) -> None:
    secret_looking = tmp_path / "wrong.txt"
    secret_looking.write_text("AGE-SECRET-KEY-1NOTREALLYAKEYBUTSECRETLOOKING\n")
    with pytest.raises(BackupError) as refused:
        backups.load_identity(secret_looking)
    assert "NOTREALLY" not in str(refused.value)
    with pytest.raises(BackupError, match="holds no age identity"):
        backups.load_identity(write_empty(tmp_path / "empty.txt"))
    with pytest.raises(BackupError, match="Cannot read the identity file"):
        backups.load_identity(tmp_path / "missing.txt")


def write_empty(path: Path) -> Path:
    path.write_text("# nothing here\n")
    return path


def test_an_unusable_directory_is_a_clear_error(
    database: str, tmp_path: Path, identities: Any
) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("in the way")
    with pytest.raises(BackupError, match="Cannot use the backup directory"):
        backups.run_backup(BackupStore(not_a_directory / "backups"))
    with pytest.raises(CommandError, match="Cannot use the backup directory"):
        call_command("backup", "--dir", str(not_a_directory / "backups"), "run")


def test_a_failed_dump_leaves_the_older_backups_intact(
    database: str, store: BackupStore, identities: Any, settings: Any, tmp_path: Path
) -> None:
    older = backups.run_backup(store)
    before = {path.name: path.read_bytes() for path in store.directory.iterdir()}
    # pg_dump of a server version it does not support fails mid-way: programs from elsewhere.
    broken = tmp_path / "bin"
    broken.mkdir()
    (broken / "pg_dump").symlink_to("/bin/false")
    settings.PG_BIN_DIR = str(broken)
    with pytest.raises(BackupError, match="pg_dump failed"):
        backups.run_backup(store)
    assert {path.name: path.read_bytes() for path in store.directory.iterdir()} == before
    assert store.backups() == [older]


def test_unknown_ids_are_refused_by_name(database: str, store: BackupStore) -> None:
    for wrong in ("../../etc/passwd", "20261204T031500Z-zzzzzzzz", "latest"):
        with pytest.raises(CommandError, match="is not a backup id"):
            call_command("backup", "--dir", str(store.directory), "verify", wrong)
    with pytest.raises(CommandError, match="No backup 20261204T031500Z-1a2b3c4d"):
        call_command("backup", "--dir", str(store.directory), "verify", "20261204T031500Z-1a2b3c4d")


def wait_for(condition: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_backup_killed_mid_write_is_never_listed_and_the_next_run_succeeds(
    database: str, store: BackupStore, identities: Any
) -> None:
    env = {
        **os.environ,
        "CUSTODIA_DB_NAME": database,
        "CUSTODIA_BACKUP_DIR": str(store.directory),
        "CUSTODIA_BACKUP_RECIPIENTS": ",".join(settings.BACKUP_RECIPIENTS),
    }
    # A lock on one table holds the run after its file is open and before its dump ends.
    with admin(database) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE clients_client IN ACCESS EXCLUSIVE MODE")
        run = subprocess.Popen(  # noqa: S603  (fixed arguments)
            [str(Path(sys.executable).parent / "custodia"), "backup", "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: any(p.name.endswith(".partial") for p in store.directory.glob("*")))
            run.send_signal(signal.SIGKILL)
            run.wait(timeout=30)
        finally:
            blocker.execute("ROLLBACK")
    assert run.returncode == -signal.SIGKILL
    assert store.backups() == [], "nothing of the killed run is listed"
    assert leftovers(store), "the killed run left its partial file (so the test killed mid-write)"

    backup = backups.run_backup(store)
    assert store.backups() == [backup]
    assert leftovers(store) == sorted([backup.dump_path.name, backup.manifest_path.name])
    backups.verify_backup(backup, identities)


def old_backup(store: BackupStore, days: float, now: dt.datetime) -> Backup:
    return backups.run_backup(store, now=now - dt.timedelta(days=days))


def test_retention_deletes_exactly_what_is_due(
    database: str, store: BackupStore, identities: Any, settings: Any
) -> None:
    settings.BACKUP_RETENTION_DAYS = 365
    now = dt.datetime.now(dt.UTC)
    due = [old_backup(store, 500, now), old_backup(store, 365.01, now)]
    kept = [old_backup(store, 364.99, now), old_backup(store, 0, now)]
    # A manifest edited to look old is not trusted: it is kept and reported, never deleted.
    edited = old_backup(store, 10, now)
    document = json.loads(edited.manifest_path.read_text())
    document["manifest"]["created_at"] = (now - dt.timedelta(days=900)).isoformat()
    edited.manifest_path.write_text(json.dumps(document))

    dry = backups.prune(store, now=now, dry_run=True)
    assert [b.id for b in dry.deleted] == [b.id for b in due]
    assert len(store.backups()) == 5, "a dry run deletes nothing"

    result = backups.prune(store, now=now)
    assert [b.id for b in result.deleted] == [b.id for b in due]
    assert [b.id for b in result.kept] == [b.id for b in kept]
    assert [b.id for b in result.unsure] == [edited.id]
    assert {b.id for b in store.backups()} == {b.id for b in [*kept, edited]}
    for backup in due:
        assert not backup.dump_path.exists() and not backup.manifest_path.exists()


def test_a_drill_restores_the_newest_backup_and_logs_the_result(
    database: str, store: BackupStore, identities: Any, tmp_path: Path
) -> None:
    backups.run_backup(store)
    newest = backups.run_backup(store)
    result = backups.drill(store, identities)
    assert result.ok and result.backup_id == newest.id
    assert result.rows == sum(newest.manifest["tables"].values())
    assert not database_exists(f"{database}_drill"), "the scratch database is dropped"
    # A drill of an altered backup fails, says why, and is logged as failed.
    tamper_byte(newest.dump_path, 100)
    failed = backups.drill(store, identities)
    assert not failed.ok and "does not match the manifest" in failed.detail
    log = backups.drill_records()
    assert [(entry["backup_id"], entry["ok"]) for entry in log] == [
        (newest.id, True),
        (newest.id, False),
    ]
    identity_file = write_identity(tmp_path / "identity.txt", identities[0])
    with pytest.raises(CommandError, match="FAILED"):
        call_command(
            "backup", "--dir", str(store.directory), "drill", "--identity", str(identity_file)
        )


def test_the_daily_round_backs_up_and_prunes(
    database: str, store: BackupStore, identities: Any, settings: Any
) -> None:
    old = old_backup(store, 400, dt.datetime.now(dt.UTC))
    call_command("backup", "--dir", str(store.directory), "maintain")
    [fresh] = store.backups()
    assert fresh.id != old.id and fresh.created_at is not None
    settings.PRODUCTION, settings.BACKUP_RECIPIENTS = True, []
    with pytest.raises(CommandError, match="Set CUSTODIA_BACKUP_RECIPIENTS"):
        call_command("backup", "--dir", str(store.directory), "maintain")


def test_the_names_other_engines_and_the_export_use_still_sign_and_check(tmp_path: Path) -> None:
    """The pgbackrest engine's manifests and the export's signature use these names."""
    from custodia.lifecycle.backups import (
        _canonical,
        _read_manifest,
        _signed,
        _write_atomically,
    )

    manifest = {"format": backups.FORMAT, "id": "x", "engine": "pgbackrest"}
    path = tmp_path / "x.manifest.json"
    _write_atomically(path, lambda handle: handle.write(_signed(manifest)))
    read, problem = _read_manifest(path)
    assert problem is None and read["engine"] == "pgbackrest"
    assert _canonical(read) == backups.canonical(read)
    path.write_bytes(path.read_bytes().replace(b"pgbackrest", b"pgbackresT"))
    assert "altered" in str(_read_manifest(path)[1])
    assert _read_manifest(tmp_path / "missing.json") == ({}, "the manifest is unreadable")
