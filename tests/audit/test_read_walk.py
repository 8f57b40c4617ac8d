"""Every route that can show customer data records the read: a walk over every URL pattern and
API operation, GET as each member role of a seeded business (browser session, and API token for
the API), that fails when a response carries a client's data without an audit event of a read of
that client under the response's request id.

A route passes by recording, or by showing no customer data; nothing is exempt except the few
routes below that are not requested at all. `test_the_walk_catches_an_unrecorded_route` adds a
page that shows clients without recording and checks that the walk names it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver, path
from django.utils import timezone

from custodia import urls as custodia_urls
from custodia.accounts.actions import do_create_api_token
from custodia.api.routes import api
from custodia.clients.access import list_clients
from custodia.clients.actions import do_update_client
from custodia.clients.models import Client, Pet
from custodia.clients.profile_actions import do_create_pet, do_update_household
from custodia.core.actor import Actor
from custodia.core.audit import AuditAction as A
from custodia.core.permissions import Permission, Role
from custodia.jobs.models import Job
from custodia.payments.actions.invoices import do_create_invoice
from custodia.payments.actions.passes import do_sell_pass, do_start_membership
from custodia.payments.models import (
    ClientPass,
    Invoice,
    InvoiceLine,
    MembershipPlan,
    PassType,
)
from custodia.scheduling.actions import do_create_visit, do_update_visit
from custodia.scheduling.reporting import do_add_visit_photo
from custodia.tenancy.actions import do_invite_member
from custodia.tenancy.models import Invitation
from custodia.transparency.actions import do_publish_security_page
from custodia.web.decorators import member_required
from custodia.web.views import day_bounds
from custodia.webhooks.models import Endpoint
from custodia.webhooks.signing import new_secret
from tests.acting import act
from tests.audit.support import chain_events
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix
from tests.payments.support import catalog
from tests.scheduling.photos_support import photo_bytes
from tests.web.support import logged_in

ROLES = ("owner", "manager", "staff", "client_login")
# Not requested, because a GET of them ends the session the rest of the walk needs. They show
# no customer data by nature (allauth's logout confirmation).
NOT_WALKED = {
    "accounts/logout/": "a GET asks to confirm, but allauth may log out at once",
}
# Reads that name a client (its id as `client_id`, or among `subject_ids`).
CLIENT_READS = {
    A.CLIENT_READ,
    A.CLIENT_LIST,
    A.VISIT_READ,
    A.VISIT_LIST,
    A.PASS_READ,
    A.PASS_LIST,
    A.INVOICE_READ,
    A.INVOICE_LIST,
}
VISIT_READS = {A.VISIT_READ, A.VISIT_LIST}


@dataclass(frozen=True)
class Marker:
    """A value of a client's record that no page shows unless it shows that record."""

    text: str
    client: Client
    reads: frozenset[A]  # an event of one of these, naming the client, must accompany it


def seed(matrix: TenantMatrix) -> list[Marker]:
    """Distinctive values in business A's records (the factories' "4711" could be part of an
    id), a visit report, and a pending client invitation; the markers to look for."""
    a = matrix.a
    act(a.owner)
    markers = []
    for label, client in (("first", a.client), ("second", a.other_client)):
        record = {
            "email": f"walk-{label}@alpha.test",
            "phone": f"+1 555 01{len(label):02d}",
            "address": f"Walkway {label} 12",
            "notes": f"walk notes of the {label} client",
        }
        codes = {
            "instructions": f"walk instructions {label}",
            "door_code": f"walk-door-{label}",
            "alarm_code": f"walk-alarm-{label}",
        }
        do_update_client(client, actor=a.owner, **record, **codes)
        markers += [Marker(client.name, client, frozenset(CLIENT_READS))]
        markers += [Marker(value, client, frozenset(CLIENT_READS)) for value in record.values()]
        markers += [
            Marker(value, client, frozenset({A.ACCESS_CODES_REVEAL})) for value in codes.values()
        ]
    do_update_visit(a.visit, actor=a.owner, report="walk report of the visit")
    # The matrix's visit starts in two hours, which after 22:00 is tomorrow (and next week late on
    # a Sunday): one more at the start of today keeps "today", the dashboard and the week showing
    # a visit whatever the hour the suite runs at.
    do_create_visit(
        actor=a.owner,
        client=a.client,
        staff=a.staff.membership,
        service=a.service,
        starts_at=day_bounds(timezone.localdate())[0],
    )
    markers.append(Marker("walk report of the visit", a.client, frozenset(VISIT_READS)))
    # A pet and household details (docs/profiles.md): shown with a profile read, the sealed
    # household details with a reveal.
    do_create_pet(a.client, actor=a.owner, name="Walkpet", medication="walk-medication")
    do_update_household(a.client, actor=a.owner, keys_held="walk-keys", wifi_password="walk-wifi")
    markers += [
        Marker("walk-medication", a.client, frozenset({A.PROFILE_READ})),
        Marker("walk-keys", a.client, frozenset({A.PROFILE_READ})),
        Marker("walk-wifi", a.client, frozenset({A.HOUSEHOLD_REVEAL})),
    ]
    # A pass sold to the client (its invoice issued), a membership, and a draft of the visits.
    kinds = catalog(a)
    act(a.owner)
    do_sell_pass(a.client, kinds.ten, actor=a.owner)
    do_start_membership(a.client, kinds.plan, actor=a.owner)
    do_create_invoice(a.client, actor=a.owner)
    # The staff page lists pending invitations with their address: here, the client's own.
    do_invite_member(
        actor=a.owner, email="walk-second@alpha.test", role=Role.CLIENT, client=a.other_client
    )
    return markers


