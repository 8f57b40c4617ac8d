"""The restore drill (lifecycle/backups/drill.py): the newest backup restored into a scratch
database, its row counts and checksums compared with the manifest, its audit chains verified,
a sample of its sealed values opened with the live keystore; the result in a signed log, a
failure emailed to the operators (a real SMTP server, aiosmtpd). One test per failure: an
altered dump, other checksums, a broken chain, a key that does not open the values, a missing
key, no backup at all; and an edited drill log is seen.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from custodia.crypto import keyring, keystore
from custodia.lifecycle import backups
from custodia.lifecycle.backups import BackupStore
from tests.lifecycle.conftest import admin, database_exists
from tests.lifecycle.support import write_identity
from tests.mail import SmtpServer

OPERATORS = ["ops@custodia.test", "oncall@custodia.test"]


@pytest.fixture
def operators(settings: Any, smtp_server: SmtpServer) -> SmtpServer:
    settings.OPERATOR_EMAILS = OPERATORS
    return smtp_server


def business_id(database: str) -> Any:
    with admin(database) as conn:
        row = conn.execute("SELECT id FROM tenancy_business ORDER BY created_at LIMIT 1").fetchone()
    assert row is not None
    return row[0]


def assert_failed(result: Any, match: str, operators: SmtpServer, database: str) -> None:
    assert not result.ok and match in result.detail, result.detail
    assert not database_exists(f"{database}_drill"), "the scratch database is dropped"
    [mail] = operators.wait_for(1)
    assert sorted(mail.recipients) == sorted(OPERATORS)
    assert "Restore drill FAILED" in mail.subject and result.backup_id in mail.subject
    assert match in mail.body
    # Ids and the check only: no customer data (the business's client values) in the mail.
    for secret in ("Key under the mat", "4711", "0815", "Cat: Miso", "client@backedup.test"):
        assert secret not in mail.body
    status = backups.latest_drill()
    assert status is not None and not status.ok and status.backup_id == result.backup_id


def test_a_drill_of_a_sound_backup_passes_every_check(
    database: str, store: BackupStore, identities: Any, operators: SmtpServer
) -> None:
    backups.run_backup(store)
    newest = backups.run_backup(store)
    result = backups.drill(store, identities)
    assert result.ok, result.detail
    assert result.backup_id == newest.id
    assert result.rows == sum(newest.manifest["tables"].values())
    with admin(database) as conn:
        chains = conn.execute(
            "SELECT count(DISTINCT coalesce(tenant_id::text, '')) FROM audit_auditevent"
        ).fetchone()
    assert chains is not None and result.chains == chains[0] >= 1, "every chain was verified"
    # Every sealed column is sampled: the business's client, home access and visit values.
    assert result.values_opened >= 7
    assert not database_exists(f"{database}_drill")
    assert operators.messages == [], "a passing drill emails nobody"
    [record] = backups.drill_records()
    assert record["ok"] is True and record["backup_id"] == newest.id
    status = backups.latest_drill()
    assert status is not None and status.ok and status.problem is None


def test_a_drill_of_an_altered_dump_fails_and_tells_the_operators(
    database: str, store: BackupStore, identities: Any, operators: SmtpServer
) -> None:
    backup = backups.run_backup(store)
    content = bytearray(backup.dump_path.read_bytes())
    content[len(content) // 3] ^= 1
    backup.dump_path.write_bytes(bytes(content))
    result = backups.drill(store, identities)
    assert_failed(result, "does not match the manifest", operators, database)


def test_a_restore_with_other_checksums_than_the_manifest_fails(
    database: str, store: BackupStore, identities: Any, operators: SmtpServer
) -> None:
    """A manifest (validly signed) whose checksum of one table differs from what restores."""
    backup = backups.run_backup(store)
    manifest = dict(backup.manifest)
    manifest["checksums"] = {**manifest["checksums"], "public.clients_client": "12345"}
    manifest.pop("signing_key_id")
    backup.manifest_path.write_bytes(backups.sign_manifest(manifest))
    result = backups.drill(store, identities)
    assert_failed(
        result, "other checksums than its manifest in public.clients_client", operators, database
    )


@pytest.fixture
def altered_event(database: str) -> Iterator[None]:
    """One audit event of the database altered (as an intruder with the owner's rights could),
    and put back after the test."""
    with admin(database) as conn:
        conn.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        row = conn.execute(
            "SELECT id, user_agent FROM audit_auditevent WHERE tenant_id IS NOT NULL"
            " ORDER BY id LIMIT 1"
        ).fetchone()
        assert row is not None
        conn.execute("UPDATE audit_auditevent SET user_agent = 'forged' WHERE id = %s", [row[0]])
    try:
        yield
    finally:
        with admin(database) as conn:
            conn.execute(
                "UPDATE audit_auditevent SET user_agent = %s WHERE id = %s", [row[1], row[0]]
            )
            conn.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")


def test_a_drill_of_a_backup_with_a_broken_audit_chain_fails(
    database: str, store: BackupStore, identities: Any, operators: SmtpServer, altered_event: None
) -> None:
    backups.run_backup(store)  # a faithful copy of a database whose chain is broken
    result = backups.drill(store, identities)
    assert_failed(result, "does not verify in the restored copy: Altered", operators, database)


@pytest.fixture
def key_file(database: str) -> Iterator[Path]:
    """The business's key file, put back after the test."""
    path = keystore.path_for(business_id(database))
    saved = path.read_bytes()
    yield path
    keystore.replace_file(path, saved)
    keyring.reset()


def test_a_drill_fails_when_the_live_key_does_not_open_the_values(
    database: str, store: BackupStore, identities: Any, operators: SmtpServer, key_file: Path
) -> None:
    backups.run_backup(store)
    # The business's keys replaced by new ones (a keystore restored from the wrong place).
    business = business_id(database)
    keystore.destroy(business)
    keyring.reset()
    keyring.create_keys(business)
    result = backups.drill(store, identities)
    assert_failed(
        result, "does not open with the live keystore: IntegrityFailure", operators, database
    )


def test_a_drill_fails_when_an_existing_business_has_no_key(
    database: str, store: BackupStore, identities: Any, operators: SmtpServer, key_file: Path
) -> None:
    backups.run_backup(store)
    shutil.move(key_file, key_file.with_suffix(".moved"))
    keyring.reset()
    try:
        result = backups.drill(store, identities)
    finally:
        shutil.move(key_file.with_suffix(".moved"), key_file)
    assert_failed(result, "has no key for business", operators, database)


def test_a_drill_without_any_backup_fails_and_says_so(
    database: str, store: BackupStore, identities: Any, operators: SmtpServer
) -> None:
    result = backups.drill(store, identities)
    assert not result.ok and "No backup in" in result.detail
    [mail] = operators.wait_for(1)
    assert "No backup in" in mail.body


def test_an_edited_drill_log_is_seen(
    database: str, store: BackupStore, identities: Any, private_drill_log: Path
) -> None:
    backups.drill(store, identities)  # fails: no backup yet
    backups.run_backup(store)
    backups.drill(store, identities)
    first, second = private_drill_log.read_text().splitlines()
    edited = json.loads(first)
    edited["manifest"]["ok"] = True  # a failed drill made to look passed
    private_drill_log.write_text(json.dumps(edited) + "\n" + second + "\n")
    status = backups.latest_drill()
    assert status is not None and not status.ok and status.problem is not None
    assert "Line 1 of the drill log" in status.problem
    # A line removed breaks the chain of digests.
    private_drill_log.write_text(second + "\n")
    status = backups.latest_drill()
    assert status is not None and status.problem is not None and "Line 1" in status.problem


def test_the_daily_round_drills_weekly_with_the_drill_identity(
    database: str, store: BackupStore, identities: Any, settings: Any, tmp_path: Path
) -> None:
    settings.BACKUP_DRILL_IDENTITY_FILE = str(write_identity(tmp_path / "drill.txt", identities[0]))
    call_command("backup", "--dir", str(store.directory), "maintain")
    [record] = backups.drill_records()
    assert record["ok"] is True
    assert [b.id for b in store.backups()] == [record["backup_id"]]
    keystore_backups = backups.keystore_store(store.directory / "keystore").backups()
    assert len(keystore_backups) == 1 and keystore_backups[0].problem is None
    # A week has not passed: the next round backs up again but does not drill.
    call_command("backup", "--dir", str(store.directory), "maintain")
    assert len(backups.drill_records()) == 1
    assert len(store.backups()) == 2
    # Production with no identity on this host: no drill, no failure.
    settings.BACKUP_DRILL_IDENTITY_FILE = ""
    assert backups.drill.__module__  # (the function, not the module, is exported)
    from custodia.lifecycle.backups.drill import drill_identity

    settings.PRODUCTION = True
    assert drill_identity() is None
    assert settings.BACKUP_RECIPIENTS
