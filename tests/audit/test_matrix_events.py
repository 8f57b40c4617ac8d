"""The audit events of every endpoint of the API tenant matrix, as every role: exactly these, in
this order, in the actor's own business's chain, under the response's request id, and never a
value of a sensitive field."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.http import HttpResponse

from custodia.core.audit import AuditAction as A
from tests.api import conftest as api_fixtures
from tests.api.conftest import ROLES, actor_for, fill, names, send
from tests.api.test_matrix import CASES, PARAMS, Case
from tests.audit.support import (
    Ev,
    Trail,
    client_list,
    denied,
    on_client,
    on_record,
    on_visit,
    visit_list,
)
from tests.factories import TenantMatrix

# tests/api's fixture, for a role's own door: a bearer token, or a session where it has none.
caller = api_fixtures.caller
EVERYONE = ROLES
# "{new}" is the id of the record the request created (from the response); "{b_other_client}"
# is the outsider's second client. Every other placeholder is tests/api's.
# A refusal names the object an access function refused ("client", "{client}"), or else, for
# an action the role may not take or a record without such a note, just the id in the route.
EVENTS: dict[str, dict[tuple[str, ...], list[Ev]]] = {
    # --- /clients
    # The same event as the HTML list's (one access function for both doors): whether there
    # was a search term, never the term.
    "clients-list": {
        ("outsider",): [client_list("{b_client}", "{b_other_client}", searched=False)],
        ("owner", "manager"): [client_list("{client}", "{other_client}", searched=False)],
        ("staff", "client"): [client_list("{client}", searched=False)],
        ("other_staff",): [client_list(searched=False)],
    },
    "clients-create": {
        # The names of the fields given, never their values (the door code among them).
        ("outsider", "owner", "manager"): [
            on_client(A.CLIENT_CREATE, "{new}", fields=["door_code", "name"])
        ],
        ("staff", "other_staff", "client"): [denied()],
    },
    "client-get": {
        ("outsider", "other_staff"): [denied("client", "{client}")],
        # Staff's visit is two hours away: the codes are in their answer, and that is a reveal.
        ("staff",): [on_client(A.CLIENT_READ), on_client(A.ACCESS_CODES_REVEAL)],
        # A token never steps up, and a visit opens no codes to managers: no reveal.
        ("owner", "manager", "client"): [on_client(A.CLIENT_READ)],
    },
    "client-get-unassigned": {
        # A token (no step-up) gets no codes, so no reveal.
        ("owner", "manager"): [on_client(A.CLIENT_READ, "{other_client}")],
        ("outsider", "staff", "other_staff", "client"): [denied("client", "{other_client}")],
    },
    "client-patch": {
        ("outsider", "other_staff"): [denied("client", "{client}")],
        ("owner", "manager"): [on_client(A.CLIENT_UPDATE, fields=["notes", "door_code"])],
        ("staff", "client"): [denied("", "{client}")],
    },
    "client-delete": {
        ("outsider", "other_staff"): [denied("client", "{client}")],
        ("owner", "manager"): [on_client(A.CLIENT_DELETE)],
        ("staff", "client"): [denied("", "{client}")],
    },
    "client-staff-list": {
        ("outsider", "other_staff"): [denied("client", "{client}")],
        ("owner", "manager", "staff"): [on_client(A.CLIENT_READ)],
        # The client's read of their own record is undone with the refused request.
        ("client",): [denied("", "{client}")],
    },
    "client-staff-assign": {
        ("outsider", "other_staff"): [denied("client", "{client}")],
        ("owner", "manager"): [on_client(A.ASSIGNMENT_CREATE, staff="{other_staff}")],
        ("staff", "client"): [denied("", "{client}")],
    },
    "client-staff-unassign": {
        ("outsider", "other_staff"): [denied("client", "{client}")],
        ("owner", "manager"): [on_client(A.ASSIGNMENT_DELETE, staff="{staff}")],
        ("staff", "client"): [denied("", "{client}")],
    },
    # --- pets (docs/profiles.md): reads and writes name the pet and its client.
    "client-pets-list": {
        ("outsider", "other_staff"): [denied("client", "{client}")],
        ("owner", "manager", "staff", "client"): [
            Ev(A.PROFILE_READ, "client", "{client}", "{client}", ["{pet}"], {"pets": 1})
        ],
    },
    "client-pets-create": {
        ("outsider", "other_staff"): [denied("client", "{client}")],
        ("owner", "manager"): [
            Ev(
                A.PET_CREATE,
                "pet",
                "{new}",
                "{client}",
                detail={"fields": ["medication", "name", "species"]},
            )
        ],
        ("staff", "client"): [denied("", "{client}")],
    },
    "pet-get": {
        ("outsider", "other_staff"): [denied("pet", "{pet}")],
        ("owner", "manager", "staff", "client"): [Ev(A.PROFILE_READ, "pet", "{pet}", "{client}")],
    },
    "pet-patch": {
        ("outsider", "other_staff"): [denied("pet", "{pet}")],
        ("owner", "manager"): [
            Ev(
                A.PET_UPDATE,
                "pet",
                "{pet}",
                "{client}",
                detail={"fields": ["medication", "birthday"]},
            )
        ],
        ("staff", "client"): [denied("", "{pet}")],
    },
    "pet-delete": {
        ("outsider", "other_staff"): [denied("pet", "{pet}")],
        ("owner", "manager"): [Ev(A.PET_DELETE, "pet", "{pet}", "{client}")],
        ("staff", "client"): [denied("", "{pet}")],
    },
    # --- /staff (people working in the business are not customer records: reads are not events)
    "staff-list": {
        ("outsider", "owner", "manager", "staff", "other_staff"): [],
        ("client",): [denied()],
    },
    "staff-get": {
        ("owner", "manager", "staff", "other_staff"): [],
        ("outsider", "client"): [denied("", "{staff}")],
    },
    "staff-invite": {
        # The role, never the address.
        ("outsider", "owner", "manager"): [
            on_record(A.MEMBER_INVITE, "invitation", "{new}", role="staff")
        ],
        ("staff", "other_staff", "client"): [denied()],
    },
    "staff-role": {
        ("owner",): [
            on_record(
                A.MEMBER_ROLE_CHANGE, "membership", "{staff}", **{"from": "staff"}, to="manager"
            )
        ],
        ("outsider", "manager", "staff", "other_staff", "client"): [denied("", "{staff}")],
    },
    "staff-deactivate": {
        ("owner", "manager"): [on_record(A.MEMBER_DEACTIVATE, "membership", "{other_staff}")],
        ("outsider", "staff", "other_staff", "client"): [denied("", "{other_staff}")],
    },
    # --- /services (what the business sells: reads are not events)
    "services-list": {EVERYONE: []},
    "services-create": {
        ("outsider", "owner", "manager"): [on_record(A.SERVICE_CREATE, "service", "{new}")],
        ("staff", "other_staff", "client"): [denied()],
    },
    "service-get": {
        ("owner", "manager", "staff", "other_staff", "client"): [],
        ("outsider",): [denied("", "{service}")],
    },
    "service-patch": {
        ("owner", "manager"): [
            on_record(A.SERVICE_UPDATE, "service", "{service}", fields=["price_cents"])
        ],
        ("outsider", "staff", "other_staff", "client"): [denied("", "{service}")],
    },
    "service-delete": {
        ("owner", "manager"): [on_record(A.SERVICE_DELETE, "service", "{service}")],
        ("outsider", "staff", "other_staff", "client"): [denied("", "{service}")],
    },
    # --- /visits
    "visits-list": {
        ("outsider",): [visit_list(["{b_visit}"], ["{b_client}"])],
        ("owner", "manager", "staff", "client"): [visit_list(["{visit}"], ["{client}"])],
        ("other_staff",): [visit_list([], [])],
    },
    # The calendar's feed records its answer like a page of the list, an empty one too.
    "visits-calendar": {
        ("outsider",): [visit_list(["{b_visit}"], ["{b_client}"])],
        ("owner", "manager", "staff"): [visit_list(["{visit}"], ["{client}"])],
        ("other_staff",): [visit_list([], [])],
        ("client",): [denied()],
    },
    "visits-schedule": {
        # A's client named in the outsider's body: refused (a 422 on the field), and recorded.
        ("outsider",): [denied("client", "{client}")],
        ("owner", "manager"): [on_visit(A.VISIT_CREATE, "{new}")],
        ("staff", "other_staff"): [denied()],
        # A client's body may not name a client or staff: refused before anything is read.
        ("client",): [],
    },
    "visits-request": {
        # Refused for the note before the service it names is looked up.
        ("outsider", "owner", "manager"): [],
        ("staff", "other_staff"): [denied()],
        ("client",): [on_visit(A.VISIT_REQUEST, "{new}")],
    },
    "visit-get": {
        ("outsider", "other_staff"): [denied("visit", "{visit}")],
        ("owner", "manager", "staff", "client"): [on_visit(A.VISIT_READ)],
    },
    "visit-patch": {
        ("outsider", "other_staff"): [denied("visit", "{visit}")],
        ("owner", "manager", "staff"): [on_visit(A.VISIT_UPDATE, fields=["report"])],
        ("client",): [denied("", "{visit}")],
    },
    "visit-delete": {
        ("outsider", "other_staff"): [denied("visit", "{visit}")],
        ("owner", "manager"): [on_visit(A.VISIT_DELETE)],
        ("staff", "client"): [denied("", "{visit}")],
    },
    "visit-photos": {
        ("outsider", "other_staff"): [denied("visit", "{visit}")],
        ("owner", "manager", "staff", "client"): [on_visit(A.VISIT_READ)],
    },
    "visit-photo-get": {
        ("outsider", "other_staff"): [denied("visitphoto", "{photo}")],
        ("owner", "manager", "staff", "client"): [
            Ev(
                A.VISIT_PHOTO_READ,
                "visitphoto",
                "{photo}",
                "{client}",
                detail={"visit": "{visit}", "part": "image"},
            )
        ],
    },
    # --- /audit ("{shown}": how many events the answer carried)
    "audit-events": {
        ("outsider", "owner"): [Ev(A.AUDIT_READ, detail={"count": "{shown}", "filters": []})],
        ("manager", "staff", "other_staff", "client"): [denied()],
    },
    "audit-events-mine": {
        ("outsider", "owner", "manager", "staff", "other_staff"): [denied()],
        # A client reading who accessed their own record.
        ("client",): [],
    },
    "audit-feed": {
        ("outsider", "owner"): [
            Ev(A.AUDIT_EXPORT, detail={"format": "jsonl", "count": "{shown}", "after": 0})
        ],
        ("manager", "staff", "other_staff", "client"): [denied()],
    },
    # --- /exports ("{new}": the export started, "{job}": the job that builds it)
    "exports-start": {
        ("outsider", "owner"): [
            on_record(A.EXPORT_START, "export", "{new}", kind="business", via="session"),
            on_record(A.JOB_START, "job", "{job}", kind="export"),
        ],
        ("manager", "staff", "other_staff", "client"): [denied()],
    },
    "export-get": {EVERYONE: [denied("export", "{export}")]},
    # --- /jobs: a job's status is no customer data, so reading it is no event; a refusal is.
    "job-get": {
        ("owner", "manager"): [],
        ("outsider", "staff", "other_staff", "client"): [denied("job", "{job}")],
    },
    # --- /passes, /invoices: A's client bought a pass (its invoice issued); B has none.
    "passes-list": {
        ("outsider",): [Ev(A.PASS_LIST, subject_ids=[], detail={"count": 0, "ids": []})],
        ("owner", "manager", "client"): [
            Ev(A.PASS_LIST, subject_ids=["{client}"], detail={"count": 1, "ids": ["{pass}"]})
        ],
        ("staff", "other_staff"): [denied()],
    },
    "pass-get": {
        ("outsider",): [denied("clientpass", "{pass}")],
        ("owner", "manager", "client"): [Ev(A.PASS_READ, "clientpass", "{pass}", "{client}")],
        ("staff", "other_staff"): [denied("", "{pass}")],
    },
    "invoices-list": {
        ("outsider",): [Ev(A.INVOICE_LIST, subject_ids=[], detail={"count": 0, "ids": []})],
        ("owner", "manager", "client"): [
            Ev(
                A.INVOICE_LIST,
                subject_ids=["{client}"],
                detail={"count": 1, "ids": ["{invoice}"]},
            )
        ],
        ("staff", "other_staff"): [denied()],
    },
    "invoice-get": {
        ("outsider",): [denied("invoice", "{invoice}")],
        ("owner", "manager", "client"): [Ev(A.INVOICE_READ, "invoice", "{invoice}", "{client}")],
        ("staff", "other_staff"): [denied("", "{invoice}")],
    },
}

# Body fields whose values are customer data (door codes, notes, reports, a client's note).
SENSITIVE = ("door_code", "alarm_code", "notes", "instructions", "report", "note", "medication")
# The URL parameter each path placeholder stands for (a refusal records the route pattern).
PARAMETERS = {
    "client": "client_id",
    "other_client": "client_id",
    "staff": "membership_id",
    "other_staff": "membership_id",
    "service": "service_id",
    "visit": "visit_id",
    "photo": "photo_id",
    "export": "export_id",
    "job": "job_id",
    "pass": "pass_id",
    "invoice": "invoice_id",
    "pet": "pet_id",
}


def expected_events(case: Case, role: str) -> list[Ev]:
    """The table's events for `role` in `case`."""
    return next(events for roles, events in EVENTS[case.name].items() if role in roles)


