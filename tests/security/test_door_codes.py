"""Issue 12, item 1: a visit opens no door codes to a manager; only a fresh step-up does.

The attack: with an API token, or a browser session past its step-up, a manager assigns staff
(themself, even) to a client, schedules a visit that starts now, reads the client's door and alarm
codes because a visit is "near", and deletes the visit; repeated over every client, that reads
every code. The rule (clients/access.py, `home_access_and_hold`): owners and managers see codes
only after a fresh step-up, which an API token never has; the visit window is staff's alone, for
their own visits.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from custodia.clients.access import home_access_and_hold, home_access_for
from custodia.clients.actions import do_assign_staff
from custodia.core.audit import AuditAction
from custodia.scheduling.actions import do_create_visit
from custodia.scheduling.models import Visit
from tests.acting import act
from tests.api.conftest import send
from tests.audit.support import chain_events
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix, stale
from tests.web.support import age_session

pytestmark = pytest.mark.django_db

OTHER_CODE = "9999"  # other_client's door code: nobody is assigned, no visit is near


def _reveals(matrix: TenantMatrix) -> list[dict[str, Any]]:
    """Every reveal of door codes in business A, as its owner reads the trail."""
    events = chain_events(matrix.a.owner)
    return [event for event in events if event["action"] == AuditAction.ACCESS_CODES_REVEAL]


def _now_visit(client_id: object, staff_id: object) -> dict[str, Any]:
    """A visit body that puts the client's access window open right now."""
    start = timezone.now() - dt.timedelta(minutes=5)
    return {
        "client_id": str(client_id),
        "staff_id": str(staff_id),
        "starts_at": start.isoformat(),
        "ends_at": (start + dt.timedelta(hours=1)).isoformat(),
    }


@pytest.mark.parametrize("role", ["owner", "manager"])
def test_api_token_create_read_delete_reveals_no_code(
    matrix: TenantMatrix, api_as: Any, role: str
) -> None:
    actor = getattr(matrix.a, role)
    token = api_as(actor)
    target = matrix.a.other_client
    before = _reveals(matrix)
    # Assign themself, so the visit is theirs too: still nothing.
    assigned = send(
        token, "POST", f"/clients/{target.pk}/staff", {"membership_id": str(actor.membership.pk)}
    )
    assert assigned.status_code == 201, assigned.content
    created = send(token, "POST", "/visits", _now_visit(target.pk, actor.membership.pk))
    assert created.status_code == 201, created.content
    read = send(token, "GET", f"/clients/{target.pk}")
    assert read.status_code == 200
    assert read.json()["home_access"] is None and OTHER_CODE not in read.content.decode()
    deleted = send(token, "DELETE", f"/visits/{created.json()['id']}")
    assert deleted.status_code == 204
    assert _reveals(matrix) == before


def test_api_token_near_an_existing_visit_reveals_no_code(
    matrix: TenantMatrix, api_as: Any
) -> None:
    # `client` has staff's visit in two hours, scheduled long before any read.
    for actor in (matrix.a.owner, matrix.a.manager):
        body = send(api_as(actor), "GET", f"/clients/{matrix.a.client.pk}").json()
        assert body["home_access"] is None and "4711" not in str(body)


def test_api_token_moving_a_visit_to_now_reveals_no_code(matrix: TenantMatrix, api_as: Any) -> None:
    token = api_as(matrix.a.manager)
    start = timezone.now() - dt.timedelta(minutes=5)
    moved = send(
        token,
        "PATCH",
        f"/visits/{matrix.a.visit.pk}",
        {"starts_at": start.isoformat(), "ends_at": (start + dt.timedelta(hours=1)).isoformat()},
    )
    assert moved.status_code == 200, moved.content
    body = send(token, "GET", f"/clients/{matrix.a.client.pk}").json()
    assert body["home_access"] is None and "0815" not in str(body)