def routes(patterns: list[Any] | None = None, prefix: str = "") -> Iterator[str]:
    """Every URL pattern of the project (each API operation's path is one), once each."""
    seen: set[str] = set()
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            inner = routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            assert isinstance(pattern, URLPattern)
            inner = iter([prefix + str(pattern.pattern)])
        for route in inner:
            if route not in seen:
                seen.add(route)
                yield route


def parameters(matrix: TenantMatrix) -> dict[str, str]:
    """A value for each path parameter: business A's objects, or a harmless stand-in."""
    a = matrix.a
    act(a.owner)
    token, _plain = do_create_api_token(actor=a.owner, name="walk")
    invitation = Invitation.objects.filter(tenant_id=a.owner.tenant_id).first()
    assert invitation is not None, "seed() first"
    return {
        "client_id": str(a.client.pk),
        "visit_id": str(a.visit.pk),
        # A photo of that visit: its image and thumbnail routes record each read.
        "photo_id": str(do_add_visit_photo(a.visit, photo_bytes((64, 48)), actor=a.owner).pk),
        "service_id": str(a.service.pk),
        "pet_id": str(Pet.objects.values_list("pk", flat=True)[0]),
        "pass_id": str(ClientPass.objects.filter(client=a.client).values_list("pk", flat=True)[0]),
        "invoice_id": str(
            Invoice.objects.filter(client=a.client, number=1).values_list("pk", flat=True)[0]
        ),
        "pass_type_id": str(PassType.objects.values_list("pk", flat=True)[0]),
        "plan_id": str(MembershipPlan.objects.values_list("pk", flat=True)[0]),
        "line_id": str(InvoiceLine.objects.values_list("pk", flat=True)[0]),
        "membership_id": str(a.staff.membership.pk),
        "token_id": str(token.pk),
        "invitation_id": str(invitation.pk),
        # No such export: its page shows no customer data (tests/lifecycle).
        "export_id": NO_SUCH_ID,
        "job_id": str(
            Job.objects.create(
                tenant_id=a.owner.tenant_id, kind="export", started_by=a.owner.membership
            ).pk
        ),
        # A real endpoint: its page shows its delivery log (ids, statuses), no customer data.
        "endpoint_id": str(
            Endpoint.objects.create(
                tenant_id=a.owner.tenant_id,
                url="https://hooks.example.com/walk",
                event_types=["visit.created"],
                secret=new_secret(),
            ).pk
        ),
        "delivery_id": NO_SUCH_ID,
        # The operator console answers members 404 whatever the report (tests/platform).
        "report_id": NO_SUCH_ID,
        # No such alert: an alert names a rule, a person's id or an address, never customer data.
        "alert_id": NO_SUCH_ID,
        # Cards: a state no session opened, no such card or card payment (tests/payments).
        "state": "walkstate",
        "card_id": NO_SUCH_ID,
        "payment_id": NO_SUCH_ID,
        "session_id": "1",
        "pk": "1",
        "prefix": "walkprefix",
        "secret": "walksecret",
        "token": "walktoken",
        "key": "walkkey",
        "uidb36": "1",
        "rest": "no-such-endpoint",
        # The wallet web service (a device's requests, no session: 401 or nothing found).
        "device_id": "walkdevice",
        "type_id": "pass.walk.type",
        "serial": "walkserial",
        # Business A's own security page, published: public figures, never customer data.
        "slug": published_slug(a.owner),
    }


def published_slug(owner: Actor) -> str:
    act(owner)
    do_publish_security_page(actor=owner)
    return str(owner.business.slug)


NO_SUCH_ID = "00000000-0000-4000-8000-000000000001"
PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)")


