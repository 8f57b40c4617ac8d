"""The owner's audit page: what it shows, how it filters and pages, and who is refused it;
a client's view of who accessed their own record."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied

from custodia.audit import access
from custodia.audit.access import EventFilters
from custodia.core.actor import Actor
from custodia.core.audit import AuditAction, record
from tests.acting import act
from tests.factories import TenantMatrix
from tests.web.support import actor_for, text

URL = "/app/audit/"


def page_text(response: Any) -> str:
    return html.unescape(text(response))


def table_text(response: Any) -> str:
    """The text of the events table alone (the filter form lists every action's label)."""
    content = response.content.decode()
    start, end = content.find("<tbody>"), content.find("</tbody>")
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", content[start:end]).split()))


def read_by(actor: Actor, target: Any, action: AuditAction = AuditAction.CLIENT_READ) -> None:
    """`actor` reads `target` (an event in the trail, as the instrumented apps write it)."""
    act(actor)
    record(action, actor=actor, target=target)


def rows(response: Any) -> int:
    return response.content.decode().count("<tr>") - 1  # minus the header row


@pytest.fixture
def trail(matrix: TenantMatrix) -> TenantMatrix:
    """A's staff read A's client, A's manager lists both clients; B's staff read B's client."""
    a, b = matrix.a, matrix.b
    read_by(a.staff, a.client)
    act(a.manager)
    record(AuditAction.CLIENT_LIST, actor=a.manager, subject_ids=[a.client.pk, a.other_client.pk])
    read_by(b.staff, b.client)
    return matrix


def test_owner_sees_the_trail_with_names_and_labels(web_as: Any, trail: TenantMatrix) -> None:
    a = trail.a
    response = web_as(a.owner).get(URL)
    assert response.status_code == 200
    body = page_text(response)
    assert a.staff.user.display_name in body
    assert a.manager.user.display_name in body
    assert "client: read" in body and "client: list" in body
    assert str(a.client.pk) in body
    # The navigation offers the page to owners.
    assert 'href="/app/audit/"' in response.content.decode()


def test_another_business_never_appears(web_as: Any, trail: TenantMatrix) -> None:
    a, b = trail.a, trail.b
    body = table_text(web_as(a.owner).get(URL))
    assert b.staff.user.display_name not in body
    assert str(b.client.pk) not in body
    # The outsider (B's owner) sees B's trail, and nothing of A's.
    response = web_as(b.owner).get(URL)
    assert response.status_code == 200
    outsider = page_text(response)
    assert b.staff.user.display_name in outsider
    for marker in (a.staff.user.display_name, a.manager.user.display_name, str(a.client.pk)):
        assert marker not in outsider
    act(a.owner)
    assert {e.tenant_id for e in access.list_events(a.owner)} == {a.owner.tenant_id}


@pytest.mark.parametrize("role", ["manager", "staff", "other_staff", "client"])
def test_lesser_roles_are_refused(web_as: Any, trail: TenantMatrix, role: str) -> None:
    actor = actor_for(trail, role)
    home = web_as(actor).get("/app/")
    assert 'href="/app/audit/"' not in home.content.decode()
    response = web_as(actor).get(URL)
    assert response.status_code == 403
    body = page_text(response)
    assert "client: list" not in body and str(trail.a.other_client.pk) not in body
    act(actor)
    with pytest.raises(PermissionDenied):
        access.list_events(actor)


def test_filters(web_as: Any, trail: TenantMatrix) -> None:
    a = trail.a
    client = web_as(a.owner)
    staff_name, manager_name = a.staff.user.display_name, a.manager.user.display_name

    by_person = table_text(client.get(URL, {"person": str(a.staff.user.pk)}))
    assert "client: read" in by_person and "client: list" not in by_person

    # A client's filter finds single reads (client_id) and bulk reads naming them (subject_ids).
    about_client = client.get(URL, {"client": str(a.client.pk), "action": "client.read"})
    assert rows(about_client) == 1 and staff_name in table_text(about_client)
    about_other = table_text(client.get(URL, {"client": str(a.other_client.pk)}))
    assert manager_name in about_other and "client: read" not in about_other

    listed = table_text(client.get(URL, {"action": "client.list"}))
    assert manager_name in listed and "client: read" not in listed

    today = dt.datetime.now(dt.UTC).date()
    assert rows(client.get(URL, {"since": today.isoformat(), "until": today.isoformat()})) >= 2
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    assert "No events match these filters" in page_text(client.get(URL, {"since": tomorrow}))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"client": "not-a-uuid"}, "Enter a client id"),
        ({"action": "client.steal"}, "Select a valid choice"),
        ({"since": "2026-13-45"}, "Enter a valid date"),
        ({"since": "2026-05-02", "until": "2026-05-01"}, "end of the date range"),
        ({"until": "9999-12-31"}, "Choose an earlier date"),
        ({"before": "x"}, "Enter a whole number"),
        ({"before": "5", "after": "3"}, "not both"),
    ],
)
def test_bad_filters_are_a_400_that_says_why(
    web_as: Any, trail: TenantMatrix, query: dict[str, str], message: str
) -> None:
    response = web_as(trail.a.owner).get(URL, query)
    assert response.status_code == 400
    assert message in page_text(response)
    assert "<tbody>" not in response.content.decode()


