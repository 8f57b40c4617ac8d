"""The card vault's backups (lifecycle/backups/vault.py, docs/backups.md "The card vault"), against
a live vault (`custodia vault serve`, its own database, keystore and KEK) holding real cards and
charges: a round trip into a new database closed to the app's role, no card number or holder
name in clear in the decrypted dump, tampering refused, another store's manifest refused, the
prune, the drill (passing, with a destroyed business, and failing), the daily tasks, the
command, and crypto-shredding: a business destroyed at the vault stays unreadable in a restored
older database backup, and only a vault keystore backup younger than the keystore backups'
retention can bring its key back."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pyrage
import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError

from custodia import embedded
from custodia.lifecycle import backups, tasks
from custodia.lifecycle.backups import BackupError, Store
from custodia.lifecycle.backups.drill import VAULT, latest_drill
from custodia.lifecycle.backups.retention import database_policy, keystore_policy
from tests.lifecycle.conftest import database_exists
from tests.lifecycle.support import backup_keys, write_identity
from tests.servers import admin_database
from tests.vaults import LiveVault, connect_as, page_origins, vault, vault_db_password

__all__ = ["page_origins", "vault"]  # the live vault's fixtures (tests/vaults.py)

VISA = "4242424242424242"
MASTERCARD = "5555555555554444"
HOLDER = "Grace Brewster Hopper"


@pytest.fixture
def cards(vault: LiveVault) -> dict[str, Any]:
    """Two businesses with saved cards at the vault, and a charge of the first (what a refund
    of a past payment needs)."""
    first, second = uuid.uuid4(), uuid.uuid4()
    visa = vault.add_card(first, VISA, holder_name=HOLDER)
    master = vault.add_card(second, MASTERCARD, holder_name=HOLDER)
    charge = vault.client().charge(
        first, visa.token, amount=4200, currency="EUR", idempotency_key=uuid.uuid4().hex
    )
    return {"first": first, "second": second, "visa": visa, "master": master, "charge": charge}


@pytest.fixture
def vault_keys(settings: Any, vault: LiveVault, tmp_path: Path) -> list[pyrage.x25519.Identity]:
    """The app's backups to one key pair, the vault's to another; settings at the live vault."""
    backup_keys(settings)
    identity = pyrage.x25519.Identity.generate()
    settings.VAULT_BACKUP_RECIPIENTS = [str(identity.to_public())]
    settings.VAULT_BACKUPS = True
    settings.VAULT_DB_NAME = vault.db_name
    settings.VAULT_KEYSTORE_DIR = vault.keystore
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.KEYSTORE_BACKUP_DIR = tmp_path / "keystore-backups"
    return [identity]


@pytest.fixture
def store(vault_keys: Any) -> Store:
    return backups.vault_store()


@pytest.fixture
def restored(vault: LiveVault) -> Iterator[str]:
    name = f"{vault.db_name}_restored"[:63]
    yield name
    backups.drop_database(name)


def rows_of(database: str, query: str) -> list[tuple[Any, ...]]:
    with embedded.admin_connection(admin_database(), database) as conn:
        return list(conn.execute(query).fetchall())  # type: ignore[arg-type]


def plain_sql(backup: backups.Backup, identities: Any, work: Path) -> str:
    """The backup decrypted and turned back into SQL text (the dump is compressed, so a grep of
    its bytes would prove nothing): every row as COPY data."""
    archive = work / "vault.dump"
    with backup.store.reader(backup.payload_name) as source, archive.open("wb") as target:
        pyrage.decrypt_io(source, target, identities)
    pg_restore = backups.pg_programs_dir() / "pg_restore"
    done = subprocess.run(  # noqa: S603 (fixed program)
        [str(pg_restore), "--file=-", str(archive)], capture_output=True, check=True, timeout=60
    )
    archive.unlink()
    return done.stdout.decode()


def test_a_vault_backup_round_trips_into_a_database_only_the_vault_role_reaches(
    vault: LiveVault, cards: dict[str, Any], store: Store, vault_keys: Any, restored: str
) -> None:
    backup = backups.run_vault_backup(store)
    manifest = backup.manifest
    assert manifest["format"] == "custodia-vault-backup/1"
    assert manifest["database"] == vault.db_name
    assert manifest["recipients"] == [str(vault_keys[0].to_public())]
    assert manifest["tables"]["public.vault_card"] >= 2
    assert manifest["tables"]["public.vault_charge"] >= 1
    assert "vault" in manifest["schema"]
    # Its own store: the app's database backups list nothing of it.
    assert backups.database_store().backups() == []
    assert store.label.endswith("/backups/vault")

    counts = backups.restore_vault_backup(backup, vault_keys, restored)
    assert counts == manifest["tables"]
    for table, key in (("vault_card", "token"), ("vault_charge", "charge_id")):
        query = f"SELECT * FROM {table} ORDER BY {key}"  # noqa: S608 (fixed names)
        assert rows_of(restored, query) == rows_of(vault.db_name, query)
    # The charge a refund of the past payment needs is there, with its card's sealed number.
    [(status, amount)] = rows_of(
        restored,
        f"SELECT status, amount FROM vault_charge WHERE charge_id = '{cards['charge'].charge_id}'",
    )
    assert (status, amount) == ("approved", 4200)
    # Closed as the vault's own database is: the app's role cannot connect, the vault's can.
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        connect_as(django_settings.APP_DB_ROLE, django_settings.APP_DB_PASSWORD, restored)
    with connect_as("custodia_vault", vault_db_password(), restored) as own:
        assert own.execute("SELECT count(*) FROM vault_card").fetchone() == (
            manifest["tables"]["public.vault_card"],
        )
    [(owner,)] = rows_of(
        "postgres",
        f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{restored}'",
    )
    assert owner == "custodia_vault"
    # The app's identity does not read the vault's backups (their own recipients).
    app_identity = backup_keys(django_settings)
    with pytest.raises(BackupError, match="does not decrypt"):
        backups.restore_vault_backup(backup, app_identity, f"{restored}_2")
    assert not database_exists(f"{restored}_2")


def test_the_decrypted_dump_holds_no_card_number_or_holder_name(
    vault: LiveVault, cards: dict[str, Any], store: Store, vault_keys: Any, tmp_path: Path
) -> None:
    backup = backups.run_vault_backup(store)
    text = plain_sql(backup, vault_keys, tmp_path)
    # The rows are there (the tokens, the last four digits, the charge) ...
    assert cards["visa"].token in text and cards["master"].token in text
    assert cards["charge"].charge_id in text
    # ... but no number nor name in clear, in any spelling.
    for secret in (VISA, MASTERCARD, "4242 4242 4242 4242", HOLDER, HOLDER.upper()):
        assert secret not in text
    for path in (backup.dump_path, backup.manifest_path):
        content = path.read_bytes()
        assert VISA.encode() not in content and HOLDER.encode() not in content


def test_a_tampered_vault_backup_is_refused_and_leaves_no_database(
    cards: dict[str, Any], store: Store, vault_keys: Any, restored: str, settings: Any
) -> None:
    backup = backups.run_vault_backup(store)
    original = backup.dump_path.read_bytes()
    altered = bytearray(original)
    altered[len(altered) // 2] ^= 0x01
    backup.dump_path.write_bytes(bytes(altered))
    with pytest.raises(BackupError, match="does not match the manifest"):
        backups.restore_vault_backup(store.get(backup.id), vault_keys, restored)
    assert not database_exists(restored)
    backup.dump_path.write_bytes(original)

    manifest = backup.manifest_path.read_text()
    count = backup.manifest["tables"]["public.vault_card"]
    backup.manifest_path.write_text(
        manifest.replace(f'"public.vault_card": {count}', f'"public.vault_card": {count + 1}')
    )
    [listed] = store.backups()
    assert listed.problem is not None and "altered" in listed.problem
    with pytest.raises(BackupError, match="altered"):
        backups.restore_vault_backup(listed, vault_keys, restored)
    assert not database_exists(restored)
    backup.manifest_path.write_text(manifest)

    # A vault backup dropped into the app's store (or the other way round) is not taken for it.
    app_store = backups.database_store()
    app_store_dir = Path(settings.BACKUP_DIR)
    app_store_dir.mkdir(parents=True, exist_ok=True)
    for path in (backup.dump_path, backup.manifest_path):
        (app_store_dir / path.name).write_bytes(path.read_bytes())
    [foreign] = app_store.backups()
    assert foreign.problem is not None and "unknown backup format" in foreign.problem
    with pytest.raises(BackupError):
        backups.restore_backup(foreign, vault_keys, restored)
    with pytest.raises(BackupError, match="not a store of the card vault"):
        backups.run_vault_backup(app_store)
    assert not database_exists(restored)


def test_prune_deletes_vault_backups_past_the_retention(
    cards: dict[str, Any], store: Store, vault_keys: Any, settings: Any, database: str
) -> None:
    now = dt.datetime.now(dt.UTC)
    old = backups.run_vault_backup(store, now=now - dt.timedelta(days=366))
    kept = backups.run_vault_backup(store, now=now - dt.timedelta(days=364))
    newest = backups.run_vault_backup(store, now=now)
    result = backups.prune(store, database_policy(), now=now)
    assert [b.id for b in result.deleted] == [old.id]
    assert [b.id for b in store.backups()] == [kept.id, newest.id]
    assert not old.dump_path.exists() and not old.manifest_path.exists()
    # The daily task prunes too (with the app's retention days).
    settings.BACKUP_RETENTION_DAYS = 30
    tasks.backup_database()
    remaining = store.backups()
    assert kept.id not in [b.id for b in remaining] and newest.id in [b.id for b in remaining]


def test_the_drill_restores_the_newest_vault_backup_and_checks_its_keys(
    vault: LiveVault, cards: dict[str, Any], store: Store, vault_keys: Any
) -> None:
    assert latest_drill(VAULT) is None
    backup = backups.run_vault_backup(store)
    result = backups.vault_drill(store, vault_keys)
    assert result.ok, result.detail
    assert result.backup_id == backup.id and result.kind == VAULT
    assert result.rows == sum(backup.manifest["tables"].values())
    assert result.detail.startswith("card vault: restored")
    assert "have a key in the live vault" in result.detail
    assert not database_exists(f"{vault.db_name}_drill")
    status = latest_drill(VAULT)
    assert status is not None and status.ok and status.backup_id == backup.id
    assert latest_drill() is None  # the app's drill is its own

    # A business destroyed at the vault since: its cards in the copy count as shredded.
    vault.client().destroy_business(cards["second"])
    result = backups.vault_drill(store, vault_keys)
    assert result.ok and result.values_shredded >= 1 and "destroyed since" in result.detail

    # A key file missing for a business the vault still holds cards of: the drill fails.
    key_file = vault.keystore / f"{cards['first']}.json"
    content = key_file.read_bytes()
    key_file.unlink()
    try:
        result = backups.vault_drill(store, vault_keys, notify=False)
    finally:
        key_file.write_bytes(content)
    assert not result.ok and str(cards["first"]) in result.detail
    assert VISA not in result.detail
    # An altered dump fails it too, and the copy is gone.
    backup.dump_path.write_bytes(b"altered")
    result = backups.vault_drill(store, vault_keys, notify=False)
    assert not result.ok and "does not match the manifest" in result.detail
    assert not database_exists(f"{vault.db_name}_drill")


def test_the_daily_tasks_back_the_vault_up_and_drill_it(
    cards: dict[str, Any], vault_keys: Any, settings: Any, tmp_path: Path, database: str
) -> None:
    tasks.backup_database()
    tasks.backup_keystore()
    [vault_backup] = backups.vault_store().backups()
    [vault_keys_backup] = backups.vault_keystore_store().backups()
    [app_backup] = backups.database_store().backups()
    assert vault_backup.problem is None and vault_keys_backup.problem is None
    assert app_backup.problem is None
    assert str(cards["first"]) in vault_keys_backup.manifest["businesses"]
    assert vault_keys_backup.manifest["format"] == "custodia-vault-keystore-backup/1"

    # The vault's identity is not the app's: the drill host keeps one file holding both.
    app_identity = backup_keys(settings)  # (re-keys the app: back it up again with it)
    tasks.backup_database()
    identity_file = tmp_path / "drill-identities.txt"
    identity_file.write_text(f"{app_identity[0]}\n{vault_keys[0]}\n")
    settings.BACKUP_DRILL_IDENTITY_FILE = str(identity_file)
    tasks.restore_drill()
    vault_status, app_status = latest_drill(VAULT), latest_drill()
    assert vault_status is not None and vault_status.ok
    assert app_status is not None and app_status.ok
    tasks.restore_drill()  # a week has not passed for either
    assert len(backups.drill_records()) == 2

    # The vault's drill failing fails the task (and does not hide the app's).
    (tmp_path / "drills.jsonl").unlink()
    newest = backups.vault_store().newest()
    newest.dump_path.write_bytes(b"altered")
    with pytest.raises(BackupError, match="vault restore drill .* FAILED"):
        tasks.restore_drill()
    app_status = latest_drill()
    assert app_status is not None and app_status.ok


def test_the_command_backs_up_lists_restores_and_drills_the_vault(
    cards: dict[str, Any], vault_keys: Any, restored: str, tmp_path: Path
) -> None:
    out = io.StringIO()
    call_command("backup", "vault", "run", stdout=out)
    assert out.getvalue().startswith("vault backup ")
    backup_id = out.getvalue().split()[2].rstrip(":")
    out = io.StringIO()
    call_command("backup", "vault", "list", stdout=out)
    assert backup_id in out.getvalue() and "PROBLEM" not in out.getvalue()
    identity = write_identity(tmp_path / "vault-identity.txt", vault_keys[0])
    out = io.StringIO()
    call_command("backup", "vault", "verify", backup_id, "--identity", str(identity), stdout=out)
    assert "signature, checksum and archive OK" in out.getvalue()
    out = io.StringIO()
    call_command(
        "backup", "vault", "restore", backup_id, "--into", restored,
        "--identity", str(identity), stdout=out,
    )  # fmt: skip
    assert f"restored into {restored} (the vault role's alone)" in out.getvalue()
    with pytest.raises(CommandError, match="exists: restore into a new one"):
        call_command(
            "backup", "vault", "restore", backup_id, "--into", restored,
            "--identity", str(identity),
        )  # fmt: skip
    out = io.StringIO()
    call_command("backup", "vault", "drill", "--identity", str(identity), stdout=out)
    assert f"vault restore drill of {backup_id}: OK" in out.getvalue()
    out = io.StringIO()
    call_command("backup", "vault-keystore", "run", stdout=out)
    assert out.getvalue().startswith("vault keystore backup ")


def test_a_destroyed_business_stays_shredded_in_restored_vault_backups(
    vault: LiveVault,
    cards: dict[str, Any],
    store: Store,
    vault_keys: Any,
    restored: str,
    tmp_path: Path,
    settings: Any,
    database: str,
) -> None:
    first, second = cards["first"], cards["second"]
    older = backups.run_vault_backup(store)
    key_store = backups.vault_keystore_store()
    before = backups.run_vault_keystore_backup(key_store)
    assert str(first) in before.manifest["businesses"]

    vault.client().destroy_business(first)
    assert vault.open_card(first, cards["visa"].token) == "unreadable"
    after = backups.run_vault_keystore_backup(key_store)
    assert str(first) not in after.manifest["businesses"]

    # The database backup taken before the destruction restores whole: the rows are there ...
    backups.restore_vault_backup(older, vault_keys, restored)
    [(sealed,)] = rows_of(
        restored, f"SELECT number_sealed FROM vault_card WHERE token = '{cards['visa'].token}'"
    )
    assert sealed is not None and VISA.encode() not in bytes(sealed)
    # ... but with the live vault keystore the destroyed business's card does not open, while
    # the other business's does.
    on_copy = dataclasses.replace(vault, env={**vault.env, "CUSTODIA_VAULT_DB_NAME": restored})
    assert on_copy.open_card(first, cards["visa"].token) == "unreadable"
    assert on_copy.open_card(second, cards["master"].token) == f"last4 {MASTERCARD[-4:]}"
    # Restoring the vault keystore's newest backup brings nothing of it back.
    result = backups.restore_vault_keystore(after, vault_keys, into=tmp_path / "after")
    assert str(first) not in result.restored
    assert backups.restore_vault_keystore(after, vault_keys).restored == []

    # A vault keystore backup taken before the destruction can bring the key back, within the
    # keystore backups' retention (the app's rule): that is what it is for (a mistake) ...
    into = tmp_path / "before"
    backups.restore_vault_keystore(before, vault_keys, businesses=[str(first)], into=into)
    with_old_keys = dataclasses.replace(
        on_copy, env={**on_copy.env, "CUSTODIA_VAULT_KEYSTORE_DIR": str(into)}
    )
    assert with_old_keys.open_card(first, cards["visa"].token) == f"last4 {VISA[-4:]}"
    # (into the live vault keystore too, never over a file that exists)
    live = backups.restore_vault_keystore(before, vault_keys, businesses=[str(first)])
    assert live.restored == [str(first)]
    assert vault.open_card(first, cards["visa"].token) == f"last4 {VISA[-4:]}"
    again = backups.restore_vault_keystore(before, vault_keys)
    assert again.restored == [] and {str(first), str(second)} <= set(again.kept)
    # ... and no longer once it is pruned: N days after the destruction at the latest, the
    # same N the deletion page states (keystore.unreadable_everywhere_days()).
    created = before.created_at
    assert created is not None
    retention = dt.timedelta(days=settings.KEYSTORE_BACKUP_RETENTION_DAYS)
    early = created + retention - dt.timedelta(hours=1)
    kept = backups.prune(key_store, keystore_policy(), now=early)
    assert before.id in [b.id for b in kept.kept]
    deadline = created + dt.timedelta(days=backups.unreadable_everywhere_days())
    pruned = backups.prune(key_store, keystore_policy(), now=deadline)
    assert before.id in [b.id for b in pruned.deleted]
    assert all(str(first) not in b.manifest["businesses"] for b in key_store.backups())


def test_vault_backups_on_s3_have_their_own_prefixes(
    cards: dict[str, Any], vault_keys: Any, s3: Any, restored: str
) -> None:
    store = backups.vault_store()
    key_store = backups.vault_keystore_store()
    assert store.label.endswith("/custodia/vault-backups/")
    assert key_store.label.endswith("/custodia/vault-keystore/")
    backup = backups.run_vault_backup(store)
    keys_backup = backups.run_vault_keystore_backup(key_store)
    assert [b.id for b in store.backups()] == [backup.id]
    assert [b.id for b in key_store.backups()] == [keys_backup.id]
    assert backups.database_store().backups() == [] and backups.keystore_store().backups() == []
    counts = backups.restore_vault_backup(store.get(backup.id), vault_keys, restored)
    assert counts == backup.manifest["tables"]