def test_a_stale_session_schedules_reads_and_deletes_but_sees_no_code(
    matrix: TenantMatrix,
) -> None:
    manager = matrix.a.manager
    browser = HttpsClient().act_as(manager)
    age_session(browser, 10 * 60)
    target = matrix.a.other_client
    before = _reveals(matrix)
    # Through the pages: assign themself, schedule a visit starting now.
    browser.post(f"/app/clients/{target.pk}/assign/", {"staff": str(manager.membership.pk)})
    start = timezone.localtime(timezone.now() - dt.timedelta(minutes=5))
    made = browser.post(
        "/app/visits/new/",
        {
            "client": str(target.pk),
            "staff": str(manager.membership.pk),
            "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (start + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert made.status_code == 302, made.content
    path = f"/app/clients/{target.pk}/"
    page = browser.get(path).content.decode()
    assert OTHER_CODE not in page
    assert f'href="/app/step-up/?next={path.replace("/", "%2F")}"' in page
    # The editor insists on the codes, so it sends the manager to confirm it's them.
    editor = browser.get(f"{path}edit/")
    assert editor.status_code == 302 and editor["Location"].startswith("/app/step-up/")
    # Today (their own visit, now): the codes wait for a step-up there too.
    today = browser.get("/app/today/").content.decode()
    assert OTHER_CODE not in today and 'href="/app/step-up/?next=%2Fapp%2Ftoday%2F"' in today
    # The same session through the API: nothing either, then the visit goes.
    api = send(browser, "GET", f"/clients/{target.pk}").json()
    assert api["home_access"] is None
    act(manager)
    visit = Visit.objects.get(tenant_id=manager.tenant_id, client_id=target.pk)
    assert send(browser, "DELETE", f"/visits/{visit.pk}").status_code == 204
    assert _reveals(matrix) == before


def test_a_fresh_step_up_shows_the_codes_and_records_why(matrix: TenantMatrix) -> None:
    manager = matrix.a.manager  # just authenticated
    act(manager)
    codes, held_back = home_access_and_hold(manager, matrix.a.client)
    assert codes is not None and codes.door_code == "4711" and not held_back
    assert _reveals(matrix)[-1]["purpose"] == "stepped up"
    browser = HttpsClient().act_as(manager)
    assert OTHER_CODE in browser.get(f"/app/clients/{matrix.a.other_client.pk}/").content.decode()


def test_a_manager_who_is_the_visits_staff_still_steps_up(matrix: TenantMatrix) -> None:
    owner = matrix.a.owner
    act(owner)
    do_assign_staff(matrix.a.other_client, matrix.a.manager.membership, actor=owner)
    do_create_visit(
        actor=owner,
        client=matrix.a.other_client,
        staff=matrix.a.manager.membership,
        starts_at=timezone.now() - dt.timedelta(minutes=5),
        ends_at=timezone.now() + dt.timedelta(hours=1),
    )
    manager = stale(matrix.a.manager)
    act(manager)
    assert home_access_and_hold(manager, matrix.a.other_client) == (None, True)


def test_staff_keep_their_own_visit_window_only(matrix: TenantMatrix) -> None:
    staff = stale(matrix.a.staff)  # a token: staff never need a step-up for their own visit
    act(staff)
    codes = home_access_for(staff, matrix.a.client)
    assert codes is not None and codes.door_code == "4711"
    assert _reveals(matrix)[-1]["purpose"] == "visit window"
    # Another staff member's visit opens nothing to them, nor does a fresh step-up.
    act(matrix.a.other_staff)
    assert home_access_and_hold(matrix.a.other_staff, matrix.a.client) == (None, False)


def test_a_session_past_its_step_up_cannot_invite_a_staff_member(
    matrix: TenantMatrix, web_as: Any
) -> None:
    """The long way round: invite a second address of one's own as staff, assign it, schedule
    its visit, read the codes as that staff member. The first step needs a fresh step-up."""
    from custodia.tenancy.models import Invitation

    browser = web_as(matrix.a.manager)
    age_session(browser, 10 * 60)
    act(matrix.a.owner)
    before = Invitation.objects.count()
    body = {"email": "me.again@example.test", "role": "staff"}
    assert send(browser, "POST", "/staff/invitations", body).status_code == 403
    # The page's form: sent to confirm it's you, nothing invited.
    page = browser.post("/app/staff/invite/", body)
    assert page.status_code in (302, 403), page.status_code
    act(matrix.a.owner)
    assert Invitation.objects.count() == before