def route_of(case: Case) -> str:
    """The route pattern a refusal names: placeholders as parameters, never the ids sent."""
    path = case.path.partition("?")[0]  # the query is no part of the route
    return "api/v1" + re.sub(r"\{(\w+)\}", lambda m: f"<{PARAMETERS[m[1]]}>", path)


def secrets_in(body: Any) -> list[str]:
    """Values of sensitive fields in a request body."""
    if not isinstance(body, dict):
        return []
    return [str(body[key]) for key in SENSITIVE if body.get(key)]


def items_shown(response: HttpResponse) -> int:
    """How many items a list answer carried: a JSON page's items, or JSON lines."""
    if response["Content-Type"].startswith("application/x-ndjson"):
        return response.content.count(b"\n")
    if not response["Content-Type"].startswith("application/json"):
        return 0  # a file (a visit photo)
    body = response.json()
    return len(body["items"]) if isinstance(body, dict) and "items" in body else 0


@pytest.mark.parametrize(("case", "role", "expected"), PARAMS)
def test_endpoint_writes_exactly_its_events(
    matrix: TenantMatrix, caller: Any, web_as: Any, case: Case, role: str, expected: int
) -> None:
    values = names(matrix)
    actor = actor_for(matrix, role)
    client = web_as(actor) if case.session else caller(actor)
    body = fill(case.body, values)
    trail = Trail(matrix, actor)

    response = send(client, case.method, fill(case.path, values), body)

    assert response.status_code == expected, response.content
    if expected == 201:
        values["new"] = response.json()["id"]
    if expected == 202:
        values["new"], values["job"] = response.json()["id"], response.json()["job_id"]
    if expected == 200 and case.method == "GET":
        values["shown"] = items_shown(response)
    values["b_other_client"] = str(matrix.b.other_client.pk)
    trail.assert_wrote(
        response,
        expected_events(case, role),
        values,
        denial={"method": case.method, "route": route_of(case), "status": expected},
        secrets=secrets_in(body),
    )


