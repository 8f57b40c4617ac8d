"""Pets and household details (docs/profiles.md): who reads them, who writes them, what the trail
says, and what the database holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import Http404

from custodia.clients.actions import do_assign_staff
from custodia.clients.models import Household, Pet
from custodia.clients.profile_actions import (
    do_create_pet,
    do_delete_pet,
    do_update_household,
    do_update_pet,
)
from custodia.clients.profiles import access_pet_by_id, profile_for
from custodia.core.actor import Actor
from custodia.core.audit import AuditAction
from custodia.lifecycle.erasure import do_erase_client
from custodia.lifecycle.export.actions import write_business_archive
from custodia.tenancy.reads import Intent
from tests.acting import act
from tests.audit.support import chain_events
from tests.factories import TenantMatrix, stale
from tests.lifecycle.export_support import export_env, json_rows, read_zip

__all__ = ["export_env"]

pytestmark = pytest.mark.django_db

MEDICATION = "Thyroxine 0.2mg twice daily"
WIFI_PASSWORD = "hunter2-garden-wifi"
CONTACT = "Ada Example, +1 555 0177"


def _pet(matrix: TenantMatrix, **fields: Any) -> Pet:
    owner = matrix.a.owner
    act(owner)
    values = {
        "name": "Miso",
        "species": "cat",
        "medication": MEDICATION,
        "vet_name": "Dr Vet",
        "vet_phone": "+1 555 0199",
        "notes": "Hides under the bed",
        **fields,
    }
    return do_create_pet(matrix.a.client, actor=owner, **values)


def _household(matrix: TenantMatrix, client: Any = None) -> Household:
    owner = matrix.a.owner
    act(owner)
    return do_update_household(
        client or matrix.a.client,
        actor=owner,
        keys_held="Tag 14",
        parking="Driveway",
        wifi_name="Garden",
        wifi_password=WIFI_PASSWORD,
        emergency_contact=CONTACT,
    )


def _events(matrix: TenantMatrix, action: AuditAction) -> list[dict[str, Any]]:
    """Business A's events of one kind, their detail parsed."""
    found = [e for e in chain_events(matrix.a.owner) if e["action"] == action]
    for event in found:
        if isinstance(event["detail"], str):
            event["detail"] = json.loads(event["detail"])
    return found


def test_sealed_fields_are_ciphertext_in_the_database(matrix: TenantMatrix) -> None:
    pet = _pet(matrix)
    _household(matrix)
    act(matrix.a.owner)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT medication, vet_name, vet_phone, notes, name FROM clients_pet WHERE id = %s",
            [str(pet.pk)],
        )
        [row] = cursor.fetchall()
        cursor.execute(
            "SELECT wifi_name, wifi_password, emergency_contact FROM clients_household"
            " WHERE client_id = %s",
            [str(matrix.a.client.pk)],
        )
        [home] = cursor.fetchall()
    sealed = b"".join(bytes(value) for value in (*row[:4], *home))
    for plain in (MEDICATION, "Dr Vet", "0199", "Hides", WIFI_PASSWORD, "Garden", "Ada Example"):
        assert plain.encode() not in sealed
    assert row[4] == "Miso"  # the name is plain, like a client's
    # Read back through the model, they open.
    fresh = Pet.objects.get(pk=pet.pk)
    assert fresh.medication == MEDICATION


@pytest.mark.parametrize("role", ["owner", "manager", "staff", "client_login"])
def test_who_may_see_the_client_sees_the_pets(matrix: TenantMatrix, role: str) -> None:
    pet = _pet(matrix)
    actor = getattr(matrix.a, role)
    act(actor)
    found = access_pet_by_id(actor, pet.pk, intent=Intent.SHOW)
    assert found.medication == MEDICATION
    assert [p.name for p in profile_for(actor, matrix.a.client).pets] == ["Miso"]


