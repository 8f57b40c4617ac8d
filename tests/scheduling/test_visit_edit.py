"""Managers move, reassign and delete visits in the pages (the API's same actions); the visit
forms offer only the staff assigned to the client. Lesser roles are refused; another business's
visit is a 404; bad input is a 400 that saves nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from custodia.audit.access import EventFilters, list_events
from custodia.core.audit import AuditAction
from custodia.scheduling.models import Visit
from tests.acting import act
from tests.factories import TenantMatrix
from tests.scheduling.test_views import local
from tests.web.support import actor_for, logged_in, snapshot, text


def edit_url(visit: Visit) -> str:
    return f"/app/visits/{visit.pk}/edit/"


def delete_url(visit: Visit) -> str:
    return f"/app/visits/{visit.pk}/delete/"


def reload(matrix: TenantMatrix, visit: Visit) -> Visit | None:
    act(matrix.a.owner)
    return Visit.objects.filter(pk=visit.pk).first()


def test_a_manager_moves_and_reassigns_a_visit(matrix: TenantMatrix) -> None:
    a = matrix.a
    browser = logged_in(a.manager)
    detail = browser.get(f"/app/visits/{a.visit.pk}/").content.decode()
    assert f'href="{edit_url(a.visit)}"' in detail and f'href="{delete_url(a.visit)}"' in detail
    form = browser.get(edit_url(a.visit)).content.decode()
    assert str(a.staff.membership.pk) in form  # assigned to the client
    assert str(a.other_staff.membership.pk) not in form  # not assigned: not offered
    assert str(matrix.b.staff.membership.pk) not in form
    starts = timezone.now().replace(second=0, microsecond=0) + dt.timedelta(days=3)
    response = browser.post(
        edit_url(a.visit),
        {
            "starts_at": local(starts),
            "ends_at": local(starts + dt.timedelta(minutes=90)),
            "staff": "",
            "service": str(a.service.pk),
        },
    )
    assert response.status_code == 302, text(response)
    visit = reload(matrix, a.visit)
    assert visit is not None
    assert visit.starts_at == starts and visit.ends_at == starts + dt.timedelta(minutes=90)
    assert visit.staff_id is None
    event = list_events(a.owner, EventFilters(action=AuditAction.VISIT_UPDATE)).first()
    assert event is not None and event.actor_user_id == a.manager.user.pk
    assert {"starts_at", "ends_at", "staff"} <= set(event.detail["fields"])


def test_bad_edits_are_a_400_and_change_nothing(matrix: TenantMatrix) -> None:
    a = matrix.a
    browser = logged_in(a.manager)
    before = snapshot(matrix)
    starts = local(timezone.now() + dt.timedelta(days=2))
    cases = [
        (
            {"starts_at": starts, "ends_at": starts, "staff": str(a.staff.membership.pk)},
            "A visit must end after it starts.",
        ),
        (
            {
                "starts_at": starts,
                "ends_at": local(timezone.now() + dt.timedelta(days=2, hours=1)),
                "staff": str(a.other_staff.membership.pk),
            },
            "Choose a staff member assigned to this client",
        ),
        ({"starts_at": "soon", "ends_at": starts}, "Enter a date and time"),
        ({"starts_at": starts}, "This field is required."),
    ]
    for data, message in cases:
        response = browser.post(edit_url(a.visit), data)
        assert response.status_code == 400, data
        assert message in text(response), message
    assert snapshot(matrix) == before


def test_a_manager_deletes_a_visit_after_confirming(matrix: TenantMatrix) -> None:
    a = matrix.a
    browser = logged_in(a.manager)
    confirm = browser.get(delete_url(a.visit))
    assert confirm.status_code == 200 and "Delete this visit?" in text(confirm)
    assert reload(matrix, a.visit) is not None  # a GET deletes nothing
    response = browser.post(delete_url(a.visit))
    assert response.status_code == 302 and response["Location"].startswith("/app/calendar/?week=")
    assert reload(matrix, a.visit) is None
    event = list_events(a.owner, EventFilters(action=AuditAction.VISIT_DELETE)).first()
    assert event is not None and event.target_id == str(a.visit.pk)
    assert "Visit deleted." in text(browser.get(response["Location"]))


@pytest.mark.parametrize("role", ["staff", "client"])
def test_lesser_roles_can_neither_edit_nor_delete(matrix: TenantMatrix, role: str) -> None:
    a = matrix.a
    browser = logged_in(actor_for(matrix, role))
    before = snapshot(matrix)
    starts = local(timezone.now() + dt.timedelta(days=2))
    for url in (edit_url(a.visit), delete_url(a.visit)):
        assert browser.get(url).status_code in (403, 404), url
    edited = browser.post(edit_url(a.visit), {"starts_at": starts, "ends_at": starts})
    assert edited.status_code in (403, 404)
    assert browser.post(delete_url(a.visit)).status_code in (403, 404)
    assert snapshot(matrix) == before
    detail = browser.get(f"/app/visits/{a.visit.pk}/").content.decode()
    assert edit_url(a.visit) not in detail and delete_url(a.visit) not in detail


def test_another_business_gets_404(matrix: TenantMatrix) -> None:
    a = matrix.a
    outsider = logged_in(matrix.outsider)  # the owner of business B
    before = snapshot(matrix)
    for url in (edit_url(a.visit), delete_url(a.visit), "/app/visits/not-an-id/edit/"):
        assert outsider.get(url).status_code == 404, url
        assert outsider.post(url).status_code == 404, url
    assert snapshot(matrix) == before


def test_a_new_visit_asks_whose_first_then_offers_only_their_staff(matrix: TenantMatrix) -> None:
    a = matrix.a
    browser = logged_in(a.manager)
    first = browser.get("/app/visits/new/", {"starts_at": "2031-05-17T14:30"}).content.decode()
    assert '<label for="id_client">Client' in first and 'id="id_staff"' not in first
    assert 'name="starts_at" value="2031-05-17T14:30"' in first  # a calendar link's time kept
    assert "Continue" in first
    second = browser.get(
        "/app/visits/new/", {"client": str(a.client.pk), "starts_at": "2031-05-17T14:30"}
    ).content.decode()
    assert str(a.staff.membership.pk) in second
    assert str(a.other_staff.membership.pk) not in second
    # A malformed client in the link starts again from the first step.
    again = browser.get("/app/visits/new/", {"client": "x'; --"})
    assert again.status_code == 200 and 'id="id_staff"' not in again.content.decode()
