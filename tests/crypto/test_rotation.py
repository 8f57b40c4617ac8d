"""Key rotation: a business's data key (re-encrypting online, resumable) and the KEK."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from custodia.clients.models import Client, HomeAccess
from custodia.core.actor import Actor
from custodia.crypto import actions, keyring, keystore, rows
from custodia.crypto.access import values_per_version
from custodia.crypto.errors import KekError
from custodia.crypto.keyring import version_of
from custodia.scheduling.models import Visit
from tests.acting import act
from tests.crypto.support import stored
from tests.factories import TenantMatrix

pytestmark = pytest.mark.django_db(databases=["default", "owner"])

CLIENTS = 25


@pytest.fixture
def in_test_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rotation works on the owner connection; in a test the rows live in the default
    connection's uncommitted transaction, so the rewrite runs there (same SQL, same RLS
    context as a manager), in batches small enough to interrupt."""
    monkeypatch.setattr(rows, "USING", "default")
    monkeypatch.setattr(rows, "BATCH_ROWS", 10)


def populate(owner: Actor) -> dict[Any, tuple[str, str, str]]:
    """CLIENTS more clients with distinct values: id -> (email, notes, door code)."""
    from custodia.clients.actions import do_create_client

    act(owner)
    expected = {}
    for number in range(CLIENTS):
        values = (f"c{number}@rotate.test", f"notes {number} ✓", f"{number:04d}")
        client = do_create_client(
            actor=owner,
            name=f"Rotated {number}",
            email=values[0],
            notes=values[1],
            door_code=values[2],
        )
        expected[client.pk] = values
    return expected


def read_all(owner: Actor, expected: dict[Any, tuple[str, str, str]]) -> None:
    """Every value reads back as written, through the models (as the app reads)."""
    act(owner)
    for client_id, (email, notes, door_code) in expected.items():
        client = Client.objects.get(pk=client_id)
        assert (client.email, client.notes) == (email, notes)
        assert HomeAccess.objects.get(client_id=client_id).door_code == door_code
    for visit in Visit.objects.filter(tenant_id=owner.tenant_id):
        assert isinstance(visit.report, str)


def versions(owner: Actor) -> dict[int, int]:
    act(owner)
    return values_per_version(owner.tenant_id)


def states(business_id: object) -> dict[int, str]:
    return {key.version: key.state for key in keystore.read(business_id).keys}


def test_rotation_reencrypts_everything_while_readers_keep_reading(
    matrix: TenantMatrix, in_test_transaction: None
) -> None:
    a, b = matrix.a, matrix.b
    expected = populate(a.owner)
    before_b = versions(b.owner)
    old_blob = stored(a.owner, "clients_client", "email", next(iter(expected)))
    assert version_of(old_blob) == 1
    progress: list[str] = []

    def reader(message: str) -> None:
        # Between batches, some values are under v1 and some under v2: all of them read.
        progress.append(message)
        read_all(a.owner, expected)

    act(a.owner)
    result = actions.do_rotate_business_key(a.owner.tenant_id, progress=reader)
    assert (result.version, result.retired, result.resumed) == (2, [1], False)
    # Every sealed value of the business's rows (clients, home access, visits).
    assert result.rows == (CLIENTS + 2) + (CLIENTS + 2) + 1
    assert set(versions(a.owner)) == {2}
    assert states(a.owner.tenant_id) == {1: "retired", 2: "primary"}
    new_blob = stored(a.owner, "clients_client", "email", next(iter(expected)))
    assert version_of(new_blob) == 2 and new_blob[5:] != old_blob[5:]
    read_all(a.owner, expected)
    assert any("clients_client: 10 rows checked" in line for line in progress)
    # The other business is untouched.
    assert versions(b.owner) == before_b and set(before_b) == {1}
    assert states(b.owner.tenant_id) == {1: "primary"}


