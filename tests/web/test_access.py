"""Every page that touches business A's data, tried by the outsider and by each lesser role.

A refused attempt answers 403/404 (400 when the only way in is a foreign id in a form), shows none
of A's client data, and changes no row in either business.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import pytest
from django.utils import timezone

from custodia.accounts.actions import do_create_api_token
from custodia.clients.profile_actions import do_create_pet, do_set_pet_photo, do_update_household
from custodia.core.permissions import Role
from custodia.tenancy.actions import do_invite_member
from tests.acting import act
from tests.factories import TenantMatrix
from tests.scheduling.photos_support import photo_bytes
from tests.web.support import ROLES, actor_for, logged_in, snapshot

# Business A's client data that must never reach someone refused.
MARKERS = (
    "Alpha Client",
    "Alpha Other",
    "client@alpha.test",
    "4711",
    "0815",
    "9999",
    "Cat: Miso",
    "Thyroxine",
    "garden-wifi-pw",
)


def leaked_markers(page: str) -> list[str]:
    """The markers on a page; a code only as a whole token, not inside an id that happens to
    contain its digits (a page of uuids holds "9999" now and then)."""
    return [
        marker
        for marker in MARKERS
        if (marker.isdigit() and re.search(rf"(?<![0-9a-fA-F-]){marker}(?![0-9a-fA-F-])", page))
        or (not marker.isdigit() and marker in page)
    ]


MANAGERS = {"owner", "manager"}
WORKERS = MANAGERS | {"staff", "other_staff"}
EVERYONE = WORKERS | {"client"}


@dataclass(frozen=True)
class Endpoint:
    method: str
    url: str
    allowed: frozenset[str]
    data: dict[str, str] = field(default_factory=dict)
    # Endpoints that create something in the actor's own business: the outsider may, in B.
    outsider_own_business: bool = False
    statuses: frozenset[int] = frozenset({403, 404})


def endpoints(ids: dict[str, str]) -> list[Endpoint]:
    """The page table, with business A's ids filled in."""
    c, o, v = ids["client"], ids["other_client"], ids["visit"]
    soon = (timezone.localtime() + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    e = Endpoint
    f = frozenset
    return [
        e("get", "/app/clients/", f(WORKERS), outsider_own_business=True),
        e("get", "/app/clients/new/", f(MANAGERS), outsider_own_business=True),
        e(
            "post",
            "/app/clients/new/",
            f(MANAGERS),
            {"name": "Intruder"},
            outsider_own_business=True,
        ),
        e("get", "/app/clients/import/", f(MANAGERS), outsider_own_business=True),
        e("post", "/app/clients/import/", f(MANAGERS), outsider_own_business=True),
        # A preview only its own member can confirm (tests/clients/test_import_pages.py): here
        # an unsigned one, which an allowed role is refused with a 400 too.
        e(
            "post",
            "/app/clients/import/confirm/",
            frozenset(),
            {"preview": '[[2, {"name": "Intruder"}]]'},
            statuses=frozenset({400, 403, 404}),
        ),
        e("get", f"/app/clients/{c}/", f(EVERYONE - {"other_staff"})),
        e("get", f"/app/clients/{o}/", f(MANAGERS)),
        e("get", f"/app/clients/{c}/edit/", f(MANAGERS)),
        e("post", f"/app/clients/{c}/edit/", f(MANAGERS), {"name": "Changed"}),
        e("get", f"/app/clients/{c}/delete/", f(MANAGERS)),
        e("post", f"/app/clients/{c}/delete/", f(MANAGERS)),
        e("post", f"/app/clients/{o}/assign/", f(MANAGERS), {"staff": ids["other_staff"]}),
        e("post", f"/app/clients/{c}/unassign/{ids['staff']}/", f(MANAGERS)),
        e("post", f"/app/clients/{o}/invite/", f(MANAGERS), {"email": "x@example.test"}),
        # Pets and household details (docs/profiles.md).
        e("get", f"/app/clients/{c}/pets/new/", f(MANAGERS)),
        e("post", f"/app/clients/{c}/pets/new/", f(MANAGERS), {"name": "Intruder"}),
        e("get", f"/app/clients/{c}/household/", f(MANAGERS)),
        e("post", f"/app/clients/{c}/household/", f(MANAGERS), {"parking": "Hijacked"}),
        e("get", f"/app/pets/{ids['pet']}/edit/", f(MANAGERS)),
        e("post", f"/app/pets/{ids['pet']}/edit/", f(MANAGERS), {"name": "Changed"}),
        e("get", f"/app/pets/{ids['pet']}/delete/", f(MANAGERS)),
        e("post", f"/app/pets/{ids['pet']}/delete/", f(MANAGERS)),
        e("get", f"/app/pets/{ids['pet']}/photo/", f(EVERYONE - {"other_staff"})),
        e("get", f"/app/pets/{ids['pet']}/photo/thumbnail/", f(EVERYONE - {"other_staff"})),
        e("post", f"/app/pets/{ids['pet']}/photo/upload/", f(MANAGERS)),
        e("post", f"/app/pets/{ids['pet']}/photo/remove/", f(MANAGERS)),
        e("get", "/app/portal/", f({"client"}), outsider_own_business=True),
        e("get", "/app/staff/", f(WORKERS), outsider_own_business=True),
        e(
            "post",
            "/app/staff/invite/",
            f(MANAGERS),
            {"email": "x@example.test", "role": "staff"},
            outsider_own_business=True,
        ),
        e("post", f"/app/staff/invitations/{ids['invitation']}/revoke/", f(MANAGERS)),
        e("post", f"/app/staff/{ids['staff']}/role/", f({"owner"}), {"role": "manager"}),
        e("post", f"/app/staff/{ids['staff']}/deactivate/", f(MANAGERS)),
        e("get", "/app/services/", f(EVERYONE), outsider_own_business=True),
        e("get", "/app/services/new/", f(MANAGERS), outsider_own_business=True),
        e(
            "post",
            "/app/services/new/",
            f(MANAGERS),
            {"name": "Sneaky", "duration_minutes": "30", "price": "1"},
            outsider_own_business=True,
        ),
        e("get", f"/app/services/{ids['service']}/edit/", f(MANAGERS)),
        e(
            "post",
            f"/app/services/{ids['service']}/edit/",
            f(MANAGERS),
            {"name": "Renamed", "duration_minutes": "30", "price": "1"},
        ),
        e("post", f"/app/services/{ids['service']}/retire/", f(MANAGERS)),
        e("get", "/app/calendar/", f(MANAGERS), outsider_own_business=True),
        e("get", "/app/visits/new/", f(MANAGERS), outsider_own_business=True),
        e(
            "post",
            "/app/visits/new/",
            f(MANAGERS),
            {"client": c, "staff": ids["staff"], "starts_at": soon},
            statuses=frozenset({400, 403, 404}),
        ),
        e("get", f"/app/visits/{v}/", f(MANAGERS | {"staff", "client"})),
        e(
            "post",
            f"/app/visits/{v}/update/",
            f(MANAGERS | {"staff"}),
            {"status": "cancelled", "report": "Hijacked"},
        ),
        e(
            "post",
            f"/app/visits/{v}/confirm/",
            f(MANAGERS),
            {"staff": ids["staff"]},
            statuses=frozenset({400, 403, 404}),
        ),
        e("get", "/app/today/", f(WORKERS), outsider_own_business=True),
        e("get", "/app/portal/request/", f({"client"}), outsider_own_business=True),
        e(
            "post",
            "/app/portal/request/",
            f({"client"}),
            {"starts_at": soon},
            outsider_own_business=True,
        ),
        e("get", "/app/notifications/", f(MANAGERS | {"client"}), outsider_own_business=True),
        e(
            "post",
            "/app/notifications/",
            f(MANAGERS | {"client"}),
            {"requests": "on"},
            outsider_own_business=True,
        ),
        e("get", "/app/tokens/", f(WORKERS), outsider_own_business=True),
        e("get", "/app/audit/", f({"owner"}), outsider_own_business=True),
        e("get", "/app/audit/export.csv", f({"owner"}), outsider_own_business=True),
        e("get", "/app/audit/export.json", f({"owner"}), outsider_own_business=True),
        e("post", "/app/tokens/new/", f(WORKERS), {"name": "mine"}, outsider_own_business=True),
        e("post", f"/app/tokens/{ids['token']}/revoke/", f({"owner"})),
        e("get", "/app/", f(EVERYONE), outsider_own_business=True),
    ]


def ids_of(matrix: TenantMatrix) -> dict[str, str]:
    """Ids of business A's objects, plus an invitation and an owner's token made for the test."""
    a = matrix.a
    act(a.owner)
    invitation = do_invite_member(actor=a.owner, email="pending@example.test", role=Role.STAFF)
    token, _plain = do_create_api_token(actor=a.owner, name="owner's")
    pet = do_create_pet(a.client, actor=a.owner, name="Miso", medication="Thyroxine")
    do_set_pet_photo(pet, photo_bytes(), actor=a.owner)
    do_update_household(a.client, actor=a.owner, wifi_password="garden-wifi-pw")
    return {
        "client": str(a.client.pk),
        "other_client": str(a.other_client.pk),
        "visit": str(a.visit.pk),
        "service": str(a.service.pk),
        "staff": str(a.staff.membership.pk),
        "other_staff": str(a.other_staff.membership.pk),
        "invitation": str(invitation.pk),
        "token": str(token.pk),
        "pet": str(pet.pk),
    }


def _problems_for(matrix: TenantMatrix, role: str) -> list[str]:
    ids = ids_of(matrix)
    browser = logged_in(actor_for(matrix, role))
    problems = []
    for endpoint in endpoints(ids):
        if role in endpoint.allowed:
            continue
        if role == "outsider" and endpoint.outsider_own_business:
            # The outsider's own business pages: only check that nothing of A shows.
            response = getattr(browser, endpoint.method)(endpoint.url, endpoint.data)
            page = response.content.decode()
            leaked = leaked_markers(page)
            if leaked or response.status_code >= 500:
                problems.append(
                    f"{endpoint.method} {endpoint.url}: {response.status_code} {leaked}"
                )
            continue
        before = snapshot(matrix)
        response = getattr(browser, endpoint.method)(endpoint.url, endpoint.data)
        page = response.content.decode()
        if response.status_code not in endpoint.statuses:
            problems.append(f"{endpoint.method} {endpoint.url}: status {response.status_code}")
        leaked = leaked_markers(page)
        if leaked:
            problems.append(f"{endpoint.method} {endpoint.url}: page shows {leaked}")
        if snapshot(matrix) != before:
            problems.append(f"{endpoint.method} {endpoint.url}: data changed")
    return problems


@pytest.mark.parametrize("role", ROLES)
def test_refused_roles_get_4xx_see_nothing_and_change_nothing(matrix, role):
    assert _problems_for(matrix, role) == []


def test_logged_out_visitors_are_sent_to_log_in(matrix):
    from tests.web.support import anonymous

    browser = anonymous()
    ids = ids_of(matrix)
    before = snapshot(matrix)
    for endpoint in endpoints(ids):
        response = getattr(browser, endpoint.method)(endpoint.url, endpoint.data)
        assert response.status_code == 302, endpoint
        assert response["Location"].startswith("/accounts/login/"), endpoint
        # The search term or any query string stays out of the login address.
        assert "?" not in response["Location"].split("?next=", 1)[1]
    assert snapshot(matrix) == before


def test_allowed_roles_can_open_every_page(matrix):
    """The table's `allowed` column is true: each allowed role's GET works (no 4xx/5xx)."""
    ids = ids_of(matrix)
    for role in ROLES[1:]:
        browser = logged_in(actor_for(matrix, role))
        for endpoint in endpoints(ids):
            if endpoint.method == "get" and role in endpoint.allowed:
                response = browser.get(endpoint.url)
                assert response.status_code in (200, 302), (role, endpoint.url)
