"""A client shown is read and recorded by one statement (core/audit.py: read_one): the event
names the row found, and a row out of reach is neither returned nor recorded."""

from __future__ import annotations

import uuid

import pytest
from django.http import Http404

from custodia.audit.models import AuditEvent
from custodia.clients.access import access_client_by_id
from custodia.clients.models import Client
from custodia.core.audit import AuditAction, read_one
from custodia.scheduling.models import Visit
from custodia.tenancy.reads import Intent
from tests.acting import act
from tests.factories import TenantMatrix


def reads_of(matrix: TenantMatrix, client_id: uuid.UUID) -> list[tuple[str, str, str]]:
    act(matrix.a.owner)
    return list(
        AuditEvent.objects.filter(action=AuditAction.CLIENT_READ, target_id=str(client_id))
        .order_by("id")
        .values_list("actor_role", "target_type", "client_id")
    )


def test_a_client_shown_is_recorded_with_its_own_ids(matrix: TenantMatrix) -> None:
    client = matrix.a.client
    act(matrix.a.manager)
    shown = access_client_by_id(matrix.a.manager, client.pk, intent=Intent.SHOW)
    assert shown.pk == client.pk and shown.name == client.name
    assert reads_of(matrix, client.pk) == [("manager", "client", client.pk)]


def test_a_client_only_referred_to_is_not_recorded(matrix: TenantMatrix) -> None:
    act(matrix.a.manager)
    access_client_by_id(matrix.a.manager, matrix.a.client.pk, intent=Intent.REFERENCE)
    assert reads_of(matrix, matrix.a.client.pk) == []


@pytest.mark.parametrize("who", ["unassigned staff", "another business's owner", "a client"])
def test_a_client_out_of_reach_is_neither_returned_nor_recorded(
    matrix: TenantMatrix, who: str
) -> None:
    actor, target = {
        "unassigned staff": (matrix.a.other_staff, matrix.a.client),
        "another business's owner": (matrix.b.owner, matrix.a.client),
        "a client": (matrix.a.client_login, matrix.a.other_client),
    }[who]
    act(actor)
    with pytest.raises(Http404):
        access_client_by_id(actor, target.pk, intent=Intent.SHOW)
    assert reads_of(matrix, target.pk) == []


def test_staff_read_their_assigned_client_through_the_join(matrix: TenantMatrix) -> None:
    act(matrix.a.staff)
    access_client_by_id(matrix.a.staff, matrix.a.client.pk, intent=Intent.SHOW)
    assert reads_of(matrix, matrix.a.client.pk) == [("staff", "client", matrix.a.client.pk)]


def test_a_join_is_refused_rather_than_read_wrong(matrix: TenantMatrix) -> None:
    act(matrix.a.owner)
    with pytest.raises(ValueError, match="select_related"):
        read_one(
            Visit.objects.select_related("client").filter(id=matrix.a.visit.pk),
            AuditAction.VISIT_READ,
            actor=matrix.a.owner,
        )


def test_nothing_found_records_nothing(matrix: TenantMatrix) -> None:
    missing = uuid.uuid4()
    act(matrix.a.owner)
    found = Client.objects.filter(id=missing)
    assert read_one(found, AuditAction.CLIENT_READ, actor=matrix.a.owner) is None
    assert reads_of(matrix, missing) == []