@pytest.mark.parametrize("who", ["outsider", "other_staff"])
def test_anyone_else_gets_404_and_the_database_shows_nothing(
    matrix: TenantMatrix, who: str
) -> None:
    pet = _pet(matrix)
    _household(matrix)
    actor = matrix.outsider if who == "outsider" else matrix.a.other_staff
    act(actor)
    with pytest.raises(Http404):
        access_pet_by_id(actor, pet.pk, intent=Intent.SHOW)
    with pytest.raises(Http404):
        access_pet_by_id(actor, pet.pk, intent=Intent.CHANGE)
    # Row-level security underneath: even a query that forgets to check finds nothing.
    assert not Pet.objects.filter(pk=pet.pk).exists()
    assert not Household.objects.filter(client_id=matrix.a.client.pk).exists()


def test_a_client_sees_only_their_own_pets(matrix: TenantMatrix) -> None:
    owner = matrix.a.owner
    act(owner)
    other = do_create_pet(matrix.a.other_client, actor=owner, name="Stranger")
    act(matrix.a.client_login)
    with pytest.raises(Http404):
        access_pet_by_id(matrix.a.client_login, other.pk, intent=Intent.SHOW)
    assert not Pet.objects.filter(pk=other.pk).exists()


@pytest.mark.parametrize("role", ["staff", "client_login"])
def test_staff_and_clients_may_not_write(matrix: TenantMatrix, role: str) -> None:
    pet = _pet(matrix)
    actor: Actor = getattr(matrix.a, role)
    act(actor)
    client = matrix.a.client
    with pytest.raises(PermissionDenied):
        do_create_pet(client, actor=actor, name="Nope")
    with pytest.raises(PermissionDenied):
        do_update_pet(pet, actor=actor, name="Nope")
    with pytest.raises(PermissionDenied):
        do_delete_pet(pet, actor=actor)
    with pytest.raises(PermissionDenied):
        do_update_household(client, actor=actor, parking="Nope")


def test_another_business_may_not_write(matrix: TenantMatrix) -> None:
    pet = _pet(matrix)
    outsider = matrix.outsider
    act(outsider)
    with pytest.raises(Http404):
        do_create_pet(matrix.a.client, actor=outsider, name="Nope")
    with pytest.raises(Http404):
        do_update_pet(pet, actor=outsider, name="Nope")
    with pytest.raises(Http404):
        do_update_household(matrix.a.client, actor=outsider, parking="Nope")


def test_bad_input_is_a_field_error(matrix: TenantMatrix) -> None:
    owner = matrix.a.owner
    act(owner)
    with pytest.raises(ValidationError) as refused:
        do_create_pet(matrix.a.client, actor=owner, name=" ", birthday="2999-01-01")
    assert set(refused.value.message_dict) == {"name", "birthday"}
    with pytest.raises(ValidationError) as refused:
        do_create_pet(matrix.a.client, actor=owner, name="Rex", birthday="last week")
    assert set(refused.value.message_dict) == {"birthday"}
    with pytest.raises(ValidationError) as refused:
        do_update_household(matrix.a.client, actor=owner, wifi_password="x" * 500, colour="red")
    assert set(refused.value.message_dict) == {"wifi_password", "colour"}


def test_writes_and_reads_are_audited_without_values(matrix: TenantMatrix) -> None:
    pet = _pet(matrix)
    pet_id = str(pet.pk)  # a deleted instance forgets it
    owner = matrix.a.owner
    do_update_pet(pet, actor=owner, medication="None any more", feeding="Twice")
    _household(matrix)
    act(matrix.a.staff)
    access_pet_by_id(matrix.a.staff, pet.pk, intent=Intent.SHOW)
    act(owner)
    do_delete_pet(pet, actor=owner)
    [created] = _events(matrix, AuditAction.PET_CREATE)
    [updated] = _events(matrix, AuditAction.PET_UPDATE)
    [household] = _events(matrix, AuditAction.HOUSEHOLD_UPDATE)
    [read] = _events(matrix, AuditAction.PROFILE_READ)
    [deleted] = _events(matrix, AuditAction.PET_DELETE)
    client = str(matrix.a.client.pk)
    for event in (created, updated, read, deleted):
        assert event["target_id"] == pet_id and str(event["client_id"]) == client
    assert sorted(updated["detail"]["fields"]) == ["feeding", "medication"]
    assert household["detail"]["fields"] == [
        "keys_held",
        "parking",
        "wifi_name",
        "wifi_password",
        "emergency_contact",
    ]
    assert read["actor_role"] == "staff"
    trail = str(chain_events(owner))
    for secret in (MEDICATION, WIFI_PASSWORD, CONTACT, "None any more"):
        assert secret not in trail