def test_an_interrupted_rotation_is_finished_by_the_next_run(
    matrix: TenantMatrix, in_test_transaction: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = matrix.a
    expected = populate(a.owner)
    real = rows.rewrite_batch
    calls = {"n": 0}

    def power_cut(*args: Any, **kwargs: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("power cut")
        return real(*args, **kwargs)

    monkeypatch.setattr(actions, "rewrite_batch", power_cut)
    act(a.owner)
    with pytest.raises(RuntimeError, match="power cut"):
        actions.do_rotate_business_key(a.owner.tenant_id)
    # Half done: two batches under v2, the rest still under v1; both keys live; all readable.
    mixed = versions(a.owner)
    assert mixed[2] == 2 * 10 * 4 and mixed[1] > 0
    assert states(a.owner.tenant_id) == {1: "previous", 2: "primary"}
    read_all(a.owner, expected)
    status = StringIO()
    call_command("keys", "status", stdout=status)
    assert "rotation unfinished: run rotate-business" in status.getvalue()

    monkeypatch.setattr(actions, "rewrite_batch", real)
    act(a.owner)
    result = actions.do_rotate_business_key(a.owner.tenant_id)
    # The same rotation finished, not a third key started.
    assert (result.version, result.retired, result.resumed) == (2, [1], True)
    assert set(versions(a.owner)) == {2}
    assert states(a.owner.tenant_id) == {1: "retired", 2: "primary"}
    read_all(a.owner, expected)


def test_rotation_is_recorded_in_the_business_trail(
    matrix: TenantMatrix, in_test_transaction: None
) -> None:
    from tests.audit.support import chain_events

    a = matrix.a
    act(a.owner)
    actions.do_rotate_business_key(a.owner.tenant_id)
    rotations = [e for e in chain_events(a.owner) if e["action"] == "crypto.key.rotate"]
    details = [json.loads(e["detail"]) for e in rotations]
    assert [(d["phase"], d["version"]) for d in details] == [("started", 2), ("finished", 2)]
    assert details[1]["retired"] == [1] and details[1]["rows"] > 0


def test_status_shows_versions_states_ages_and_counts(
    matrix: TenantMatrix, in_test_transaction: None
) -> None:
    a = matrix.a
    act(a.owner)
    actions.do_rotate_business_key(a.owner.tenant_id)
    out = StringIO()
    call_command("keys", "status", "--business", business_slug(a.owner), stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("key-encryption key: ")
    assert lines[1] == business_slug(a.owner)
    assert lines[2].split()[:2] == ["v1", "retired"] and lines[2].split()[-2:] == ["0", "values"]
    assert lines[3].split()[:2] == ["v2", "primary"]
    assert lines[3].split()[-2] == str(sum(versions(a.owner).values()))
    with pytest.raises(CommandError, match="No business with the slug 'nope'"):
        call_command("keys", "rotate-business", "nope", stdout=StringIO())


def business_slug(owner: Actor) -> str:
    act(owner)
    return owner.business.slug


@pytest.fixture
def own_kek(matrix: TenantMatrix, tmp_path: Path) -> Iterator[Path]:
    """Copies of the KEK keyring and of the matrix's key files for this test (rotate-kek
    rewrites both), put back afterwards."""
    original_kek, original_keystore = settings.KEK_KEYRING_FILE, settings.KEYSTORE_DIR
    copy = tmp_path / "kek-keyring.json"
    shutil.copy2(original_kek, copy)
    (tmp_path / "keys").mkdir(mode=0o700)
    for business in (matrix.a, matrix.b):
        shutil.copy2(keystore.path_for(business.owner.tenant_id), tmp_path / "keys")
    settings.KEK_KEYRING_FILE, settings.KEYSTORE_DIR = copy, tmp_path / "keys"
    keyring.reset()
    yield copy
    settings.KEK_KEYRING_FILE, settings.KEYSTORE_DIR = original_kek, original_keystore
    keyring.reset()


def keyring_ids(path: Path) -> list[str]:
    return [key["id"] for key in json.loads(path.read_text())["keys"]]


def age_retired_keks(path: Path, days: int) -> None:
    """Pretend the keyring's retired KEKs were retired `days` ago."""
    document = json.loads(path.read_text())
    for entry in document["keys"]:
        if "retired" in entry:
            entry["retired"] = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).isoformat()
    path.write_text(json.dumps(document))


def test_rotate_kek_rewraps_every_key_and_retires_the_old_kek(
    matrix: TenantMatrix, own_kek: Path
) -> None:
    old_copy = own_kek.with_name("old-keyring.json")
    shutil.copy2(own_kek, old_copy)
    old_id = keyring.provider().primary_id
    out = StringIO()
    call_command("keys", "rotate-kek", stdout=out)
    new_id = keyring_ids(own_kek)[0]
    assert new_id != old_id
    assert keystore.keks_in_use() == {new_id}
    # The old KEK stays a day for servers that have not re-read the keyring yet ...
    assert keyring_ids(own_kek) == [new_id, old_id]
    assert "removed" not in out.getvalue()
    # ... then the daily maintenance removes it.
    age_retired_keks(own_kek, days=2)
    out = StringIO()
    call_command("keys", "rotate-all", stdout=out)
    assert f"retired key-encryption keys removed: {old_id}" in out.getvalue()
    assert keyring_ids(own_kek) == [new_id]
    # The data still reads (a fresh process: nothing cached).
    keyring.reset()
    act(matrix.a.owner)
    assert Client.objects.get(pk=matrix.a.client.pk).email == matrix.a.client.email
    # The old KEK alone opens nothing any more.
    settings.KEK_KEYRING_FILE = old_copy
    keyring.reset()
    with pytest.raises(KekError, match=f"needs {new_id}|needs key-encryption key {new_id}"):
        keyring.keys_for(matrix.a.owner.tenant_id)
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT target_id FROM audit_auditevent WHERE action = 'crypto.kek.rotate'")
        assert cursor.fetchall() == [(new_id,)]


def test_a_running_server_follows_a_kek_rotation_made_elsewhere(
    matrix: TenantMatrix, own_kek: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This process has the old KEK and the keys loaded when another process rotates the KEK:
    it keeps reading, and a business it creates afterwards is wrapped with the new KEK."""
    from custodia.accounts.models import User
    from custodia.crypto.kek import LocalKeks, add_file_kek, prune_file_keks, read_keyring_file
    from custodia.tenancy.actions import do_create_business

    act(matrix.a.owner)
    assert Client.objects.get(pk=matrix.a.client.pk).email == matrix.a.client.email
    old_id = keyring.provider().primary_id
    # "Another process": a new KEK, every key file re-wrapped, nothing in this process reset.
    new_id = add_file_kek()
    for business in keystore.business_ids():
        keystore.rewrap(business, LocalKeks("file", read_keyring_file(own_kek)))
    monkeypatch.setattr(keyring, "REFRESH_SECONDS", 0.0)
    act(matrix.b.owner)
    assert Client.objects.get(pk=matrix.b.client.pk).email == matrix.b.client.email
    assert keyring.provider().primary_id == new_id
    owner = User.objects.create_user(email="late@example.test", password=None)
    late = do_create_business(name="Created after the rotation", owner=owner)
    assert keystore.read(late.tenant_id).index.kek == new_id
    # Once the old KEK is gone for good, everything still opens (a fresh process).
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    assert prune_file_keks(now=later) == [old_id]
    keyring.reset()
    for business in (matrix.a, matrix.b):
        act(business.owner)
        assert Client.objects.get(pk=business.client.pk).email == business.client.email
    keystore.destroy(late.tenant_id)


@pytest.fixture
def small_keystore(matrix: TenantMatrix, tmp_path: Path) -> Iterator[Path]:
    """A keystore holding only the matrix's two businesses (the session's keystore also holds
    the keys of every business earlier tests made and rolled back)."""
    original = settings.KEYSTORE_DIR
    directory = tmp_path / "keys"
    directory.mkdir(mode=0o700)
    for business in (matrix.a, matrix.b):
        shutil.copy2(keystore.path_for(business.owner.tenant_id), directory)
    settings.KEYSTORE_DIR = directory
    keyring.reset()
    yield directory
    settings.KEYSTORE_DIR = original
    keyring.reset()


def test_daily_maintenance_rotates_due_keys_and_destroys_expired_and_orphan_ones(
    matrix: TenantMatrix, in_test_transaction: None, small_keystore: Path
) -> None:
    import os
    import uuid

    a, b = matrix.a, matrix.b
    # Alpha's key is two years old; Bravo's is new.
    key_file = keystore.read(a.owner.tenant_id)
    key_file.keys[0].created_at = "2024-11-01T00:00:00+00:00"
    keystore.write(key_file)
    # A key file whose business is gone (its destruction after the deletion failed), an hour
    # old, and one just made (a business being created right now).
    orphan, newborn = uuid.uuid4(), uuid.uuid4()
    for business in (orphan, newborn):
        keyring.create_keys(business)
    old = keystore.path_for(orphan).stat().st_mtime - 2 * 60 * 60
    os.utime(keystore.path_for(orphan), (old, old))

    act(a.owner)
    out = StringIO()
    call_command("keys", "maintain", "--once", stdout=out)
    assert states(a.owner.tenant_id) == {1: "retired", 2: "primary"}
    assert states(b.owner.tenant_id) == {1: "primary"}
    assert not keystore.path_for(orphan).exists()
    assert keystore.path_for(newborn).exists()
    assert f"{orphan}: orphan key file destroyed (no such business)" in out.getvalue()

    # A year and more later, the retired key goes (backups that needed it are gone too).
    key_file = keystore.read(a.owner.tenant_id)
    key_file.keys[0].retired_at = "2020-01-01T00:00:00+00:00"
    keystore.write(key_file)
    out = StringIO()
    call_command("keys", "rotate-all", stdout=out)
    assert states(a.owner.tenant_id) == {2: "primary"}
    assert f"{a.owner.tenant_id}: retired versions [1] destroyed" in out.getvalue()
    act(a.owner)
    assert Client.objects.get(pk=a.client.pk).email == a.client.email


def test_maintenance_refuses_to_shred_a_keystore_the_database_does_not_know(
    matrix: TenantMatrix, in_test_transaction: None, small_keystore: Path
) -> None:
    """Pointed at the wrong (or an empty) database, most key files look orphaned: nothing is
    destroyed."""
    import os
    import uuid

    strangers = [uuid.uuid4() for _ in range(5)]
    for business in strangers:
        keyring.create_keys(business)
        old = keystore.path_for(business).stat().st_mtime - 2 * 60 * 60
        os.utime(keystore.path_for(business), (old, old))
    with pytest.raises(CommandError, match="refusing to destroy them"):
        call_command("keys", "rotate-all", stdout=StringIO())
    assert all(keystore.path_for(business).exists() for business in strangers)


def test_a_second_rotation_of_the_same_business_is_refused_while_one_runs(
    matrix: TenantMatrix, in_test_transaction: None
) -> None:
    a = matrix.a
    name = f"custodia key rotation {a.owner.tenant_id}"
    # Another process (here: the owner connection) is rotating this business.
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [name])
    try:
        with pytest.raises(CommandError, match="is already running"):
            call_command("keys", "rotate-business", business_slug(a.owner), stdout=StringIO())
        assert states(a.owner.tenant_id) == {1: "primary"}
    finally:
        with connections["owner"].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [name])
    act(a.owner)
    assert actions.do_rotate_business_key(a.owner.tenant_id).version == 2


def test_a_retired_key_a_late_writer_still_used_is_not_destroyed_with_its_value(
    matrix: TenantMatrix, in_test_transaction: None, small_keystore: Path
) -> None:
    """A process that cached v1 just before a rotation and committed after its last sweep leaves
    a value under a version that is then retired: destroying that version must not shred it."""
    from custodia.crypto.fields import seal_text
    from tests.crypto.support import plant

    a = matrix.a
    act(a.owner)
    late = seal_text(a.owner.tenant_id, "clients_client", "notes", a.client.pk, "late note")
    actions.do_rotate_business_key(a.owner.tenant_id)
    plant(a.owner, "clients_client", "notes", a.client.pk, late)
    assert versions(a.owner)[1] == 1
    status = StringIO()
    call_command("keys", "status", "--business", business_slug(a.owner), stdout=status)
    assert "values under retired versions [1]" in status.getvalue()

    key_file = keystore.read(a.owner.tenant_id)
    key_file.keys[0].retired_at = "2020-01-01T00:00:00+00:00"
    keystore.write(key_file)
    act(a.owner)
    destroyed = actions.do_destroy_expired_keys()
    assert destroyed == {a.owner.tenant_id: [1]}
    assert set(versions(a.owner)) == {2}
    act(a.owner)
    assert Client.objects.get(pk=a.client.pk).notes == "late note"


def test_rotation_stops_at_a_tampered_value_nobody_has_read(
    matrix: TenantMatrix, in_test_transaction: None
) -> None:
    from custodia.crypto.errors import IntegrityFailure
    from tests.crypto.support import plant

    a = matrix.a
    expected = populate(a.owner)
    victim = list(expected)[-1]  # a row in the last batch: earlier batches are rewritten first
    blob = bytearray(stored(a.owner, "clients_client", "notes", victim))
    blob[-1] ^= 1
    plant(a.owner, "clients_client", "notes", victim, bytes(blob))
    act(a.owner)
    with pytest.raises(IntegrityFailure) as failure:
        actions.do_rotate_business_key(a.owner.tenant_id)
    assert (failure.value.table, failure.value.column, failure.value.row) == (
        "clients_client",
        "notes",
        str(victim),
    )
    # Stopped, not laundered: the altered value is not re-sealed under the new key as if it
    # were genuine, and the old key stays (previous, not retired) so the rotation can resume.
    assert stored(a.owner, "clients_client", "notes", victim) == bytes(blob)
    assert states(a.owner.tenant_id) == {1: "previous", 2: "primary"}


def test_rotation_reseals_visit_photos(matrix: TenantMatrix, in_test_transaction: None) -> None:
    from custodia.scheduling.models import VisitPhoto
    from custodia.scheduling.reporting import do_add_visit_photo
    from tests.scheduling.photos_support import photo_bytes

    a = matrix.a
    act(a.staff)
    photos = [do_add_visit_photo(a.visit, photo_bytes(), actor=a.staff) for _ in range(3)]
    act(a.owner)
    before = {
        photo.pk: (bytes(photo.image), bytes(photo.thumbnail))
        for photo in VisitPhoto.objects.filter(pk__in=[p.pk for p in photos])
    }
    old_blob = stored(a.owner, "scheduling_visitphoto", "image", photos[0].pk)
    assert version_of(old_blob) == 1
    result = actions.do_rotate_business_key(a.owner.tenant_id)
    assert result.version == 2
    assert set(versions(a.owner)) == {2}
    new_blob = stored(a.owner, "scheduling_visitphoto", "image", photos[0].pk)
    assert version_of(new_blob) == 2 and new_blob[5:] != old_blob[5:]
    act(a.owner)
    after = {
        photo.pk: (bytes(photo.image), bytes(photo.thumbnail))
        for photo in VisitPhoto.objects.filter(pk__in=[p.pk for p in photos])
    }
    assert after == before


def test_rotation_reseals_pet_photos(matrix: TenantMatrix, in_test_transaction: None) -> None:
    from custodia.clients.models import Pet
    from custodia.clients.profile_actions import do_create_pet, do_set_pet_photo
    from tests.scheduling.photos_support import photo_bytes

    a = matrix.a
    act(a.owner)
    pet = do_create_pet(a.client, actor=a.owner, name="Miso")
    do_set_pet_photo(pet, photo_bytes(), actor=a.owner)
    act(a.owner)
    before = Pet.objects.get(pk=pet.pk)
    images = (bytes(before.photo), bytes(before.photo_thumbnail))
    old_blob = stored(a.owner, "clients_pet", "photo", pet.pk)
    assert version_of(old_blob) == 1
    assert actions.do_rotate_business_key(a.owner.tenant_id).version == 2
    assert set(versions(a.owner)) == {2}
    new_blob = stored(a.owner, "clients_pet", "photo", pet.pk)
    assert version_of(new_blob) == 2 and new_blob[5:] != old_blob[5:]
    assert version_of(stored(a.owner, "clients_pet", "photo_thumbnail", pet.pk)) == 2
    act(a.owner)
    after = Pet.objects.get(pk=pet.pk)
    assert (bytes(after.photo), bytes(after.photo_thumbnail)) == images
