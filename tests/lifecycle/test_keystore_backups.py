"""Keystore backups (lifecycle/backups/keystore.py) and the promise they bound: "a deleted
business's data is unreadable everywhere, backups included, N days after deletion", with N the
keystore backups' retention plus the day between two prunes.

The promise is tested the way it would be broken: a database backup taken before a deletion,
restored, cannot open the deleted business's values once the keystore backups older than the
deletion are pruned (with the live keystore, or with any keystore backup still kept), while the
other business's values open; and within N days a keystore restore does bring the key back.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pyrage
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connections

from custodia.crypto import keyring, keystore
from custodia.crypto.actions import do_destroy_business_keys
from custodia.crypto.errors import KeyUnavailable
from custodia.crypto.fields import open_text
from custodia.lifecycle import backups
from custodia.lifecycle.backups import BackupError, Store
from custodia.lifecycle.backups.retention import keystore_policy
from tests.crypto.test_shredding import committed_business
from tests.lifecycle.conftest import LocalS3, admin
from tests.lifecycle.support import write_identity


@pytest.fixture
def key_store(tmp_path: Path) -> Store:
    return backups.keystore_store(tmp_path / "keystore-backups")


@pytest.fixture
def sandbox(tmp_path: Path, settings: Any) -> Iterator[Path]:
    """An empty keystore of the test's own (file KEK provider)."""
    settings.KEK_PROVIDER = "file"
    settings.KEK_KEYRING_FILE = tmp_path / "secrets" / "kek-keyring.json"
    settings.KEYSTORE_DIR = tmp_path / "keys"
    keyring.reset()
    yield tmp_path / "keys"
    keyring.reset()


def sealed(business: uuid.UUID, text: str) -> bytes:
    return keyring.keys_for(business).seal(text, b"row")


def opens(business: uuid.UUID, blob: bytes) -> str:
    keyring.reset()
    return keyring.keys_for(business).open(blob, b"row")


def test_a_keystore_backup_holds_every_key_file_encrypted_and_signed(
    sandbox: Path, key_store: Store, identities: Any, tmp_path: Path
) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    keyring.create_keys(first)
    keyring.create_keys(second)
    backup = backups.run_keystore_backup(key_store)
    assert key_store.backups() == [backup]
    files = {str(b): keystore.path_for(b).read_bytes() for b in (first, second)}
    assert set(backup.manifest["businesses"]) == set(files)
    payload = backup.dump_path.read_bytes()
    assert payload.startswith(b"age-encryption.org/v1")
    for content in files.values():
        assert content[:40] not in payload
    assert backup.dump_path.stat().st_mode & 0o777 == 0o600
    assert backups.verify_keystore_backup(backup, identities) == 2

    identity = write_identity(tmp_path / "identity.txt", identities[0])
    directory = ["--dir", str(key_store.label)]
    call_command("backup", *directory, "keystore", "list")
    call_command("backup", *directory, "keystore", "verify", backup.id, "--identity", str(identity))
    # Pruned by its own retention, not the database backups'.
    call_command("backup", *directory, "keystore", "prune", "--dry-run")
    assert key_store.backups() == [backup]
    # A keystore backup is never taken for a database backup (nor restored as one).
    [mistaken] = backups.LocalStore(Path(key_store.label)).backups()
    assert mistaken.problem == "unknown backup format 'custodia-keystore-backup/1'"


def restore_events() -> list[tuple[str, str]]:
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT target_id, detail::text FROM audit_auditevent"
            " WHERE action = 'crypto.key.restore' AND tenant_id IS NULL ORDER BY id"
        )
        return [(target, json.loads(detail)["backup"]) for target, detail in cursor.fetchall()]