def test_the_table_names_every_case_and_role_once() -> None:
    assert sorted(EVENTS) == sorted(case.name for case in CASES)
    for case in CASES:
        roles = [role for group in EVENTS[case.name] for role in group]
        assert sorted(roles) == sorted(ROLES), case.name


# An update that sends every field as it already is (a form always does) changed nothing, and
# says so: the event names the changed fields, not the fields sent.
UNCHANGED_UPDATES = [
    pytest.param(
        "/clients/{client}",
        {"name": "Alpha Client", "door_code": "4711"},
        [on_client(A.CLIENT_UPDATE, fields=[])],
        id="client",
    ),
    pytest.param(
        "/services/{service}",
        {"price_cents": 2500},
        [on_record(A.SERVICE_UPDATE, "service", "{service}", fields=[])],
        id="service",
    ),
    pytest.param(
        "/visits/{visit}",
        {"status": "scheduled", "report": ""},
        [on_visit(A.VISIT_UPDATE, fields=[])],
        id="visit",
    ),
]


@pytest.mark.parametrize(("path", "body", "events"), UNCHANGED_UPDATES)
def test_an_update_that_changes_nothing_names_no_field(
    matrix: TenantMatrix, caller: Any, path: str, body: dict[str, Any], events: list[Ev]
) -> None:
    values = names(matrix)
    owner = matrix.a.owner
    client = caller(owner)
    trail = Trail(matrix, owner)

    response = send(client, "PATCH", fill(path, values), body)

    assert response.status_code == 200, response.content
    trail.assert_wrote(response, events, values, denial={}, secrets=secrets_in(body))
