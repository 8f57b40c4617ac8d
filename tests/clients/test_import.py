"""Importing clients from CSV: the reader, the rules by row and column, all or nothing, the
audit events, and the round trip of a business export into a new business."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied

from custodia.clients.access import list_clients
from custodia.clients.actions import (
    ImportRefused,
    check_client_rows,
    do_create_client,
    do_import_clients,
)
from custodia.clients.importing import (
    MAX_BYTES,
    MAX_ROWS,
    ImportFileError,
    ImportRow,
    RowError,
    parse_csv,
)
from custodia.clients.models import Client, Pet
from custodia.core.actor import Actor
from custodia.lifecycle.export.actions import write_business_archive
from custodia.tenancy.actions import do_create_business
from tests.acting import act
from tests.audit.support import chain_events
from tests.crypto.support import stored
from tests.factories import TenantMatrix, UserFactory, authenticated
from tests.lifecycle.export_support import export_env, read_zip

pytestmark = pytest.mark.django_db
__all__ = ["export_env"]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def clients_of(actor: Actor) -> list[tuple[str, str, str, str, str]]:
    act(actor)
    return sorted(
        (client.name, client.email, client.phone, client.address, client.notes)
        for client in Client.objects.filter(tenant_id=actor.tenant_id)
    )


# --- The reader -------------------------------------------------------------------------------


def test_a_hand_made_file_with_a_bom_and_headers_in_any_case():
    data = "\ufeffName , EMAIL,Phone\r\nAda,ada@example.test,+44 20 7946 0000\r\n\r\n".encode()
    rows, errors = parse_csv(data + b'"Hopper, Grace",,\r\n')
    assert errors == []
    assert rows == [
        ImportRow(2, {"name": "Ada", "email": "ada@example.test", "phone": "+44 20 7946 0000"}),
        # The blank line is skipped; rows keep the numbers a spreadsheet shows.
        ImportRow(4, {"name": "Hopper, Grace", "email": "", "phone": ""}),
    ]


def test_a_cell_with_a_line_break_is_one_row_and_short_rows_are_padded():
    rows, errors = parse_csv(b'name,address,notes\n"A","1 Road\nTown"\nB,,x,y\nC\n')
    assert rows[0] == ImportRow(2, {"name": "A", "address": "1 Road\nTown"})
    assert rows[1] == ImportRow(4, {"name": "C"})
    assert errors == [RowError(3, "", "The row has 4 cells; the header names 3.")]


def test_the_exports_apostrophe_is_taken_off_and_nothing_else():
    data = b"name,phone,notes\n'=SUM(A1),'+1 555,'plain\n"
    [row], _ = parse_csv(data)
    assert row.client == {"name": "=SUM(A1)", "phone": "+1 555", "notes": "'plain"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty"),
        (b"name,email\n", "a header but no rows"),
        (b"name,e-mail\nA,a@b.test\n", "Column 2 (e-mail) is not one this import knows"),
        (b"email\na@b.test\n", "The file needs a name column."),
        (b"name,Name\nA,B\n", "The column name appears twice."),
        ("name\nZoë\n".encode("latin-1"), "The file is not UTF-8 text"),
        (b"name\nA\x00\n", "not a CSV text file"),
        (b'name\n"A"x\n', "The file is not valid CSV near line 2"),
        (b"x" * (MAX_BYTES + 1), "larger than 2 MB"),
        (b"name\n" + b"A\n" * (MAX_ROWS + 1), "more than 5,000 rows"),
    ],
)
def test_a_bad_file_is_refused_whole_with_the_reason(data: bytes, message: str):
    with pytest.raises(ImportFileError) as refused:
        parse_csv(data)
    assert message in str(refused.value)


def test_five_thousand_rows_are_accepted():
    rows, errors = parse_csv(b"name\n" + b"A\n" * MAX_ROWS)
    assert len(rows) == MAX_ROWS and errors == []


# --- The rules, by row and column ---------------------------------------------------------------


def test_each_bad_cell_is_named_by_row_and_column(matrix: TenantMatrix):
    owner = act(matrix.a.owner)
    rows, _ = parse_csv(
        b"name,email,phone\n"
        b"Good,good@example.test,555 0101\n"
        b"Bad Email,not-an-email,\n"
        b",,\n"  # blank: skipped
        b",x@example.test,12\n"
        b"Twin,GOOD@example.test,\n"
        b"Existing,client@alpha.test,\n"
    )
    errors = check_client_rows(rows, actor=owner)
    assert errors == [
        RowError(3, "email", "Enter a valid email address."),
        RowError(5, "name", "A client needs a name."),
        RowError(5, "phone", "Enter a phone number with at least 5 digits."),
        RowError(6, "email", "The same email as row 2."),
        RowError(7, "email", "A client with this email exists already."),
    ]
    # Another business's client with the same email is no duplicate.
    act(matrix.b.owner)
    [existing_in_a] = parse_csv(b"name,email\nX,client@alpha.test\n")[0]
    assert check_client_rows([existing_in_a], actor=matrix.b.owner) == []


def test_a_file_with_errors_writes_nothing(matrix: TenantMatrix):
    owner = act(matrix.a.owner)
    before = clients_of(owner)
    rows, _ = parse_csv(b"name,email\nFine,fine@example.test\nBroken,broken@\n")
    with pytest.raises(ImportRefused) as refused:
        do_import_clients(rows, actor=owner)
    assert refused.value.row_errors == [RowError(3, "email", "Enter a valid email address.")]
    assert refused.value.messages == ["Row 3, email: Enter a valid email address."]
    assert clients_of(owner) == before
    assert not [e for e in chain_events(owner) if e["action"] == "client.import"]


def test_staff_and_clients_may_not_import(matrix: TenantMatrix):
    rows = [ImportRow(2, {"name": "Sneaky"})]
    for actor in (matrix.a.staff, matrix.a.client_login):
        act(actor)
        with pytest.raises(PermissionDenied):
            check_client_rows(rows, actor=actor)
        with pytest.raises(PermissionDenied):
            do_import_clients(rows, actor=actor)


def test_an_import_is_audited_like_single_creations_plus_its_count(matrix: TenantMatrix):
    manager = act(matrix.a.manager)
    rows, _ = parse_csv(b"name,email,notes\nAda,ada@example.test,\nBo,,likes cats\n")
    created = do_import_clients(rows, actor=manager)
    assert [client.name for client in created] == ["Ada", "Bo"]
    events = chain_events(matrix.a.owner)[-3:]
    assert [event["action"] for event in events] == ["client.create"] * 2 + ["client.import"]
    assert events[0]["target_id"] == str(created[0].pk)
    details = [json.loads(event["detail"]) for event in events]
    assert details == [{"fields": ["email", "name"]}, {"fields": ["name", "notes"]}, {"count": 2}]
    # The values are sealed like a single creation's, and searchable by email.
    assert list(list_clients(manager, query="ADA@example.test")) == [created[0]]


def test_one_bad_row_is_named_by_row_and_column(matrix: TenantMatrix):
    owner = act(matrix.a.owner)
    rows, _ = parse_csv(b"Name,Email\nSolo,solo@@example.test\n")
    assert check_client_rows(rows, actor=owner) == [
        RowError(2, "email", "Enter a valid email address.")
    ]


# --- Pets -------------------------------------------------------------------------------------

PET_FILE = (
    b"name,email,pet_name,pet_species,pet_breed,pet_birthday,pet_feeding,pet_medication,"
    b"pet_vet_name,pet_vet_phone\n"
    b"Ada,ada@example.test,Miso,cat,Siamese,2019-04-01,Twice a day,Thyroxine,Dr Vet,555 0101\n"
    b"Bo,,,,,,,,,\n"
)


def test_pet_columns_give_one_pet_per_row(matrix: TenantMatrix):
    rows, errors = parse_csv(PET_FILE)
    assert errors == []
    assert rows[0].has_pet and not rows[1].has_pet
    assert rows[0].pet["birthday"] == "2019-04-01" and rows[0].pet["vet_name"] == "Dr Vet"
    # The preview's signed field carries the pet.
    assert ImportRow.from_json(json.loads(json.dumps(rows[0].to_json()))) == rows[0]
    with pytest.raises(ValueError):
        ImportRow.from_json([2, {"name": "X"}, {"door_code": "1234"}])

    manager = act(matrix.a.manager)
    created = do_import_clients(rows, actor=manager)
    act(matrix.a.owner)
    [pet] = Pet.objects.filter(tenant_id=matrix.a.owner.tenant_id, client=created[0])
    assert (pet.name, pet.species, pet.breed, pet.birthday.isoformat()) == (
        "Miso",
        "cat",
        "Siamese",
        "2019-04-01",
    )
    assert (pet.feeding, pet.medication, pet.vet_name, pet.vet_phone) == (
        "Twice a day",
        "Thyroxine",
        "Dr Vet",
        "555 0101",
    )
    assert not Pet.objects.filter(client=created[1]).exists()
    # Sealed as on the pet form.
    assert stored(matrix.a.owner, "clients_pet", "medication", pet.pk)[:1] == b"\x01"
    events = chain_events(matrix.a.owner)[-4:]
    assert [event["action"] for event in events] == [
        "client.create",
        "client.create",
        "pet.create",
        "client.import",
    ]
    assert events[2]["target_id"] == str(pet.pk)
    assert str(events[2]["client_id"]) == str(created[0].pk)
    assert json.loads(events[3]["detail"]) == {"count": 2, "pets": 1}


def test_bad_pet_cells_are_named_by_row_and_column_and_nothing_is_written(matrix: TenantMatrix):
    owner = act(matrix.a.owner)
    before = clients_of(owner)
    pets_before = Pet.objects.count()
    rows, _ = parse_csv(
        b"name,pet_name,pet_species,pet_birthday\n"
        b"Ok,Rex,dog,2020-01-01\n"
        b"Bad date,Rex,dog,01/02/2020\n"
        b"No pet name,,dog,\n"
        b"Future,Rex,,2999-01-01\n"
        b"Long,Rex," + b"x" * 61 + b",\n"
    )
    errors = check_client_rows(rows, actor=owner)
    assert errors == [
        RowError(3, "pet_birthday", "Enter a date as YYYY-MM-DD."),
        RowError(4, "pet_name", "A pet needs a name."),
        RowError(5, "pet_birthday", "A birthday cannot be in the future."),
        RowError(6, "pet_species", "At most 60 characters."),
    ]
    with pytest.raises(ImportRefused):
        do_import_clients(rows, actor=owner)
    assert clients_of(owner) == before
    assert Pet.objects.count() == pets_before


# --- The round trip -------------------------------------------------------------------------------


def test_an_export_imports_into_a_new_business_as_the_same_clients(
    matrix: TenantMatrix, export_env: Path, tmp_path: Path
):
    owner = act(matrix.a.owner)
    do_create_client(
        actor=owner,
        name='=HYPERLINK("http://evil.test")',
        email="tricky@example.test",
        phone="+1 555 0199",
        address='2 Quote "Lane",\nFlat 3',
        notes="-5 treats; @home\tTabbed; Zoë ✓",
    )
    path = tmp_path / "export.zip"
    with path.open("wb") as out:
        write_business_archive(owner, out, progress=None)
    clients_csv = read_zip(path.read_bytes())["clients.csv"]
    assert b"'=HYPERLINK" in clients_csv and b"'+1 555 0199" in clients_csv

    new_owner = authenticated(do_create_business(name="Delta", owner=UserFactory()))
    act(new_owner)
    rows, errors = parse_csv(clients_csv)
    assert errors == []
    do_import_clients(rows, actor=new_owner)
    assert clients_of(new_owner) == clients_of(matrix.a.owner)
    assert len(clients_of(new_owner)) == 3