@pytest.mark.django_db(databases=["default", "owner"])
def test_a_restore_brings_a_destroyed_key_back_and_never_overwrites_one(
    sandbox: Path, key_store: Store, identities: Any, tmp_path: Path
) -> None:
    gone, kept = uuid.uuid4(), uuid.uuid4()
    keyring.create_keys(gone)
    keyring.create_keys(kept)
    value = sealed(gone, "door code 4821")
    backup = backups.run_keystore_backup(key_store)
    kept_before = keystore.path_for(kept).read_bytes()
    keystore.destroy(gone)
    keyring.reset()
    with pytest.raises(KeyUnavailable):
        opens(gone, value)

    identity = write_identity(tmp_path / "identity.txt", identities[0])
    call_command(
        "backup", "--dir", key_store.label, "keystore", "restore", backup.id,
        "--identity", str(identity), "--business", str(gone),
    )  # fmt: skip
    assert opens(gone, value) == "door code 4821"
    assert keystore.path_for(gone).stat().st_mode & 0o777 == 0o600
    # Recorded on the platform chain: which business's keys came back, from which backup.
    assert restore_events() == [(str(gone), backup.id)]

    # A key file that exists may be newer (a rotation since): it is kept, never overwritten.
    keystore.add_version(kept, keyring.provider())
    rotated = keystore.path_for(kept).read_bytes()
    assert rotated != kept_before
    result = backups.restore_keystore(backup, identities)
    assert result.kept == sorted([str(gone), str(kept)]) and result.restored == []
    assert keystore.path_for(kept).read_bytes() == rotated
    assert len(restore_events()) == 1, "nothing restored, nothing recorded"

    # Into a new directory: every file, as it was in the backup.
    into = tmp_path / "elsewhere"
    result = backups.restore_keystore(backup, identities, into=into)
    assert (into / f"{kept}.json").read_bytes() == kept_before
    with pytest.raises(BackupError, match="is not empty"):
        backups.restore_keystore(backup, identities, into=into)
    with pytest.raises(BackupError, match="holds no keys of"):
        backups.restore_keystore(backup, identities, businesses=[str(uuid.uuid4())])


def test_a_tampered_keystore_backup_or_another_identity_is_refused(
    sandbox: Path, key_store: Store, identities: Any
) -> None:
    keyring.create_keys(uuid.uuid4())
    backup = backups.run_keystore_backup(key_store)
    with pytest.raises(BackupError, match="does not decrypt with this identity"):
        backups.restore_keystore(backup, [pyrage.x25519.Identity.generate()])
    content = bytearray(backup.dump_path.read_bytes())
    content[-1] ^= 1
    backup.dump_path.write_bytes(bytes(content))
    with pytest.raises(BackupError, match="does not match the manifest"):
        backups.restore_keystore(backup, identities)
    with pytest.raises(CommandError, match="does not match the manifest"):
        call_command("backup", "--dir", key_store.label, "keystore", "verify", backup.id)


def test_a_keystore_backup_waits_for_the_keystore_lock(
    sandbox: Path, key_store: Store, identities: Any
) -> None:
    business = uuid.uuid4()
    keyring.create_keys(business)
    done = threading.Event()

    def back_up() -> None:
        backups.run_keystore_backup(key_store)
        done.set()

    with keystore.locked():
        worker = threading.Thread(target=back_up)
        worker.start()
        time.sleep(0.5)
        assert not done.is_set(), "the backup read the keystore while a writer held its lock"
        # A rotation half-done under the lock is never seen: the backup reads after it.
        keystore.write(keystore.read(business))
    worker.join(timeout=30)
    assert done.is_set()


def test_keystore_backups_on_s3_have_their_own_prefix(
    sandbox: Path, s3: LocalS3, identities: Any
) -> None:
    keyring.create_keys(uuid.uuid4())
    store = backups.keystore_store()
    assert store.label.endswith(settings.KEYSTORE_BACKUP_S3_PREFIX)
    backup = backups.run_keystore_backup(store)
    assert backups.verify_keystore_backup(backup, identities) == 1
    assert store.backups() == [backup]
    assert backups.database_store().backups() == []


# --- The promise ---------------------------------------------------------------------------------


