"""Every endpoint x method, as every role: the outsider and lesser roles get 404/403 and change
nothing; permitted roles succeed and change only their own business."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from tests.api.conftest import ROLES, actor_for, assert_error, fill, names, send, snapshot


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: Any
    # Expected status per role, in the order of ROLES:
    # outsider, owner, manager, staff, other_staff, client.
    expect: tuple[int, ...]
    # Step-up actions: asked from a browser session that has just logged in (a token never may;
    # tests/api/test_behaviour.py shows the token's 403).
    session: bool = False


SCHEDULE = {
    "client_id": "{client}",
    "staff_id": "{staff}",
    "service_id": "{service}",
    "starts_at": "{soon}",
}
REQUEST = {"starts_at": "{soon}", "service_id": "{service}", "note": "Please come early"}

CASES = [
    # --- /clients
    Case("clients-list", "GET", "/clients", None, (200, 200, 200, 200, 200, 200)),
    Case(
        "clients-create",
        "POST",
        "/clients",
        {"name": "New Client", "door_code": "1234"},
        (201, 201, 201, 403, 403, 403),
    ),
    Case("client-get", "GET", "/clients/{client}", None, (404, 200, 200, 200, 404, 200)),
    Case(
        "client-get-unassigned",
        "GET",
        "/clients/{other_client}",
        None,
        (404, 200, 200, 404, 404, 404),
    ),
    Case(
        "client-patch",
        "PATCH",
        "/clients/{client}",
        {"notes": "Changed", "door_code": "1"},
        (404, 200, 200, 403, 404, 403),
    ),
    Case("client-delete", "DELETE", "/clients/{client}", None, (404, 204, 204, 403, 404, 403)),
    Case(
        "client-staff-list", "GET", "/clients/{client}/staff", None, (404, 200, 200, 200, 404, 403)
    ),
    Case(
        "client-staff-assign",
        "POST",
        "/clients/{client}/staff",
        {"membership_id": "{other_staff}"},
        (404, 201, 201, 403, 404, 403),
    ),
    Case(
        "client-staff-unassign",
        "DELETE",
        "/clients/{client}/staff/{staff}",
        None,
        (404, 204, 204, 403, 404, 403),
    ),
    # --- pets (docs/profiles.md)
    Case("client-pets-list", "GET", "/clients/{client}/pets", None, (404, 200, 200, 200, 404, 200)),
    Case(
        "client-pets-create",
        "POST",
        "/clients/{client}/pets",
        {"name": "Rex", "species": "dog", "medication": "Half a pill"},
        (404, 201, 201, 403, 404, 403),
    ),
    Case("pet-get", "GET", "/pets/{pet}", None, (404, 200, 200, 200, 404, 200)),
    Case(
        "pet-patch",
        "PATCH",
        "/pets/{pet}",
        {"medication": "None", "birthday": "2020-02-02"},
        (404, 200, 200, 403, 404, 403),
    ),
    Case("pet-delete", "DELETE", "/pets/{pet}", None, (404, 204, 204, 403, 404, 403)),
    # --- /staff
    Case("staff-list", "GET", "/staff", None, (200, 200, 200, 200, 200, 403)),
    Case("staff-get", "GET", "/staff/{staff}", None, (404, 200, 200, 200, 200, 403)),
    Case(
        "staff-invite",
        "POST",
        "/staff/invitations",
        {"email": "newcomer@example.test", "role": "staff"},
        (201, 201, 201, 403, 403, 403),
        session=True,  # inviting a member needs a fresh step-up (tenancy/actions.py)
    ),
    Case(
        "staff-role",
        "PATCH",
        "/staff/{staff}",
        {"role": "manager"},
        (404, 200, 403, 403, 403, 403),
        session=True,
    ),
    Case(
        "staff-deactivate",
        "PATCH",
        "/staff/{other_staff}",
        {"is_active": False},
        (404, 200, 200, 403, 403, 403),
        session=True,
    ),
    # --- /services
    Case("services-list", "GET", "/services", None, (200, 200, 200, 200, 200, 200)),
    Case(
        "services-create",
        "POST",
        "/services",
        {"name": "Bath", "duration_minutes": 30, "price_cents": 1500},
        (201, 201, 201, 403, 403, 403),
    ),
    Case("service-get", "GET", "/services/{service}", None, (404, 200, 200, 200, 200, 200)),
    Case(
        "service-patch",
        "PATCH",
        "/services/{service}",
        {"price_cents": 3000},
        (404, 200, 200, 403, 403, 403),
    ),
    Case("service-delete", "DELETE", "/services/{service}", None, (404, 204, 204, 403, 403, 403)),
    # --- /visits
    Case("visits-list", "GET", "/visits", None, (200, 200, 200, 200, 200, 200)),
    # The outsider names A's client in the body: 422 on that field, never a visit for it.
    Case("visits-schedule", "POST", "/visits", SCHEDULE, (422, 201, 201, 403, 403, 422)),
    Case("visits-request", "POST", "/visits", REQUEST, (422, 422, 422, 403, 403, 201)),
    # The calendar's feed: each member sees their own business's (staff: their own visits);
    # clients have none (it names the staff).
    Case(
        "visits-calendar",
        "GET",
        "/visits/calendar?start={calendar_start}&end={calendar_end}",
        None,
        (200, 200, 200, 200, 200, 403),
    ),
    Case("visit-get", "GET", "/visits/{visit}", None, (404, 200, 200, 200, 404, 200)),
    Case(
        "visit-patch",
        "PATCH",
        "/visits/{visit}",
        {"report": "Walked, fed the cat"},
        (404, 200, 200, 200, 404, 403),
    ),
    Case("visit-delete", "DELETE", "/visits/{visit}", None, (404, 204, 204, 403, 404, 403)),
    Case("visit-photos", "GET", "/visits/{visit}/photos", None, (404, 200, 200, 200, 404, 200)),
    Case(
        "visit-photo-get",
        "GET",
        "/visits/{visit}/photos/{photo}",
        None,
        (404, 200, 200, 200, 404, 200),
    ),
    # --- /audit (the outsider reads their own business's trail)
    Case("audit-events", "GET", "/audit/events", None, (200, 200, 403, 403, 403, 403)),
    Case("audit-events-mine", "GET", "/audit/events/mine", None, (403, 403, 403, 403, 403, 200)),
    Case("audit-feed", "GET", "/audit/feed", None, (200, 200, 403, 403, 403, 403)),
    # --- /exports (the outsider starts an export of their own business)
    Case(
        "exports-start",
        "POST",
        "/exports",
        None,
        (202, 202, 403, 403, 403, 403),
        session=True,  # a fresh step-up, or a token holding the scope by name (docs/export.md)
    ),
    # No export of A exists: the id is no export for anyone.
    Case("export-get", "GET", "/exports/{export}", None, (404, 404, 404, 404, 404, 404)),
    # --- /jobs (started by the manager: theirs and the owners' to see)
    Case("job-get", "GET", "/jobs/{job}", None, (404, 200, 200, 404, 404, 404)),
    # --- /passes, /invoices (read-only; staff have no payment permission at all)
    Case("passes-list", "GET", "/passes", None, (200, 200, 200, 403, 403, 200)),
    Case("pass-get", "GET", "/passes/{pass}", None, (404, 200, 200, 403, 403, 200)),
    Case("invoices-list", "GET", "/invoices", None, (200, 200, 200, 403, 403, 200)),
    Case("invoice-get", "GET", "/invoices/{invoice}", None, (404, 200, 200, 403, 403, 200)),
]

PARAMS = [
    pytest.param(case, role, status, id=f"{case.name}-{role}-{status}")
    for case in CASES
    for role, status in zip(ROLES, case.expect, strict=True)
]
ENDPOINTS = sorted(
    {(case.method, re.sub(r"\{\w+\}", "{id}", case.path.partition("?")[0])) for case in CASES}
)


def a_ids(values: dict[str, str]) -> list[str]:
    """Ids of business A's objects, which must never appear in an answer to the outsider."""
    mine = [value for key, value in values.items() if not key.startswith(("b_", "soon"))]
    return [value for value in mine if not value.endswith("Z")]  # the calendar's range


