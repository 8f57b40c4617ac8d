"""People-readable history: "who accessed this client" for the owner, and the portal's own view.

The words (audit/history.py), who may open the owner's page (owners only; another business's
client and a made-up id are 404), and that opening it is itself recorded.
"""

from __future__ import annotations

import datetime as dt
import html
import uuid
from typing import Any

import pytest
from django.utils import timezone

from custodia.audit import access
from custodia.audit.access import EventFilters
from custodia.audit.history import grouped
from custodia.audit.models import AuditEvent
from custodia.core.audit import AuditAction, record
from tests.acting import act
from tests.factories import TenantMatrix
from tests.web.support import actor_for, text


def history_url(client_id: object) -> str:
    return f"/app/clients/{client_id}/history/"


def page_text(response: Any) -> str:
    return html.unescape(text(response))


def sentences(matrix: TenantMatrix) -> list[str]:
    """The owner's history of A's client, as person: sentence lines."""
    a = matrix.a
    act(a.owner)
    events = access.list_events(a.owner, EventFilters(client=a.client.pk))
    return [
        f"{person.person}: {line.sentence}"
        for day in grouped(access.describe(a.owner, events))
        for person in day.people
        for line in person.lines
    ]


def test_reads_become_sentences_with_repeats_counted(matrix: TenantMatrix) -> None:
    a = matrix.a
    act(a.staff)
    for _ in range(3):
        record(AuditAction.CLIENT_READ, actor=a.staff, target=a.client)
    record(AuditAction.ACCESS_CODES_REVEAL, actor=a.staff, target=a.client, purpose="visit window")
    act(a.manager)
    record(
        AuditAction.CLIENT_UPDATE,
        actor=a.manager,
        target=a.client,
        detail={"fields": ["phone", "home_access"]},
    )
    lines = sentences(matrix)
    staff, manager = a.staff.user.display_name, a.manager.user.display_name
    # Latest first: the manager acted last.
    assert lines[0].startswith(f"{manager}: changed the record (phone, home access) at ")
    reads = [line for line in lines if line.startswith(f"{staff}: viewed the record ")]
    assert len(reads) == 1 and " 3 times, " in reads[0], lines
    (codes,) = [line for line in lines if "door and alarm codes" in line]
    assert codes.startswith(f"{staff}: viewed the door and alarm codes at ")
    assert codes.endswith(", during one of their visits")


def test_days_are_grouped_newest_first_in_local_time(matrix: TenantMatrix) -> None:
    a = matrix.a
    act(a.staff)
    record(AuditAction.CLIENT_READ, actor=a.staff, target=a.client)
    act(a.owner)
    events = list(access.list_events(a.owner, EventFilters(client=a.client.pk)))
    newest = events[0]
    older = AuditEvent(
        action=newest.action,
        outcome=newest.outcome,
        occurred_at=newest.occurred_at - dt.timedelta(days=3),
        actor_user_id=newest.actor_user_id,
        actor_role=newest.actor_role,
        purpose="",
        detail={},
    )
    days = grouped(access.describe(a.owner, [newest, older]))
    assert [day.label for day in days][0] == "Today"
    assert days[1].day == timezone.localtime(older.occurred_at).date()
    assert days[1].label.endswith(str(days[1].day.year))


def test_the_owner_opens_it_from_the_client_page(web_as: Any, matrix: TenantMatrix) -> None:
    a = matrix.a
    act(a.staff)
    record(AuditAction.CLIENT_READ, actor=a.staff, target=a.client)
    owner = web_as(a.owner)
    detail = owner.get(f"/app/clients/{a.client.pk}/")
    assert history_url(a.client.pk) in detail.content.decode()
    response = owner.get(history_url(a.client.pk))
    assert response.status_code == 200
    body = page_text(response)
    assert f"Who accessed {a.client.name}" in body
    assert f"{a.staff.user.display_name} viewed the record at " in body
    assert a.other_client.name not in body


def test_opening_it_is_recorded(web_as: Any, matrix: TenantMatrix) -> None:
    a = matrix.a
    assert web_as(a.owner).get(history_url(a.client.pk)).status_code == 200
    act(a.owner)
    read = access.list_events(a.owner, EventFilters(action=AuditAction.AUDIT_READ)).first()
    assert read is not None and read.client_id == a.client.pk
    assert read.actor_user_id == a.owner.user.pk
    assert read.detail["view"] == "client history"
    shown = access.list_events(a.owner, EventFilters(action=AuditAction.CLIENT_READ)).first()
    assert shown is not None and shown.client_id == a.client.pk


@pytest.mark.parametrize("role", ["manager", "staff", "client"])
def test_lesser_roles_cannot_open_it(web_as: Any, matrix: TenantMatrix, role: str) -> None:
    actor = actor_for(matrix, role)
    response = web_as(actor).get(history_url(matrix.a.client.pk))
    assert response.status_code in (403, 404)
    assert matrix.a.client.name not in page_text(response)


def test_another_business_gets_404(web_as: Any, matrix: TenantMatrix) -> None:
    outsider = web_as(matrix.outsider)  # the owner of business B
    for client_id in (matrix.a.client.pk, uuid.uuid4(), "not-an-id"):
        response = outsider.get(history_url(client_id))
        assert response.status_code == 404
        assert matrix.a.client.name not in page_text(response)


def test_a_client_of_another_household_sees_only_their_own(
    web_as: Any, matrix: TenantMatrix
) -> None:
    a = matrix.a
    act(a.staff)
    record(AuditAction.CLIENT_READ, actor=a.staff, target=a.other_client)
    record(AuditAction.ACCESS_CODES_REVEAL, actor=a.staff, target=a.client, purpose="visit window")
    body = page_text(web_as(a.client_login).get("/app/portal/"))
    section = body.split("Who accessed your record", 1)[1]
    assert f"{a.staff.user.full_name} viewed the door and alarm codes at " in section
    assert "during one of their visits" in section
    assert "viewed the record at" not in section  # the other client's read is not theirs