def test_a_person_of_another_business_is_not_a_choice(web_as: Any, trail: TenantMatrix) -> None:
    response = web_as(trail.a.owner).get(URL, {"person": str(trail.b.staff.user.pk)})
    assert response.status_code == 400
    assert "Select a valid choice" in page_text(response)


def link(response: Any, label: str) -> str | None:
    """The query of the pagination link called `label`, if the page has one."""
    match = re.search(rf'href="\?([^"]*)" rel="\w+">{label}<', response.content.decode())
    return html.unescape(match[1]) if match else None


def test_pages_by_id_without_counting(web_as: Any, matrix: TenantMatrix) -> None:
    a = matrix.a
    for _ in range(60):
        read_by(a.other_staff, a.other_client)
    client = web_as(a.owner)
    person = f"person={a.other_staff.user.pk}"
    first = client.get(f"{URL}?{person}")
    assert rows(first) == 50
    assert link(first, "Newer events") is None
    older = link(first, "Older events")
    assert older is not None and older.startswith(person + "&before=")  # filters carried
    second = client.get(f"{URL}?{older}")
    assert rows(second) == 10
    assert link(second, "Older events") is None
    newer = link(second, "Newer events")
    assert newer is not None
    back = client.get(f"{URL}?{newer}")
    assert table_text(back) == table_text(first)
    assert link(back, "Newer events") is None and link(back, "Older events") == older


def test_reading_the_trail_is_itself_an_event(web_as: Any, trail: TenantMatrix) -> None:
    a = trail.a
    web_as(a.owner).get(URL, {"action": "client.read", "client": str(a.client.pk)})
    act(a.owner)
    read = access.list_events(a.owner, EventFilters(action=AuditAction.AUDIT_READ)).first()
    assert read is not None
    assert read.actor_user_id == a.owner.user.pk
    assert read.detail == {"count": 1, "filters": ["client", "action"]}


# --- A client's own record --------------------------------------------------------------------


def test_a_client_sees_who_accessed_their_record(trail: TenantMatrix) -> None:
    a, b = trail.a, trail.b
    read_by(a.staff, a.other_client)  # not theirs
    read_by(a.client_login, a.client)  # their own look at it: not news to them
    act(a.client_login)
    record(AuditAction.VISIT_REQUEST, actor=a.client_login, target=a.visit)
    act(a.client_login)
    # Newest first; older ones are the matrix's own setup (record created, staff assigned...).
    lines = access.recent_access_to_own_record(a.client_login)[:3]
    assert [(line.action_label, line.by_viewer) for line in lines] == [
        ("visit: request", True),
        ("client: list", False),
        ("client: read", False),
    ]
    assert lines[1].person == a.manager.user.full_name
    assert lines[2].person == a.staff.user.full_name
    ids = {line.event.client_id for line in lines} - {None}
    assert ids == {a.client.pk}
    assert b.client.pk not in {s for line in lines for s in line.event.subject_ids or []}


def test_a_client_never_sees_staff_emails(matrix: TenantMatrix) -> None:
    a = matrix.a
    a.staff.user.full_name = ""
    a.staff.user.save(update_fields=["full_name"])
    read_by(a.staff, a.client)
    act(a.client_login)
    (line,) = [
        x
        for x in access.recent_access_to_own_record(a.client_login)
        if x.event.action == AuditAction.CLIENT_READ
    ]
    assert line.person == "Staff"


@pytest.mark.parametrize("role", ["owner", "manager", "staff", "outsider"])
def test_only_a_client_has_an_own_record(trail: TenantMatrix, role: str) -> None:
    actor = actor_for(trail, role)
    act(actor)
    with pytest.raises(PermissionDenied):
        access.events_about_own_record(actor)


def test_the_portal_shows_who_accessed_the_record(web_as: Any, trail: TenantMatrix) -> None:
    a = trail.a
    response = web_as(a.client_login).get("/app/portal/")
    body = page_text(response)
    assert "Who accessed your record" in body
    assert a.staff.user.full_name in body and a.manager.user.full_name in body
    section = body.split("Who accessed your record", 1)[1]
    assert " You " not in section  # their own reads are not listed
    assert a.staff.user.email not in body
