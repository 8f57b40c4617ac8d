"""Writes to services and visits."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from custodia.clients.models import Assignment, Client
from custodia.core.actor import Actor, ensure_in_business, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.permissions import Permission, Role
from custodia.scheduling.models import NoticeKind, Service, Visit, VisitStatus
from custodia.scheduling.notices import notice_for_change, queue_notice
from custodia.scheduling.signals import visit_cancelled, visit_completed
from custodia.tenancy.models import Membership
from custodia.webhooks.events import emit_event
from custodia.webhooks.models import EventType

MAX_VISIT = dt.timedelta(hours=24)
# Visits happen in [EARLIEST_VISIT, LATEST_VISIT). Far beyond it, `starts_at + duration`
# overflowed Python's datetime (a 500); years 0001 or 9999 were stored as they came.
EARLIEST_VISIT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST_VISIT = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
OUT_OF_RANGE = "Choose a date between 2000-01-01 and 2099-12-31."
STAFF_EDITABLE = frozenset({"status", "report"})
# (from, to) status changes staff may make on their own visits; the same status is no change.
STAFF_STATUS_MOVES = frozenset(
    {(VisitStatus.SCHEDULED, VisitStatus.COMPLETED)} | {(s, s) for s in VisitStatus}
)


def _announce(
    event: EventType, visit: Visit, *, actor: Actor, changed: list[str] | None = None
) -> None:
    """Tell the business's webhook endpoints, in the action's transaction: ids, times and the
    status only, never the request note, the report or anything about the client
    (docs/webhooks.md)."""
    data: dict[str, object] = {
        "id": str(visit.pk),
        "business_id": str(visit.tenant_id),
        "client_id": str(visit.client_id),
        "staff_id": str(visit.staff_id) if visit.staff_id else None,
        "service_id": str(visit.service_id) if visit.service_id else None,
        "starts_at": visit.starts_at.isoformat(),
        "ends_at": visit.ends_at.isoformat(),
        "status": str(visit.status),
    }
    if changed is not None:
        data["changed"] = changed
    emit_event(event, data, actor=actor)


def _check_service(name: str, duration_minutes: int, price_cents: int) -> dict[str, str]:
    errors = {}
    if not name.strip():
        errors["name"] = "A service needs a name."
    elif len(name.strip()) > 120:
        errors["name"] = "At most 120 characters."
    if not 5 <= duration_minutes <= 1440:
        errors["duration_minutes"] = "Between 5 minutes and 24 hours."
    if not 0 <= price_cents <= 10_000_000:
        errors["price_cents"] = "Between 0 and 100,000.00."
    return errors


def do_create_service(
    *, actor: Actor, name: str, duration_minutes: int, price_cents: int
) -> Service:
    """A new service the business sells."""
    require_active(actor)
    actor.require(Permission.SERVICES_WRITE)
    errors = _check_service(name, duration_minutes, price_cents)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        service = Service.objects.create(
            tenant_id=actor.tenant_id,
            name=name.strip(),
            duration_minutes=duration_minutes,
            price_cents=price_cents,
        )
        record(AuditAction.SERVICE_CREATE, actor=actor, target=service)
    return service


def do_update_service(service: Service, *, actor: Actor, **changes: Any) -> Service:
    """Rename, re-price or retire a service."""
    require_active(actor)
    actor.require(Permission.SERVICES_WRITE)
    ensure_in_business(actor, service)
    allowed = {"name", "duration_minutes", "price_cents", "is_active"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({field: "Unknown field." for field in unknown})
    merged = {
        "name": changes.get("name", service.name),
        "duration_minutes": changes.get("duration_minutes", service.duration_minutes),
        "price_cents": changes.get("price_cents", service.price_cents),
    }
    errors = _check_service(**merged)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        changed = []
        for field, value in changes.items():
            value = value.strip() if isinstance(value, str) else value
            if getattr(service, field) != value:
                changed.append(field)
            setattr(service, field, value)
        service.save(update_fields=list(changes))
        record(AuditAction.SERVICE_UPDATE, actor=actor, target=service, detail={"fields": changed})
    return service


def do_delete_service(service: Service, *, actor: Actor) -> None:
    """Remove a service; its past visits keep their times, without the service."""
    require_active(actor)
    actor.require(Permission.SERVICES_WRITE)
    ensure_in_business(actor, service)
    with transaction.atomic():
        record(AuditAction.SERVICE_DELETE, actor=actor, target=service)
        service.delete()


def _check_in_range(**moments: dt.datetime | None) -> None:
    """Each given time lies in the range visits can have; checked before any arithmetic on it."""
    errors = {}
    for field, moment in moments.items():
        if moment is None:
            continue
        if timezone.is_naive(moment):
            errors[field] = "Give times with a time zone."
        elif not EARLIEST_VISIT <= moment < LATEST_VISIT:
            errors[field] = OUT_OF_RANGE
    if errors:
        raise ValidationError(errors)


def _check_times(starts_at: dt.datetime, ends_at: dt.datetime) -> None:
    # The times given were checked by _check_in_range; a stored one is left as it is, so a
    # visit saved before the range existed can still be reported on or cancelled.
    if ends_at <= starts_at:
        raise ValidationError({"ends_at": "A visit must end after it starts."})
    if ends_at - starts_at > MAX_VISIT:
        raise ValidationError({"ends_at": "A visit lasts at most 24 hours."})


def _check_staff(actor: Actor, client: Client, staff: Membership | None) -> None:
    if staff is None:
        return
    if staff.tenant_id != actor.tenant_id or staff.role == Role.CLIENT or not staff.is_active:
        raise ValidationError({"staff": "Choose an active member of this business."})
    assigned = Assignment.objects.filter(
        tenant_id=actor.tenant_id, client_id=client.pk, staff_id=staff.pk
    ).exists()
    if not assigned:
        raise ValidationError(
            {"staff": "Assign this staff member to the client before scheduling a visit."}
        )


def do_create_visit(
    *,
    actor: Actor,
    client: Client,
    starts_at: dt.datetime,
    ends_at: dt.datetime | None = None,
    staff: Membership | None = None,
    service: Service | None = None,
    status: VisitStatus = VisitStatus.SCHEDULED,
) -> Visit:
    """A manager schedules a visit; the end defaults to the service's duration."""
    require_active(actor)
    # No step-up here, nor to move or delete a visit: a visit opens door codes only to its own
    # staff member, never to whoever scheduled it (clients/access.py, home_access_and_hold).
    actor.require(Permission.VISITS_WRITE)
    ensure_in_business(actor, client, service)
    _check_in_range(starts_at=starts_at, ends_at=ends_at)
    if ends_at is None:
        if service is None:
            raise ValidationError({"ends_at": "Give an end time or choose a service."})
        ends_at = starts_at + dt.timedelta(minutes=service.duration_minutes)
    _check_times(starts_at, ends_at)
    _check_staff(actor, client, staff)
    if status not in (VisitStatus.REQUESTED, VisitStatus.SCHEDULED):
        raise ValidationError({"status": "A new visit is requested or scheduled."})
    with transaction.atomic():
        visit = Visit.objects.create(
            tenant_id=actor.tenant_id,
            client=client,
            staff=staff,
            service=service,
            starts_at=starts_at,
            ends_at=ends_at,
            status=status,
        )
        record(AuditAction.VISIT_CREATE, actor=actor, target=visit)
        _announce(EventType.VISIT_CREATED, visit, actor=actor)
    return visit


