"""Encrypted fields: what goes in comes out, what is stored reveals nothing, and a stored value
that was altered, truncated, relabelled or moved to another row, column or business is refused."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import FieldError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Cast
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from custodia.clients.access import access_client_by_id
from custodia.clients.actions import do_update_client
from custodia.clients.models import Client, HomeAccess
from custodia.core.actor import Actor
from custodia.crypto import keyring, keystore
from custodia.crypto.errors import IntegrityFailure, KeyUnavailable
from custodia.crypto.fields import EncryptedTextField, Sealed, open_text, seal_text
from custodia.scheduling.actions import do_request_visit, do_update_visit
from custodia.scheduling.models import Visit
from custodia.tenancy.reads import Intent
from tests.acting import act
from tests.crypto.support import plant, stored
from tests.factories import TenantMatrix

pytestmark = pytest.mark.django_db

HEADER = 5
VERSION_1 = (1).to_bytes(4, "big")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def fresh_client(actor: Actor, client_id: object) -> Client:
    """The client as stored now: a new instance whose fields have not been opened yet."""
    act(actor)
    return Client.objects.get(tenant_id=actor.tenant_id, id=client_id)


# --- Round trips -------------------------------------------------------------------------------

ROUND_TRIP = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@ROUND_TRIP
@given(text=st.text(max_size=10_000))
@example(text="")
@example(text="\x00 NUL and \U0001f511 emoji, Ünïcödé, 日本語, \u200b zero width")
@example(text="x" * 10_000)
@example(text=" leading and trailing space \n")
def test_any_text_saved_on_the_model_reads_back_equal(matrix: TenantMatrix, text: str) -> None:
    owner = matrix.a.owner
    client = fresh_client(owner, matrix.a.client.pk)
    client.notes = text
    client.address = text
    client.save(update_fields=["notes", "address"])
    again = fresh_client(owner, client.pk)
    assert again.notes == text
    assert again.address == text
    assert isinstance(again.__dict__["email"], Sealed)  # nothing is opened until it is read
    assert again.email == "client@alpha.test"


@ROUND_TRIP
@given(text=st.text(max_size=10_000))
@example(text="")
@example(text="n" * 10_000)
@example(text="Ärger mit dem Schlüssel \U0001f408 \t tab")
def test_any_text_written_through_the_action_reads_back_equal(
    matrix: TenantMatrix, text: str
) -> None:
    owner = matrix.a.owner
    act(owner)
    client = access_client_by_id(owner, matrix.a.client.pk, intent=Intent.CHANGE)
    do_update_client(client, actor=owner, notes=text, instructions=text[:4000])
    again = fresh_client(owner, client.pk)
    assert again.notes == text.strip()  # the action trims input; nothing else changes
    home = HomeAccess.objects.get(tenant_id=owner.tenant_id, client_id=client.pk)
    assert home.instructions == text[:4000].strip()


IDENTIFIER = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=30)
PLACE = st.tuples(IDENTIFIER, IDENTIFIER, st.uuids())


@pytest.fixture(scope="module")
def two_businesses() -> tuple[uuid.UUID, uuid.UUID]:
    """Two businesses' keys in the keystore (no rows needed: sealing is pure)."""
    ids = (uuid.uuid4(), uuid.uuid4())
    for business in ids:
        keyring.create_keys(business)
    return ids


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=2000), place=PLACE, other=PLACE)
@example(text="", place=("t", "c", uuid.UUID(int=1)), other=("t", "c", uuid.UUID(int=2)))
def test_seal_and_open_round_trip_only_at_the_same_place(
    two_businesses: tuple[uuid.UUID, uuid.UUID],
    text: str,
    place: tuple[str, str, uuid.UUID],
    other: tuple[str, str, uuid.UUID],
) -> None:
    business, other_business = two_businesses
    blob = seal_text(business, *place, text)
    assert open_text(business, *place, blob) == text
    assert blob[:HEADER] == b"\x01" + VERSION_1
    if len(text.encode()) >= 8:  # a shorter string can turn up in random bytes by chance
        assert text.encode() not in blob
    # Sealing twice gives two ciphertexts (a fresh nonce each time).
    assert seal_text(business, *place, text) != blob
    if other != place:
        with pytest.raises(IntegrityFailure):
            open_text(business, *other, blob)
    with pytest.raises(IntegrityFailure):
        open_text(other_business, *place, blob)


