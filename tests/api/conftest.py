"""Helpers for the API tests: one way to call an endpoint, and a snapshot of both businesses."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from django.http import HttpResponse
from django.utils import timezone

from custodia.clients.models import Assignment, Client, HomeAccess, Household, Pet
from custodia.clients.profile_actions import do_create_pet
from custodia.core.actor import Actor, acting_as
from custodia.core.permissions import Permission
from custodia.jobs.models import Job
from custodia.lifecycle.export.models import Export
from custodia.payments.actions.catalog import do_create_pass_type
from custodia.payments.actions.passes import do_sell_pass
from custodia.payments.models import ClientPass, Invoice
from custodia.scheduling.models import Service, Visit
from custodia.tenancy.models import Business, Invitation, Membership
from tests.acting import act
from tests.factories import TenantMatrix

API = "/api/v1"
ROLES = ("outsider", "owner", "manager", "staff", "other_staff", "client")
# Every tenant-owned table an endpoint here could write (API tokens are not: using one stamps it).
MODELS = (
    Business,
    Membership,
    Invitation,
    Client,
    HomeAccess,
    Assignment,
    Service,
    Visit,
    Export,
    Pet,
    Household,
)


def actor_for(matrix: TenantMatrix, role: str) -> Actor:
    """The actor playing `role`: a member of business A, or the outsider (owner of B)."""
    if role == "outsider":
        return matrix.outsider
    return getattr(matrix.a, "client_login" if role == "client" else role)


def soon(days: int = 3, hours: int = 0) -> str:
    """An ISO 8601 time in the future, with its time zone."""
    moment = timezone.now() + dt.timedelta(days=days, hours=hours)
    return moment.replace(microsecond=0).isoformat()


def names(matrix: TenantMatrix) -> dict[str, str]:
    """Placeholders for URL and body templates: ids of A's objects, and some of B's."""
    a, b = matrix.a, matrix.b
    return {
        "client": str(a.client.pk),
        "other_client": str(a.other_client.pk),
        "owner": str(a.owner.membership.pk),
        "manager": str(a.manager.membership.pk),
        "staff": str(a.staff.membership.pk),
        "other_staff": str(a.other_staff.membership.pk),
        "service": str(a.service.pk),
        "visit": str(a.visit.pk),
        # No export exists in the matrix: an id that is no export's, for anyone.
        "export": "00000000-0000-4000-8000-000000000001",
        "b_client": str(b.client.pk),
        "b_staff": str(b.staff.membership.pk),
        "b_service": str(b.service.pk),
        "b_visit": str(b.visit.pk),
        "job": str(managers_job(matrix).pk),
        **sold_pass(matrix),
        "pet": str(clients_pet(matrix).pk),
        "photo": visit_photo(matrix),
        "soon": soon(),
        # The calendar feed's range, in UTC ("Z": a "+" in a query would read as a space).
        "calendar_start": (timezone.now() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "calendar_end": (timezone.now() + dt.timedelta(days=6)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def managers_job(matrix: TenantMatrix) -> Job:
    """A background job business A's manager started (the same one on every call)."""
    manager = matrix.a.manager
    with acting_as(manager):
        job = Job.objects.filter(started_by=manager.membership).first()
        if job is None:
            job = Job.objects.create(
                tenant_id=manager.tenant_id, kind="export", started_by=manager.membership
            )
    return job


def clients_pet(matrix: TenantMatrix) -> Pet:
    """A pet of business A's client (the same one on every call)."""
    owner = matrix.a.owner
    with acting_as(owner):
        pet = Pet.objects.filter(client=matrix.a.client).first()
        if pet is None:
            pet = do_create_pet(matrix.a.client, actor=owner, name="Miso", medication="Pill")
    return pet

def visit_photo(matrix: TenantMatrix) -> str:
    """A photo the staff member added to business A's visit (the same one on every call)."""
    from custodia.scheduling.models import VisitPhoto
    from custodia.scheduling.reporting import do_add_visit_photo
    from tests.scheduling.photos_support import photo_bytes

    staff = matrix.a.staff
    with acting_as(staff):
        photo = VisitPhoto.objects.filter(visit=matrix.a.visit).only("id").first()
        if photo is None:
            photo = do_add_visit_photo(matrix.a.visit, photo_bytes((64, 48)), actor=staff)
    return str(photo.pk)


def sold_pass(matrix: TenantMatrix) -> dict[str, str]:
    """A pass sold to business A's client, and its invoice (the same ones on every call)."""
    owner = matrix.a.owner
    with acting_as(owner):
        sold = ClientPass.objects.filter(client=matrix.a.client).first()
        if sold is None:
            pass_type = do_create_pass_type(
                actor=owner, name="Five walks", credits=5, price_minor=10000, validity_days=30
            )
            sold, _invoice = do_sell_pass(matrix.a.client, pass_type, actor=owner)
        invoice = Invoice.objects.get(lines__client_pass=sold)
    return {"pass": str(sold.pk), "invoice": str(invoice.pk)}


def fill(template: Any, values: dict[str, str]) -> Any:
    """`template` with every "{name}" in its strings replaced."""
    if isinstance(template, str):
        return re.sub(r"\{(\w+)\}", lambda m: values.get(m[1], m[0]), template)
    if isinstance(template, dict):
        return {key: fill(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(value, values) for value in template]
    return template


def send(client: Any, method: str, path: str, body: Any = None, **extra: Any) -> HttpResponse:
    """Call the API over HTTPS; `body` is JSON-encoded unless it is already str or bytes."""
    kwargs: dict[str, Any] = {"secure": True, **extra}
    if body is not None:
        kwargs["data"] = body if isinstance(body, str | bytes) else json.dumps(body)
        kwargs["content_type"] = "application/json"
    return getattr(client, method.lower())(API + path, **kwargs)


def snapshot(matrix: TenantMatrix) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Every row of both businesses, each read by its own owner."""
    state = {}
    for name, business in (("a", matrix.a), ("b", matrix.b)):
        act(business.owner)
        state[name] = {
            model.__name__: list(model.objects.order_by("pk").values()) for model in MODELS
        }
    return state


def assert_error(response: HttpResponse, status: int) -> dict[str, Any]:
    """The response is a JSON error with a `detail` message (and field errors for 422)."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body.get("detail"), str) and body["detail"]
    if status == 422:
        assert isinstance(body.get("errors"), dict) and body["errors"]
    return body


@pytest.fixture
def ids(matrix: TenantMatrix) -> dict[str, str]:
    return names(matrix)


@pytest.fixture
def caller(api_as: Any, web_as: Any) -> Any:
    """`caller(actor)`: a bearer-token client, or a session one for a role that has no tokens."""

    def make(actor: Actor) -> Any:
        if actor.can(Permission.TOKENS_CREATE):
            return api_as(actor)
        return web_as(actor)

    return make