def do_request_visit(
    *, actor: Actor, starts_at: dt.datetime, service: Service | None = None, note: str = ""
) -> Visit:
    """A client asks for a visit; a manager confirms it by assigning staff."""
    require_active(actor)
    actor.require(Permission.VISITS_REQUEST)
    if actor.membership.client_id is None:
        raise PermissionDenied("Only a client can request a visit.")
    ensure_in_business(actor, service)
    _check_in_range(starts_at=starts_at)
    duration = dt.timedelta(minutes=service.duration_minutes if service else 60)
    _check_times(starts_at, starts_at + duration)
    if starts_at <= timezone.now():
        raise ValidationError({"starts_at": "Choose a time in the future."})
    if len(note) > 2000:
        raise ValidationError({"note": "At most 2000 characters."})
    with transaction.atomic():
        visit = Visit.objects.create(
            tenant_id=actor.tenant_id,
            client_id=actor.membership.client_id,
            service=service,
            starts_at=starts_at,
            ends_at=starts_at + duration,
            status=VisitStatus.REQUESTED,
            request_note=note.strip(),
        )
        record(AuditAction.VISIT_REQUEST, actor=actor, target=visit)
        _announce(EventType.VISIT_CREATED, visit, actor=actor)
        queue_notice(visit, NoticeKind.REQUESTED)
    return visit