# --- What is stored ----------------------------------------------------------------------------

SENSITIVE = {
    "email": "zq-fields-7731@example.test",
    "phone": "+44 20 7946 0958",
    "address": "17 Marker Lane, Testham",
    "notes": "Dog bites strangers; spare key with neighbour",
    "instructions": "Gate code is on the fridge",
    "door_code": "88-marker-4412",
    "alarm_code": "55-marker-9090",
}


def assert_sealed(blob: bytes, plaintext: str) -> None:
    assert blob[0] == 1, blob[:1]
    assert blob[1:HEADER] == VERSION_1
    assert len(blob) >= HEADER + 12 + 16 + len(plaintext.encode())
    assert plaintext.encode() not in blob
    assert plaintext.lower().encode() not in blob.lower()


def test_client_and_home_access_columns_hold_only_ciphertext(matrix: TenantMatrix) -> None:
    owner = matrix.a.owner
    act(owner)
    client = access_client_by_id(owner, matrix.a.client.pk, intent=Intent.CHANGE)
    do_update_client(client, actor=owner, **SENSITIVE)
    for column in ("email", "phone", "address", "notes"):
        assert_sealed(stored(owner, "clients_client", column, client.pk), SENSITIVE[column])
    for column in ("instructions", "door_code", "alarm_code"):
        assert_sealed(stored(owner, "clients_homeaccess", column, client.pk), SENSITIVE[column])
    # The name is plaintext on purpose (ordering, prefix search): the same read shows it, so
    # this test would notice a column it could not read.
    act(owner)
    assert Client.objects.values_list("name", flat=True).get(pk=client.pk) == "Alpha Client"


def test_visit_report_and_request_note_hold_only_ciphertext(matrix: TenantMatrix) -> None:
    a = matrix.a
    act(a.owner)
    report = "Marker report: fed the cat, the back window is broken"
    do_update_visit(a.visit, actor=a.owner, report=report)
    act(a.client_login)
    note = "Marker request: please water the orchids"
    requested = do_request_visit(
        actor=a.client_login, starts_at=timezone.now() + dt.timedelta(days=2), note=note
    )
    assert_sealed(stored(a.owner, "scheduling_visit", "report", a.visit.pk), report)
    assert_sealed(stored(a.owner, "scheduling_visit", "request_note", requested.pk), note)
    act(a.owner)
    assert Visit.objects.get(pk=a.visit.pk).report == report
    assert Visit.objects.get(pk=requested.pk).request_note == note


# --- Moved, altered, truncated, relabelled --------------------------------------------------


def read_email(actor: Actor, client_id: object) -> str:
    act(actor)
    return access_client_by_id(actor, client_id, intent=Intent.CHANGE).email


def assert_refused_and_logged(
    caplog: pytest.LogCaptureFixture,
    read: Callable[[], object],
    *,
    table: str,
    column: str,
    row: object,
    blobs: list[bytes],
    plaintext: str = "client@alpha.test",
) -> None:
    """Reading raises IntegrityFailure, logged at ERROR with ids and without value or bytes."""
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="custodia.crypto"):
        with pytest.raises(IntegrityFailure) as failure:
            read()
    assert (failure.value.table, failure.value.column, failure.value.row) == (
        table,
        column,
        str(row),
    )
    records = [r for r in caplog.records if r.name == "custodia.crypto"]
    assert len(records) == 1, caplog.records
    record = records[0]
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    assert table in message and column in message and str(row) in message
    shown = (message + repr(record.args) + repr(record.__dict__) + str(failure.value)).lower()
    assert plaintext.lower() not in shown
    for blob in blobs:
        assert blob.hex() not in shown
        assert blob[HEADER:].hex()[:32] not in shown


