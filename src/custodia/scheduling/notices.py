"""Emails about visits: what the actions put in the outbox, and each member's choices.

| kind | when | to | may be turned off |
| --- | --- | --- | --- |
| requested | a client requests a visit | owners and managers | yes (`requests`) |
| confirmed | a manager confirms a request | the client | no: it answers a request they made |
| changed | a scheduled visit's time or staff member changes | the client | yes (`changes`) |
| cancelled | a requested or scheduled visit is cancelled | the client | yes (`changes`) |
| reminder | `reminder_hours_before` hours before a visit | the client | yes (`reminders`) |
| report | the visit's report is first written | the client | yes (`reports`) |

An action calls `queue_notice` inside its own transaction: it writes one event row (no recipient:
a client may not read the managers' memberships, and a staff member not the client's login), so
a rolled-back action mails nothing. The worker (scheduling/outbox.py) turns each event into one
row per recipient and sends each row once.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from custodia.core.actor import Actor, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.permissions import Role
from custodia.scheduling.models import Notice, NoticeChoice, NoticeKind, Visit, VisitStatus

# Which choice turns a kind off; a kind absent here is always sent.
CHOICE_OF_KIND = {
    NoticeKind.REQUESTED: "requests",
    NoticeKind.CHANGED: "changes",
    NoticeKind.CANCELLED: "changes",
    NoticeKind.REMINDER: "reminders",
    NoticeKind.REPORT: "reports",
}
# The choices each role has (staff receive no visit emails).
CHOICES_OF_ROLE = {
    Role.CLIENT: ("reminders", "changes", "reports"),
    Role.OWNER: ("requests",),
    Role.MANAGER: ("requests",),
}
# A change of these fields of a scheduled visit is news to the client.
CHANGE_FIELDS = frozenset({"starts_at", "ends_at", "staff"})


def queue_notice(visit: Visit, kind: NoticeKind, *, version: int = 0) -> None:
    """Add the event to the outbox in the caller's transaction; a second time is a no-op."""
    Notice.objects.bulk_create(
        [Notice(tenant_id=visit.tenant_id, visit=visit, kind=kind, version=version)],
        ignore_conflicts=True,
    )


def notice_for_change(
    visit: Visit,
    *,
    changed: list[str],
    previous_status: str,
    previous_report: str,
) -> None:
    """The notice (if any) a saved change of a visit calls for (scheduling/actions.py)."""
    if "status" in changed and visit.status == VisitStatus.CANCELLED:
        if previous_status in (VisitStatus.REQUESTED, VisitStatus.SCHEDULED):
            queue_notice(visit, NoticeKind.CANCELLED)
    elif (
        "status" in changed
        and previous_status == VisitStatus.REQUESTED
        and visit.status == VisitStatus.SCHEDULED
    ):
        queue_notice(visit, NoticeKind.CONFIRMED)
    elif visit.status == VisitStatus.SCHEDULED and CHANGE_FIELDS & set(changed):
        queue_notice(visit, NoticeKind.CHANGED, version=_micros(visit))
    if "report" in changed and visit.report and not previous_report:
        queue_notice(visit, NoticeKind.REPORT)


def _micros(visit: Visit) -> int:
    return int(visit.updated_at.timestamp() * 1_000_000)


# --- Choices -----------------------------------------------------------------------------------


def choices_for_role(role: str) -> tuple[str, ...]:
    """The choices a member of `role` may make; empty for staff."""
    return CHOICES_OF_ROLE.get(Role(role), ())


def read_notice_choices(actor: Actor) -> dict[str, bool]:
    """The acting member's own choices (every one on when never changed); 403 for staff."""
    names = _own_choice_names(actor)
    row = NoticeChoice.objects.filter(membership_id=actor.membership.pk).first()
    return {name: getattr(row, name) if row else True for name in names}


def do_update_notice_choices(*, actor: Actor, **choices: Any) -> dict[str, bool]:
    """Change the acting member's own choices; only theirs, never anyone else's."""
    require_active(actor)
    names = _own_choice_names(actor)
    unknown = set(choices) - set(names)
    if unknown:
        raise PermissionDenied("You cannot choose these emails.")
    values = {name: bool(value) for name, value in choices.items()}
    with transaction.atomic():
        row, _ = NoticeChoice.objects.select_for_update().get_or_create(
            tenant_id=actor.tenant_id, membership_id=actor.membership.pk
        )
        changed = sorted(name for name, value in values.items() if getattr(row, name) != value)
        if changed:
            for name in changed:
                setattr(row, name, values[name])
            row.save(update_fields=[*changed, "updated_at"])
        record(
            AuditAction.NOTICE_CHOICES_UPDATE,
            actor=actor,
            target=row,
            detail={"fields": changed},
        )
    return {name: getattr(row, name) for name in names}


def _own_choice_names(actor: Actor) -> tuple[str, ...]:
    if actor.membership.pk is None:
        raise PermissionDenied("Only a member chooses their emails.")
    names = choices_for_role(actor.role)
    if not names:
        raise PermissionDenied("Your role receives no visit emails.")
    return names
