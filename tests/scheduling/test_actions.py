"""Services and visits: validation with clear field errors, and what staff may change."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from custodia.clients.actions import do_assign_staff
from custodia.core.actor import Actor
from custodia.scheduling.access import access_service_by_id, access_visit_by_id, list_visits
from custodia.scheduling.actions import (
    do_create_service,
    do_create_visit,
    do_delete_service,
    do_request_visit,
    do_update_service,
    do_update_visit,
)
from custodia.scheduling.models import Service, Visit, VisitStatus
from custodia.tenancy.actions import do_deactivate_member
from custodia.tenancy.reads import Intent
from tests.acting import act
from tests.factories import TenantMatrix
from tests.security.support import check_as_at_commit

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def later(hours: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(hours=hours)


def visits_of(actor: Actor) -> list[tuple[Any, ...]]:
    act(actor)
    return list(Visit.objects.order_by("id").values_list())


# --- Services --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"name": "", "duration_minutes": 30, "price_cents": 0}, {"name"}),
        ({"name": "  ", "duration_minutes": 30, "price_cents": 0}, {"name"}),
        ({"name": "W" * 121, "duration_minutes": 30, "price_cents": 0}, {"name"}),
        ({"name": "Walk", "duration_minutes": 4, "price_cents": 0}, {"duration_minutes"}),
        ({"name": "Walk", "duration_minutes": 1441, "price_cents": 0}, {"duration_minutes"}),
        ({"name": "Walk", "duration_minutes": 30, "price_cents": -1}, {"price_cents"}),
        ({"name": "Walk", "duration_minutes": 30, "price_cents": 10_000_001}, {"price_cents"}),
        (
            {"name": "", "duration_minutes": 0, "price_cents": -5},
            {"name", "duration_minutes", "price_cents"},
        ),
    ],
)
def test_bad_services_get_field_errors(
    matrix: TenantMatrix, fields: dict[str, Any], errors: set[str]
) -> None:
    owner = matrix.a.owner
    act(owner)
    with pytest.raises(ValidationError) as caught:
        do_create_service(actor=owner, **fields)
    assert set(caught.value.message_dict) == errors
    act(owner)
    with pytest.raises(ValidationError):
        do_update_service(matrix.a.service, actor=owner, **fields)
    act(owner)
    assert list(Service.objects.values_list("name", "duration_minutes", "price_cents")) == [
        ("Walk", 60, 2500)
    ]


def test_service_updates_refuse_unknown_fields(matrix: TenantMatrix) -> None:
    act(matrix.a.owner)
    with pytest.raises(ValidationError) as caught:
        do_update_service(
            matrix.a.service, actor=matrix.a.owner, tenant_id=matrix.b.owner.tenant_id
        )
    assert "tenant_id" in caught.value.message_dict


def test_deleting_a_service_keeps_its_visits(matrix: TenantMatrix) -> None:
    a = matrix.a
    act(a.owner)
    do_delete_service(a.service, actor=a.owner)
    check_as_at_commit()
    act(a.owner)
    visit = access_visit_by_id(a.owner, a.visit.pk, intent=Intent.SHOW)
    assert visit.service_id is None
    assert visit.starts_at == a.visit.starts_at


# --- Visits ----------------------------------------------------------------------------------


def test_a_visit_takes_its_length_from_the_service(matrix: TenantMatrix) -> None:
    a = matrix.a
    act(a.owner)
    start = later(30)
    visit = do_create_visit(actor=a.owner, client=a.client, service=a.service, starts_at=start)
    assert visit.ends_at - visit.starts_at == dt.timedelta(minutes=60)
    assert visit.status == VisitStatus.SCHEDULED
    act(a.manager)
    exactly_a_day = do_create_visit(
        actor=a.manager,
        client=a.other_client,
        starts_at=start,
        ends_at=start + dt.timedelta(hours=24),
    )
    assert exactly_a_day.staff_id is None


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ("end before start", "ends_at"),
        ("end equals start", "ends_at"),
        ("longer than a day", "ends_at"),
        ("naive start", "starts_at"),
        ("naive end", "ends_at"),
        ("no end and no service", "ends_at"),
        ("staff not assigned", "staff"),
        ("staff of another business", "staff"),
        ("staff inactive", "staff"),
        ("a client login as staff", "staff"),
        ("created completed", "status"),
        ("created cancelled", "status"),
    ],
)
def test_bad_visits_get_field_errors_and_write_nothing(
    matrix: TenantMatrix, case: str, field: str
) -> None:
    a = matrix.a
    start = later(30)
    kwargs: dict[str, Any] = {
        "client": a.client,
        "starts_at": start,
        "ends_at": start + dt.timedelta(hours=1),
    }
    if case == "end before start":
        kwargs["ends_at"] = start - dt.timedelta(minutes=1)
    elif case == "end equals start":
        kwargs["ends_at"] = start
    elif case == "longer than a day":
        kwargs["ends_at"] = start + dt.timedelta(hours=24, seconds=1)
    elif case == "naive start":
        kwargs["starts_at"] = timezone.make_naive(start)
    elif case == "naive end":
        kwargs["ends_at"] = timezone.make_naive(kwargs["ends_at"])
    elif case == "no end and no service":
        kwargs.pop("ends_at")
    elif case == "staff not assigned":
        kwargs["staff"] = a.other_staff.membership
    elif case == "staff of another business":
        kwargs["staff"] = matrix.b.staff.membership
    elif case == "staff inactive":
        act(a.owner)
        do_deactivate_member(a.staff.membership, actor=a.owner)
        kwargs["staff"] = a.staff.membership
    elif case == "a client login as staff":
        kwargs["staff"] = a.client_login.membership
    elif case == "created completed":
        kwargs["status"] = VisitStatus.COMPLETED
    elif case == "created cancelled":
        kwargs["status"] = VisitStatus.CANCELLED
    before = visits_of(a.owner)
    act(a.owner)
    with pytest.raises(ValidationError) as caught:
        do_create_visit(actor=a.owner, **kwargs)
    assert field in caught.value.message_dict, caught.value.message_dict
    assert all(caught.value.message_dict[key] for key in caught.value.message_dict)
    assert visits_of(a.owner) == before


def test_moving_a_visit_is_validated_like_creating_one(matrix: TenantMatrix) -> None:
    a = matrix.a
    before = visits_of(a.owner)
    act(a.owner)
    for changes, field in (
        ({"ends_at": a.visit.starts_at - dt.timedelta(minutes=5)}, "ends_at"),
        ({"starts_at": a.visit.starts_at - dt.timedelta(days=2)}, "ends_at"),
        ({"starts_at": timezone.make_naive(a.visit.starts_at)}, "starts_at"),
        ({"staff": a.other_staff.membership}, "staff"),
        ({"staff": matrix.b.staff.membership}, "staff"),
        ({"status": "done"}, "status"),
        ({"report": "r" * 10_001}, "report"),
        ({"client": a.other_client}, "client"),
        ({"tenant_id": matrix.b.owner.tenant_id}, "tenant_id"),
    ):
        act(a.owner)
        with pytest.raises(ValidationError) as caught:
            do_update_visit(a.visit, actor=a.owner, **changes)
        assert field in caught.value.message_dict, (changes, caught.value.message_dict)
    a.visit.refresh_from_db()
    assert visits_of(a.owner) == before


def test_managers_reschedule_and_reassign(matrix: TenantMatrix) -> None:
    a = matrix.a
    act(a.manager)
    do_assign_staff(a.client, a.other_staff.membership, actor=a.manager)
    do_update_visit(
        a.visit,
        actor=a.manager,
        starts_at=later(5),
        ends_at=later(6),
        staff=a.other_staff.membership,
    )
    act(a.other_staff)
    assert (
        access_visit_by_id(a.other_staff, a.visit.pk, intent=Intent.SHOW).staff_id
        == a.other_staff.membership.pk
    )
    act(a.staff)
    assert list(list_visits(a.staff)) == []


def test_staff_change_only_status_and_report_of_their_own_visits(matrix: TenantMatrix) -> None:
    a = matrix.a
    act(a.staff)
    for changes in (
        {"starts_at": later(1), "ends_at": later(2)},
        {"staff": a.other_staff.membership},
        {"service": None},
        {"report": "ok", "ends_at": later(3)},
    ):
        act(a.staff)
        with pytest.raises(ValidationError) as caught:
            do_update_visit(a.visit, actor=a.staff, **changes)
        assert set(caught.value.message_dict) == set(changes) - {"report", "status"}
    act(a.staff)
    visit = do_update_visit(a.visit, actor=a.staff, status="completed", report="  Walked Miso  ")
    assert (visit.status, visit.report) == (VisitStatus.COMPLETED, "Walked Miso")
    act(a.owner)
    stored = access_visit_by_id(a.owner, a.visit.pk, intent=Intent.SHOW)
    assert (stored.status, stored.report) == ("completed", "Walked Miso")
    # Another staff member's visit, a client login, the outsider: no.
    for actor in (a.other_staff, a.client_login):
        act(actor)
        with pytest.raises(PermissionDenied):
            do_update_visit(stored, actor=actor, report="mine now")
    act(a.owner)
    assert access_visit_by_id(a.owner, a.visit.pk, intent=Intent.SHOW).report == "Walked Miso"


def test_clients_request_visits_for_themselves_only(matrix: TenantMatrix) -> None:
    a = matrix.a
    act(a.client_login)
    visit = do_request_visit(actor=a.client_login, starts_at=later(48), note=" Two walks ")
    assert (visit.client_id, visit.status, visit.staff_id, visit.request_note) == (
        a.client.pk,
        VisitStatus.REQUESTED,
        None,
        "Two walks",
    )
    assert visit.ends_at - visit.starts_at == dt.timedelta(hours=1)
    for kwargs, field in (
        ({"starts_at": later(-1)}, "starts_at"),
        ({"starts_at": later(48), "note": "n" * 2001}, "note"),
    ):
        act(a.client_login)
        with pytest.raises(ValidationError) as caught:
            do_request_visit(actor=a.client_login, **kwargs)
        assert field in caught.value.message_dict
    act(a.owner)
    assert list(list_visits(a.owner, client_id=a.client.pk).filter(status="requested")) == [visit]


def test_a_naive_requested_time_is_a_field_error(matrix: TenantMatrix) -> None:
    act(matrix.a.client_login)
    with pytest.raises(ValidationError) as caught:
        do_request_visit(actor=matrix.a.client_login, starts_at=timezone.make_naive(later(48)))
    assert "starts_at" in caught.value.message_dict


def test_clients_see_the_services_of_their_business(matrix: TenantMatrix) -> None:
    act(matrix.a.client_login)
    assert access_service_by_id(matrix.a.client_login, matrix.a.service.pk) == matrix.a.service


def test_list_visits_filters_by_time(matrix: TenantMatrix) -> None:
    a = matrix.a
    act(a.owner)
    assert list(list_visits(a.owner, start=later(0), end=later(24))) == [a.visit]
    assert list(list_visits(a.owner, start=later(4), end=later(24))) == []
    assert list(list_visits(a.owner, start=later(-24), end=later(1))) == []