def test_value_copied_to_another_client_is_refused(
    matrix: TenantMatrix, caplog: pytest.LogCaptureFixture
) -> None:
    owner, one, two = matrix.a.owner, matrix.a.client, matrix.a.other_client
    blob = stored(owner, "clients_client", "email", one.pk)
    plant(owner, "clients_client", "email", two.pk, blob)
    assert_refused_and_logged(
        caplog,
        lambda: read_email(owner, two.pk),
        table="clients_client",
        column="email",
        row=two.pk,
        blobs=[blob],
    )
    assert read_email(owner, one.pk) == "client@alpha.test"  # the original is untouched


def test_value_moved_to_another_column_of_the_row_is_refused(
    matrix: TenantMatrix, caplog: pytest.LogCaptureFixture
) -> None:
    owner, client = matrix.a.owner, matrix.a.client
    blob = stored(owner, "clients_client", "email", client.pk)
    plant(owner, "clients_client", "notes", client.pk, blob)
    assert_refused_and_logged(
        caplog,
        lambda: fresh_client(owner, client.pk).notes,
        table="clients_client",
        column="notes",
        row=client.pk,
        blobs=[blob],
    )


def test_value_moved_to_another_business_is_refused(
    matrix: TenantMatrix, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = matrix.a, matrix.b
    blob = stored(a.owner, "clients_client", "email", a.client.pk)
    plant(b.owner, "clients_client", "email", b.client.pk, blob)
    assert_refused_and_logged(
        caplog,
        lambda: read_email(b.owner, b.client.pk),
        table="clients_client",
        column="email",
        row=b.client.pk,
        blobs=[blob],
    )
    # Door codes too: Alpha's sealed code in Bravo's home access.
    code = stored(a.owner, "clients_homeaccess", "door_code", a.client.pk)
    plant(b.owner, "clients_homeaccess", "door_code", b.client.pk, code)
    act(b.owner)
    home = HomeAccess.objects.get(tenant_id=b.owner.tenant_id, client_id=b.client.pk)
    with pytest.raises(IntegrityFailure):
        _ = home.door_code


def test_value_relabelled_with_another_key_version_is_refused(
    matrix: TenantMatrix, caplog: pytest.LogCaptureFixture
) -> None:
    owner, client = matrix.a.owner, matrix.a.client
    blob = stored(owner, "clients_client", "email", client.pk)
    keystore.add_version(owner.tenant_id, keyring.provider())
    keyring.keys_for(owner.tenant_id, refresh=True)
    relabelled = blob[:1] + (2).to_bytes(4, "big") + blob[HEADER:]
    plant(owner, "clients_client", "email", client.pk, relabelled)
    assert_refused_and_logged(
        caplog,
        lambda: read_email(owner, client.pk),
        table="clients_client",
        column="email",
        row=client.pk,
        blobs=[blob, relabelled],
    )
    # A version the business never had (nor destroyed): tampering, refused and logged the same.
    unknown = blob[:1] + (77).to_bytes(4, "big") + blob[HEADER:]
    plant(owner, "clients_client", "email", client.pk, unknown)
    caplog.clear()
    assert_refused_and_logged(
        caplog,
        lambda: read_email(owner, client.pk),
        table="clients_client",
        column="email",
        row=client.pk,
        blobs=[blob, unknown],
    )


def test_a_value_under_a_destroyed_version_is_unavailable_not_tampered(
    matrix: TenantMatrix, caplog: pytest.LogCaptureFixture
) -> None:
    """After a retired version's retention, a value still naming it (say, restored from an old
    backup) is "key destroyed" (410), logged as a warning with ids only."""
    owner, client = matrix.a.owner, matrix.a.client
    blob = stored(owner, "clients_client", "email", client.pk)
    keystore.add_version(owner.tenant_id, keyring.provider())
    keystore.retire_previous(owner.tenant_id)
    keystore.destroy_versions(owner.tenant_id, [1])
    keyring.keys_for(owner.tenant_id, refresh=True)
    assert keystore.read(owner.tenant_id).destroyed == [1]
    with caplog.at_level(logging.WARNING, logger="custodia.crypto"):
        with pytest.raises(KeyUnavailable, match="version 1 .* was destroyed"):
            read_email(owner, client.pk)
    [record] = [r for r in caplog.records if r.name == "custodia.crypto"]
    assert record.levelno == logging.WARNING and str(client.pk) in record.getMessage()
    assert blob.hex() not in record.getMessage() and client.email not in record.getMessage()


def flip_last_bit(blob: bytes) -> bytes:
    return blob[:-1] + bytes([blob[-1] ^ 1])


def flip_nonce_bit(blob: bytes) -> bytes:
    return blob[:HEADER] + bytes([blob[HEADER] ^ 0x80]) + blob[HEADER + 1 :]


def flip_ciphertext_bit(blob: bytes) -> bytes:
    return blob[: HEADER + 12] + bytes([blob[HEADER + 12] ^ 0x04]) + blob[HEADER + 13 :]


TAMPERING: dict[str, Callable[[bytes], bytes]] = {
    "tag bit flipped": flip_last_bit,
    "nonce bit flipped": flip_nonce_bit,
    "ciphertext bit flipped": flip_ciphertext_bit,
    "last byte cut": lambda blob: blob[:-1],
    "tag cut off": lambda blob: blob[:-16],
    "header only": lambda blob: blob[:HEADER],
    "empty": lambda blob: b"",
    "format byte 2": lambda blob: b"\x02" + blob[1:],
    "plaintext format (downgrade)": lambda blob: b"\x00client@alpha.test",
    "plaintext format, empty": lambda blob: b"\x00",
}


# Shapes the database's own CHECK (crypto/rows.py, SEALED_CHECK) refuses before anyone reads.
REFUSED_BY_THE_DATABASE = {"header only", "empty", "format byte 2"}


@pytest.mark.parametrize("how", sorted(TAMPERING))
def test_tampered_value_is_refused(
    matrix: TenantMatrix, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    owner, client = matrix.a.owner, matrix.a.client
    blob = stored(owner, "clients_client", "email", client.pk)
    if how in REFUSED_BY_THE_DATABASE:
        with pytest.raises(IntegrityError, match="clients_client_email_sealed"):
            with transaction.atomic():
                plant(owner, "clients_client", "email", client.pk, TAMPERING[how](blob))
        assert stored(owner, "clients_client", "email", client.pk) == blob
        return
    plant(owner, "clients_client", "email", client.pk, TAMPERING[how](blob))
    assert_refused_and_logged(
        caplog,
        lambda: read_email(owner, client.pk),
        table="clients_client",
        column="email",
        row=client.pk,
        blobs=[blob],
    )


def test_a_value_under_a_version_another_process_just_added_opens(
    matrix: TenantMatrix, monkeypatch: pytest.MonkeyPatch
) -> None:
    """keyring.py: "a value naming a version the cache does not know makes it re-read the file
    at once". Another process rotates and writes a row under version 2; this process, whose
    cache is fresh, must read it rather than call the key unavailable."""
    owner, client = matrix.a.owner, matrix.a.client
    monkeypatch.setattr(keyring, "REFRESH_SECONDS", 3600.0)  # the cache is well within its time
    assert keyring.keys_for(owner.tenant_id, refresh=True).primary == 1
    keystore.add_version(owner.tenant_id, keyring.provider())
    # The other process: its keys are read from the file as it is now.
    elsewhere = keyring._unwrap(keystore.read(owner.tenant_id), keyring.provider())
    assert elsewhere.primary == 2
    from custodia.crypto.fields import value_context

    context = value_context(owner.tenant_id, "clients_client", "email", client.pk)
    plant(owner, "clients_client", "email", client.pk, elsewhere.seal("new@alpha.test", context))
    assert read_email(owner, client.pk) == "new@alpha.test"


# --- Plaintext never reaches SQL ---------------------------------------------------------------


def test_queryset_update_with_plaintext_is_refused(matrix: TenantMatrix) -> None:
    act(matrix.a.owner)
    with pytest.raises(TypeError, match="encrypted"):
        Client.objects.filter(pk=matrix.a.client.pk).update(email="x@example.test")
    with pytest.raises(TypeError, match="encrypted"):
        HomeAccess.objects.update(door_code="1234")


def test_filter_on_plaintext_is_refused(matrix: TenantMatrix) -> None:
    act(matrix.a.owner)
    with pytest.raises(TypeError, match="encrypted"):
        list(Client.objects.filter(email="client@alpha.test"))
    with pytest.raises(TypeError, match="encrypted"):
        list(Client.objects.filter(email__in=["client@alpha.test"]))
    with pytest.raises(TypeError, match="encrypted"):
        list(HomeAccess.objects.filter(door_code="4711"))


@pytest.mark.parametrize(
    "lookup", ["contains", "icontains", "startswith", "endswith", "iexact", "regex", "gt"]
)
def test_other_lookups_on_plaintext_are_refused(matrix: TenantMatrix, lookup: str) -> None:
    """fields.py: "A plain string can never reach the database through ... a filter on the
    field". A pattern lookup must not send the plaintext to SQL (and silently match nothing)."""
    act(matrix.a.owner)
    with pytest.raises((TypeError, FieldError)), transaction.atomic():
        list(Client.objects.filter(**{f"email__{lookup}": "alpha"}))


def test_plaintext_in_an_expression_is_refused(matrix: TenantMatrix) -> None:
    """`Value("text")` carries its own type past the field: the lookups refuse it, and the
    database refuses what an UPDATE would store."""
    act(matrix.a.owner)
    with pytest.raises(TypeError, match="sealed values"), transaction.atomic():
        list(Client.objects.filter(email=Value("client@alpha.test")))
    with pytest.raises(TypeError, match="sealed values"), transaction.atomic():
        list(Client.objects.filter(email__in=[Value("client@alpha.test")]))
    with pytest.raises(IntegrityError, match="clients_client_email_sealed"):
        with transaction.atomic():
            Client.objects.filter(pk=matrix.a.client.pk).update(email=Value("PLAIN@x.test"))
    with pytest.raises(IntegrityError, match="clients_homeaccess_door_code_sealed"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE clients_homeaccess SET door_code = convert_to('1234', 'UTF8')")
    # A literal dressed up as a sealed column is still a literal.
    disguised = Cast(Value("client@alpha.test"), output_field=EncryptedTextField())
    with pytest.raises(TypeError, match="sealed values"), transaction.atomic():
        list(Client.objects.filter(email=disguised))
    # Comparing two sealed columns sends no plaintext (and matches nothing useful): allowed.
    assert list(Client.objects.filter(email=F("notes"))) == []
    assert stored(matrix.a.owner, "clients_client", "email", matrix.a.client.pk)[0] == 1


def test_bulk_update_with_plaintext_is_refused(matrix: TenantMatrix) -> None:
    act(matrix.a.owner)
    client = fresh_client(matrix.a.owner, matrix.a.client.pk)
    client.email = "bulk@example.test"
    with pytest.raises(TypeError, match="encrypted"), transaction.atomic():
        Client.objects.bulk_update([client], ["email"])
    assert stored(matrix.a.owner, "clients_client", "email", client.pk)[0] == 1