def readable_by_business(database: str, businesses: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """For each business: "all" if every sealed client value opens, "none" if none does."""
    with admin(database) as conn:
        rows = conn.execute(
            "SELECT tenant_id, id, notes FROM clients_client WHERE tenant_id = ANY(%s)",
            [businesses],
        ).fetchall()
    outcome: dict[uuid.UUID, set[bool]] = {business: set() for business in businesses}
    keyring.reset()
    for tenant, row, blob in rows:
        try:
            open_text(tenant, "clients_client", "notes", row, bytes(blob))
            outcome[tenant].add(True)
        except KeyUnavailable:
            outcome[tenant].add(False)
    return {
        business: {frozenset({True}): "all", frozenset({False}): "none"}.get(
            frozenset(seen), "mixed"
        )
        for business, seen in outcome.items()
    }


@pytest.fixture
def live() -> Iterator[tuple[psycopg.Connection[Any], list[uuid.UUID]]]:
    made: list[uuid.UUID] = []
    with admin(str(settings.DATABASES["default"]["NAME"])) as connection:
        yield connection, made
        for business in made:
            tables = ("scheduling_visit", "clients_homeaccess", "clients_clientnamepart")
            for table in (*tables, "clients_client"):
                connection.execute(
                    f"DELETE FROM {table} WHERE tenant_id = %s",  # noqa: S608 (fixed names)
                    [business],
                )
            connection.execute("DELETE FROM tenancy_business WHERE id = %s", [business])
            keystore.destroy(business)


@pytest.fixture
def restored_name() -> Iterator[str]:
    name = f"{settings.DATABASES['default']['NAME']}_promise"
    yield name
    backups.drop_database(name)


@pytest.mark.django_db(databases=["default", "owner"])
def test_a_deleted_business_is_unreadable_everywhere_n_days_after_deletion(
    live: tuple[psycopg.Connection[Any], list[uuid.UUID]],
    restored_name: str,
    identities: Any,
    tmp_path: Path,
    settings: Any,
) -> None:
    settings.KEYSTORE_BACKUP_RETENTION_DAYS = 30
    n = backups.unreadable_everywhere_days()
    assert n == 31
    connection, made = live
    gone, kept = committed_business(connection, "gone"), committed_business(connection, "kept")
    made += [gone["id"], kept["id"]]
    both = [gone["id"], kept["id"]]
    key_store = backups.keystore_store(tmp_path / "keystore-backups")
    # The daily keystore backup and prune run at `nightly`; the deletion comes just after one:
    # the worst case, whose key lives longest.
    nightly = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)

    # Before the deletion: the backups of the database and of the keystore.
    database_backup = backups.run_backup(backups.LocalStore(tmp_path / "backups"))
    for age in (dt.timedelta(days=12), dt.timedelta(0)):
        backups.run_keystore_backup(key_store, now=nightly - age)
    last_before = key_store.backups()[-1]
    deleted_at = dt.datetime.now(dt.UTC)

    # The deletion destroys the business's keys (what do_delete_business does on commit).
    assert do_destroy_business_keys(gone["id"], reason="business deleted")
    backups.restore_backup(database_backup, identities, restored_name)
    assert readable_by_business(restored_name, both) == {gone["id"]: "none", kept["id"]: "all"}

    # Within N days, a keystore backup taken before the deletion brings the key back: that is
    # why the promise waits N days. (Restored into a directory of its own, read from there.)
    into = tmp_path / "recovered-keystore"
    backups.restore_keystore(last_before, identities, into=into)
    live_keystore = settings.KEYSTORE_DIR
    settings.KEYSTORE_DIR = into
    assert readable_by_business(restored_name, both) == {gone["id"]: "all", kept["id"]: "all"}
    settings.KEYSTORE_DIR = live_keystore

    # Daily keystore backups after the deletion, and the daily prune: the last keystore backup
    # holding the key expires within N days of the deletion, never later.
    first_day_without_the_key = None
    for day in range(1, n + 1):
        moment = nightly + dt.timedelta(days=day)
        backups.run_keystore_backup(key_store, now=moment)
        backups.prune(key_store, keystore_policy(), now=moment)
        holding = [
            b for b in key_store.backups() if str(gone["id"]) in b.manifest.get("businesses", {})
        ]
        if not holding and first_day_without_the_key is None:
            first_day_without_the_key = day
            assert moment - deleted_at <= dt.timedelta(days=n)
    # The retention's 30 days and the day to the next prune: N is exact, not a margin.
    assert first_day_without_the_key == n

    # After N days: no keystore copy left opens the deleted business's values; others open.
    remaining = key_store.backups()
    assert remaining and all(b.created_at and b.created_at > deleted_at for b in remaining)
    for number, backup in enumerate(remaining):
        into = tmp_path / f"keystore-{number}"
        backups.restore_keystore(backup, identities, into=into)
        settings.KEYSTORE_DIR = into
        assert readable_by_business(restored_name, both) == {
            gone["id"]: "none",
            kept["id"]: "all",
        }
    settings.KEYSTORE_DIR = live_keystore
    assert readable_by_business(restored_name, both) == {gone["id"]: "none", kept["id"]: "all"}