def test_household_secrets_follow_the_door_code_rule(matrix: TenantMatrix) -> None:
    a = matrix.a
    _household(matrix)
    _household(matrix, a.other_client)
    act(a.owner)
    do_assign_staff(a.other_client, a.staff.membership, actor=a.owner)
    # Staff: their visit to `client` starts in two hours (inside the window); none to the other.
    act(a.staff)
    near = profile_for(a.staff, a.client).household
    assert near.secrets_shown and near.wifi_password == WIFI_PASSWORD
    far = profile_for(a.staff, a.other_client).household
    assert not far.secrets_shown and far.wifi_password == "" and far.keys_held == "Tag 14"
    # A manager without a fresh step-up: held back; with one: shown.
    stale_manager = stale(a.manager)
    act(stale_manager)
    held = profile_for(stale_manager, a.client).household
    assert held.secrets_held_back and held.emergency_contact == ""
    act(a.manager)
    assert profile_for(a.manager, a.client).household.emergency_contact == CONTACT
    # The client sees their own.
    act(a.client_login)
    assert profile_for(a.client_login, a.client).household.wifi_password == WIFI_PASSWORD
    reveals = _events(matrix, AuditAction.HOUSEHOLD_REVEAL)
    assert [(e["actor_role"], e["purpose"]) for e in reveals] == [
        ("staff", "visit window"),
        ("manager", "stepped up"),
        ("client", "own record"),
    ]


def test_erasure_deletes_pets_and_household(matrix: TenantMatrix) -> None:
    _pet(matrix)
    _household(matrix)
    owner = matrix.a.owner
    act(owner)
    do_erase_client(matrix.a.client, actor=owner)
    assert not Pet.objects.filter(client_id=matrix.a.client.pk).exists()
    assert not Household.objects.filter(client_id=matrix.a.client.pk).exists()
    [erased] = _events(matrix, AuditAction.CLIENT_ERASE)
    assert erased["detail"]["pets_deleted"] == 1 and erased["detail"]["household_deleted"] == 1


def test_exports_hold_pets_and_household(
    matrix: TenantMatrix, web_as: Any, export_env: Path, tmp_path: Path
) -> None:
    pet = _pet(matrix, birthday="2020-02-02")
    _household(matrix)
    owner = matrix.a.owner
    act(owner)
    path = tmp_path / "business.zip"
    with open(path, "wb") as out:
        write_business_archive(owner, out, progress=None)
    files = read_zip(path.read_bytes())
    [row] = json_rows(files, "pets")
    assert row["id"] == str(pet.pk) and row["client_id"] == str(matrix.a.client.pk)
    assert (row["medication"], row["birthday"]) == (MEDICATION, "2020-02-02")
    [home] = json_rows(files, "households")
    assert home["wifi_password"] == WIFI_PASSWORD and home["emergency_contact"] == CONTACT
    # The client's own download.
    response = web_as(matrix.a.client_login).post("/app/portal/my-data/")
    assert response.status_code == 200
    mine = read_zip(response.content)
    [own_pet] = json_rows(mine, "pets")
    assert own_pet["name"] == "Miso" and own_pet["vet_name"] == "Dr Vet"
    [own_home] = json_rows(mine, "household")
    assert own_home["wifi_password"] == WIFI_PASSWORD