@pytest.mark.parametrize(("case", "role", "expected"), PARAMS)
def test_endpoint_as_role(matrix, caller, web_as, case: Case, role: str, expected: int) -> None:
    values = names(matrix)
    actor = actor_for(matrix, role)
    client = web_as(actor) if case.session else caller(actor)
    before = snapshot(matrix)

    response = send(client, case.method, fill(case.path, values), fill(case.body, values))

    after = snapshot(matrix)
    if expected >= 400:
        body = assert_error(response, expected)
        assert after == before, "a refused request changed the database"
        if expected == 404:
            assert body == {"detail": "Not found."}
    else:
        assert response.status_code == expected, response.content
        if case.method == "GET":
            assert after == before
        else:
            # The write landed in the actor's own business and nowhere else.
            own, other = ("b", "a") if role == "outsider" else ("a", "b")
            assert after[own] != before[own]
            assert after[other] == before[other]
        if expected == 204:
            assert response.content == b""
    if role == "outsider":
        leaked = [value for value in a_ids(values) if value in response.content.decode()]
        assert not leaked, "business A's ids in an answer to the outsider"


def test_matrix_covers_every_endpoint_and_role() -> None:
    """40 endpoint-methods (43 cases with the body and target variants), each as all 6 roles."""
    assert len(ENDPOINTS) == 40
    assert len(PARAMS) == len(CASES) * len(ROLES) == 258
