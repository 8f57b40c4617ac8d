"""The audit events of the main HTML pages, opened once by the owner and once by staff (the
portal by its client): exactly these, in order, under the response's request id, and never a
value of the client's record."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from django.utils import timezone

from custodia.clients.models import Client, HomeAccess
from custodia.core.audit import AuditAction as A
from custodia.core.permissions import Role
from custodia.scheduling.models import Visit
from custodia.tenancy.actions import do_invite_member
from tests.acting import act
from tests.api.conftest import fill, names
from tests.audit.support import Ev, Trail, client_list, denied, on_client, on_visit, visit_list
from tests.factories import TenantMatrix
from tests.web.support import actor_for, logged_in

SEARCH = "alpha"  # a name prefix of both of A's clients (tests/factories.py)


@dataclass(frozen=True)
class Shown:
    """An event written only when the page shows A's visit, which starts in two hours: on
    "today" pages, when that is still today; on the calendar, when still this week."""

    when: str
    event: Ev


@dataclass(frozen=True)
class Page:
    role: str
    name: str
    url: str
    status: int
    events: list[Ev | Shown]
    route: str = ""  # the pattern a refusal names
    secrets: tuple[str, ...] = field(default=())


VISITS = visit_list(["{visit}"], ["{client}"])
# The client's pets (one, from tests/api's placeholders) and household (none: no reveal).
PROFILE = Ev(A.PROFILE_READ, "client", "{client}", "{client}", ["{pet}"], {"pets": 1})
RECORD = [on_client(A.CLIENT_READ), on_client(A.ACCESS_CODES_REVEAL), VISITS, PROFILE]
PAGES = [
    # The search term is never in the trail: only that there was one.
    Page(
        "owner",
        "client-search",
        f"/app/clients/?q={SEARCH}",
        200,
        [client_list("{client}", "{other_client}", searched=True)],
        secrets=(SEARCH,),
    ),
    Page(
        "staff",
        "client-search",
        f"/app/clients/?q={SEARCH}",
        200,
        [client_list("{client}", searched=True)],
        secrets=(SEARCH,),
    ),
    # The visit two hours away opens the access window: the codes are shown, and that is a
    # reveal; the record's upcoming visits are a bulk read.
    Page("owner", "client-record", "/app/clients/{client}/", 200, RECORD),
    Page("staff", "client-record", "/app/clients/{client}/", 200, RECORD),
    Page(
        "staff",
        "unassigned-client-record",
        "/app/clients/{other_client}/",
        404,
        [denied("client", "{other_client}")],
        route="app/clients/<str:client_id>/",
    ),
    Page(
        "owner",
        "client-editor",
        "/app/clients/{client}/edit/",
        200,
        [on_client(A.CLIENT_READ), on_client(A.ACCESS_CODES_REVEAL)],
    ),
    Page(
        "staff",
        "client-editor",
        "/app/clients/{client}/edit/",
        403,
        [denied("", "{client}")],
        route="app/clients/<str:client_id>/edit/",
    ),
    Page("owner", "visit", "/app/visits/{visit}/", 200, [on_visit(A.VISIT_READ)]),
    Page("staff", "visit", "/app/visits/{visit}/", 200, [on_visit(A.VISIT_READ)]),
    Page("owner", "calendar", "/app/calendar/", 200, [Shown("week", VISITS)]),
    Page("staff", "calendar", "/app/calendar/", 403, [denied()], route="app/calendar/"),
    # The owner has no visits of their own today; "Team today" shows the staff's: one list read.
    Page("owner", "today", "/app/today/", 200, [Shown("today", VISITS)]),
    Page(
        "staff",
        "today",
        "/app/today/",
        200,
        [
            Shown("today", VISITS),
            Shown("today", on_client(A.ACCESS_CODES_REVEAL)),
            Shown("today", PROFILE),
        ],
    ),
    Page("owner", "dashboard", "/app/", 200, [Shown("today", VISITS)]),
    Page("staff", "dashboard", "/app/", 200, [VISITS]),
    Page("client", "portal", "/app/portal/", 200, [on_client(A.CLIENT_READ), VISITS, PROFILE]),
]


def shown_on(visit: Visit) -> set[str]:
    """Where a page of now shows the visit: "today" and/or "week"."""
    today = timezone.localdate()
    starts = timezone.localtime(visit.starts_at).date()
    monday = today - dt.timedelta(days=today.weekday())
    where = set()
    if starts == today:
        where.add("today")
    if starts < monday + dt.timedelta(days=7):
        where.add("week")
    return where


def record_values(matrix: TenantMatrix) -> list[str]:
    """The values of A's client's record that a page may show and the trail must not hold."""
    a = matrix.a
    act(a.owner)
    client = Client.objects.get(pk=a.client.pk)
    codes = HomeAccess.objects.get(client_id=a.client.pk)
    values = [client.name, client.email, client.phone, client.address, client.notes]
    values += [codes.door_code, codes.alarm_code, codes.instructions]
    assert all(values), "the fixture's record has every field filled"
    return values


@pytest.mark.parametrize("page", PAGES, ids=lambda page: f"{page.name}-{page.role}")
def test_page_writes_exactly_its_events(matrix: TenantMatrix, page: Page) -> None:
    values = names(matrix)
    actor = actor_for(matrix, page.role)
    secrets = [*record_values(matrix), *page.secrets]
    browser = logged_in(actor)
    shown = shown_on(matrix.a.visit)
    expected = [
        event if isinstance(event, Ev) else event.event
        for event in page.events
        if isinstance(event, Ev) or event.when in shown
    ]
    trail = Trail(matrix, actor)

    response = browser.get(fill(page.url, values))

    assert response.status_code == page.status
    trail.assert_wrote(
        response,
        expected,
        values,
        denial={"method": "GET", "route": page.route, "status": page.status},
        secrets=secrets,
    )


def test_the_staff_page_reads_the_email_of_a_pending_client_invitation(
    matrix: TenantMatrix,
) -> None:
    """A client's invitation shows their address: a bulk read of their contact details."""
    a = matrix.a
    act(a.owner)
    do_invite_member(
        actor=a.owner, email="invited@alpha.test", role=Role.CLIENT, client=a.other_client
    )
    browser = logged_in(a.manager)
    values = names(matrix)
    trail = Trail(matrix, a.manager)

    response = browser.get("/app/staff/")

    assert response.status_code == 200 and b"invited@alpha.test" in response.content
    expected = Ev(
        A.CLIENT_LIST,
        subject_ids=["{other_client}"],
        detail={"count": 1, "via": "pending invitations"},
    )
    trail.assert_wrote(response, [expected], values, denial={}, secrets=["invited@alpha.test"])