def do_update_visit(visit: Visit, *, actor: Actor, **changes: Any) -> Visit:
    """Managers change anything; staff write reports and complete their own scheduled visits."""
    require_active(actor)
    return _change_visit(visit, actor, changes, AuditAction.VISIT_UPDATE)


def _change_visit(
    visit: Visit, actor: Actor, changes: dict[str, Any], action: AuditAction
) -> Visit:
    ensure_in_business(actor, visit, changes.get("service"))
    if actor.can(Permission.VISITS_WRITE):
        allowed = {"starts_at", "ends_at", "staff", "service", "status", "report"}
    elif actor.can(Permission.VISITS_REPORT) and visit.staff_id == actor.membership.pk:
        allowed = set(STAFF_EDITABLE)
    else:
        raise PermissionDenied("You cannot change this visit.")
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({field: "You cannot change this field." for field in sorted(unknown)})
    if "status" in changes:
        try:
            changes["status"] = VisitStatus(changes["status"])
        except ValueError:
            raise ValidationError({"status": "Unknown status."}) from None
        if (
            "starts_at" not in allowed
            and (visit.status, changes["status"]) not in STAFF_STATUS_MOVES
        ):
            raise ValidationError({"status": "You can only mark a scheduled visit completed."})
    if "report" in changes:
        changes["report"] = str(changes["report"] or "").strip()
        if len(changes["report"]) > 10000:
            raise ValidationError({"report": "At most 10000 characters."})
    _check_in_range(starts_at=changes.get("starts_at"), ends_at=changes.get("ends_at"))
    starts_at = changes.get("starts_at", visit.starts_at)
    ends_at = changes.get("ends_at", visit.ends_at)
    _check_times(starts_at, ends_at)
    if "staff" in changes:
        _check_staff(actor, visit.client, changes["staff"])
    with transaction.atomic():
        previous_status, previous_report = visit.status, visit.report
        changed = sorted(
            field for field, value in changes.items() if getattr(visit, field) != value
        )
        for field, value in changes.items():
            setattr(visit, field, value)
        visit.save(update_fields=[*changes, "updated_at"])
        record(action, actor=actor, target=visit, detail={"fields": changed})
        if changed:
            _announce(_change_event(visit, changed), visit, actor=actor, changed=changed)
        if "status" in changed:
            _tell_status_change(visit, actor, previous_status)
        notice_for_change(
            visit, changed=changed, previous_status=previous_status, previous_report=previous_report
        )
    return visit


def _tell_status_change(visit: Visit, actor: Actor, previous_status: str) -> None:
    """The apps above hear of a completion or cancellation inside this transaction."""
    if visit.status == VisitStatus.COMPLETED:
        visit_completed.send(sender=Visit, visit=visit, actor=actor)
    elif visit.status == VisitStatus.CANCELLED:
        visit_cancelled.send(
            sender=Visit, visit=visit, actor=actor, previous_status=VisitStatus(previous_status)
        )


def _change_event(visit: Visit, changed: list[str]) -> EventType:
    if "status" in changed and visit.status == VisitStatus.COMPLETED:
        return EventType.VISIT_COMPLETED
    if "status" in changed and visit.status == VisitStatus.CANCELLED:
        return EventType.VISIT_CANCELLED
    return EventType.VISIT_CHANGED


def do_confirm_visit(visit: Visit, staff: Membership, *, actor: Actor) -> Visit:
    """A manager confirms a client's request: who goes, and it is scheduled."""
    require_active(actor)
    actor.require(Permission.VISITS_WRITE)
    if visit.status != VisitStatus.REQUESTED:
        raise ValidationError("Only a requested visit can be confirmed.")
    changes = {"staff": staff, "status": VisitStatus.SCHEDULED}
    return _change_visit(visit, actor, changes, AuditAction.VISIT_CONFIRM)


def do_delete_visit(visit: Visit, *, actor: Actor) -> None:
    """Remove a visit from the calendar."""
    require_active(actor)
    actor.require(Permission.VISITS_WRITE)
    ensure_in_business(actor, visit)
    with transaction.atomic():
        record(AuditAction.VISIT_DELETE, actor=actor, target=visit)
        _announce(EventType.VISIT_DELETED, visit, actor=actor)
        visit.delete()