def url_of(route: str, values: dict[str, str]) -> str:
    """The route with its parameters filled in (a regex route's anchors dropped)."""

    def fill(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        assert name in values, f"the walk has no value for <{name}> in {route}: add one"
        return values[name]

    return "/" + PARAMETER.sub(fill, route.replace("^", "").replace("$", ""))


@dataclass(frozen=True)
class Finding:
    route: str
    door: str
    role: str
    status: int
    missing: list[str]

    def __str__(self) -> str:
        return f"{self.route} ({self.door}, {self.role}, {self.status}): {'; '.join(self.missing)}"


def unrecorded(
    matrix: TenantMatrix,
    markers: list[Marker],
    shown: dict[str, set[str]] | None = None,
    only: set[str] | None = None,
) -> list[Finding]:
    """Every (route, door, role) whose answer carried a marker without the read it needs.
    `shown` collects, per route, the roles it showed customer data to; `only` narrows the walk
    to some routes."""
    values = parameters(matrix)
    owner = matrix.a.owner
    findings = []
    for role in ROLES:
        actor: Actor = getattr(matrix.a, role)
        doors = {"session": logged_in(actor)}
        if actor.can(Permission.TOKENS_CREATE):  # a client login has no API tokens
            doors["token"] = _token_client(actor)
        for route in routes():
            if route in NOT_WALKED or (only is not None and route not in only):
                continue
            for door, browser in doors.items():
                if door == "token" and not route.startswith("api/"):
                    continue
                mark = max((event["id"] for event in chain_events(owner)), default=0)
                response = browser.get(url_of(route, values))
                missing = _missing_reads(response, markers, owner, mark)
                if shown is not None and _carried(response, markers):
                    shown.setdefault(route, set()).add(role)
                if missing:
                    findings.append(Finding(route, door, role, response.status_code, missing))
    return findings


def _token_client(actor: Actor) -> HttpsClient:
    act(actor)
    token, plain = do_create_api_token(actor=actor, name="walk")
    return HttpsClient(HTTP_AUTHORIZATION=f"Bearer {plain}")


def _body(response: HttpResponse) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")  # type: ignore[attr-defined]
    return response.content.decode(errors="replace")


def _carried(response: HttpResponse, markers: list[Marker]) -> list[Marker]:
    body = _body(response)
    return [marker for marker in markers if marker.text in body]


def _missing_reads(
    response: HttpResponse, markers: list[Marker], owner: Actor, mark: int
) -> list[str]:
    carried = _carried(response, markers)
    if not carried:
        return []
    request_id = response.get("X-Request-ID", "")
    events = [
        event
        for event in chain_events(owner, after=mark)
        if request_id and event["request_id"] == request_id
    ]
    unnamed: dict[tuple[str, frozenset[A]], list[str]] = {}
    for marker in carried:
        named = [
            event
            for event in events
            if event["action"] in marker.reads
            and (
                event["client_id"] == marker.client.pk
                or marker.client.pk in (event["subject_ids"] or [])
            )
        ]
        if not named:
            unnamed.setdefault((marker.client.name, marker.reads), []).append(repr(marker.text))
    return [
        f"shows {', '.join(texts)} of {client} without a {'/'.join(sorted(reads))} naming them"
        for (client, reads), texts in unnamed.items()
    ]


def test_every_route_that_shows_customer_data_records_the_read(matrix: TenantMatrix) -> None:
    markers = seed(matrix)
    shown: dict[str, set[str]] = {}
    findings = unrecorded(matrix, markers, shown)
    assert not findings, "unrecorded reads:\n" + "\n".join(map(str, findings))
    # The walk is not vacuous: the pages and operations known to show records were seen to.
    for route in (
        "app/",  # the dashboard's visits today
        "app/clients/",
        "app/clients/<str:client_id>/",
        "app/clients/<str:client_id>/edit/",
        "app/calendar/",
        "app/today/",
        "app/portal/",
        "app/staff/",  # a pending client invitation
        "app/visits/<str:visit_id>/",
        "app/visits/new/",  # the client menu
        "api/v1/clients",
        "api/v1/clients/<client_id>",
        "api/v1/visits",
        "api/v1/visits/<visit_id>",
        "app/clients/<str:client_id>/passes/",
        "app/passes/",
        "app/passes/<str:pass_id>/",
        "app/invoices/",
        "app/invoices/<str:invoice_id>/",
        "app/invoices/<str:invoice_id>/print/",
        "app/pets/<str:pet_id>/edit/",
        "app/clients/<str:client_id>/household/",
        "api/v1/clients/<client_id>/pets",
        "api/v1/pets/<pet_id>",
    ):
        assert route in shown, f"{route} never showed customer data: is the walk still walking?"


def test_the_walk_covers_every_api_operation(matrix: TenantMatrix) -> None:
    """The URL patterns include each operation of the OpenAPI document (so the walk does)."""
    walked = set(routes())
    document = api.get_openapi_schema()
    for api_path, operations in document["paths"].items():
        if "get" in operations:
            route = re.sub(r"\{(\w+)\}", r"<\1>", api_path.lstrip("/"))
            assert route in walked, route


# --- A page that forgets: the walk must name it --------------------------------------------


@member_required()
def leaky_client_names(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Shows every client's name by evaluating the query itself, which records nothing."""
    return HttpResponse(", ".join(client.name for client in list_clients(actor)))


urlpatterns = [path("app/leaky/", leaky_client_names), *custodia_urls.urlpatterns]


def test_the_walk_catches_an_unrecorded_route(matrix: TenantMatrix) -> None:
    markers = seed(matrix)
    with override_settings(ROOT_URLCONF=__name__):
        assert "app/leaky/" in set(routes())
        # The new page next to one that records (the whole walk is the test above).
        findings = unrecorded(matrix, markers, only={"app/leaky/", "app/clients/"})
    assert findings, "the walk missed a page that shows clients without recording"
    assert {finding.route for finding in findings} == {"app/leaky/"}
    assert {finding.role for finding in findings} == {"owner", "manager", "staff", "client_login"}
