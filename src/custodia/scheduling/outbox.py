"""The worker's side of visit emails: reminders found, events expanded, each message sent once.

`send_notices(now)` (the `notices` periodic task, scheduling/tasks.py) goes through the
businesses one at a time as the `notices` system actor of each (tenancy/actors.py: an owner's
reach inside that one business's row-level security, never a bypass):

1. In one transaction: a reminder event for every scheduled visit that starts within the
   business's `reminder_hours_before`, and one row per recipient for every new event (the
   outbox's unique key makes both no-ops the second time).
2. Each due row in a transaction of its own: locked (`SKIP LOCKED`: a second worker passes
   it by), checked again (the recipient's choices, the visit's state), sent over SMTP while the
   lock is held, then marked sent and recorded (NOTICE_SEND) in the same transaction. A worker
   killed before the SMTP server accepted the message rolls the row back to due, and the next
   run sends it; a row marked sent is never sent again. The only window for a second copy is
   between the server's acceptance and the commit; every copy of one row carries the same
   Message-ID, so mail systems drop it as a duplicate.

No queued job names a business: procrastinate's queue holds the periodic task's tick only, and
the outbox rows live and die with their business (RLS, the foreign keys' cascade).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from custodia.accounts.links import public_url
from custodia.core.actor import acting_as
from custodia.core.audit import AuditAction, record
from custodia.core.permissions import Role
from custodia.scheduling.models import (
    Notice,
    NoticeChoice,
    NoticeKind,
    NoticeStatus,
    Visit,
    VisitStatus,
)
from custodia.scheduling.notices import CHOICE_OF_KIND
from custodia.tenancy.access import business_slugs
from custodia.tenancy.actors import SystemActor, system_actor
from custodia.tenancy.models import Business, Membership
from custodia.tenancy.zones import zone_for

logger = logging.getLogger(__name__)

TASK = "notices"
# At most this many messages per business per run; the rest wait for the next run.
BATCH = 200
MANAGER_ROLES = (Role.OWNER, Role.MANAGER)


@dataclass
class NoticeRun:
    """What one run did, in counts."""

    sent: int = 0
    skipped: int = 0
    failed_businesses: int = 0


def send_notices(
    now: dt.datetime | None = None, *, business_ids: Iterable[uuid.UUID] | None = None
) -> NoticeRun:
    """One pass over every business (or those given): reminders found, events expanded, due
    messages sent. The list of businesses is read on the operator's connection; a business
    whose work fails is logged by id and exception type, and the others go on."""
    now = now or timezone.now()
    run = NoticeRun()
    if business_ids is None:
        business_ids = business_slugs("owner")
    for business_id in sorted(business_ids):
        try:
            send_business_notices(business_id, now, run)
        except Exception as exc:
            run.failed_businesses += 1
            # The type only: an SMTP error may quote the message or its address.
            logger.error("notices failed for business %s: %s", business_id, type(exc).__name__)
    return run


def send_business_notices(business_id: uuid.UUID, now: dt.datetime, run: NoticeRun) -> None:
    """Steps 1 and 2 of the module's docstring, for one business."""
    actor = system_actor(business_id, task=TASK)
    with transaction.atomic(), acting_as(actor):
        business = Business.objects.filter(pk=business_id).first()
        if business is None or business.closed_at is not None:
            return  # gone, or closed: it takes no writes, and its clients expect no visits
        queue_reminders(business, now)
        expand_events()
        due = list(
            Notice.objects.filter(status=NoticeStatus.DUE)
            .order_by("created_at")
            .values_list("pk", flat=True)[:BATCH]
        )
    for notice_id in due:
        with transaction.atomic(), acting_as(actor):
            outcome = _send_one(notice_id, business, now, actor=actor)
        if outcome == NoticeStatus.SENT:
            run.sent += 1
        elif outcome == NoticeStatus.SKIPPED:
            run.skipped += 1


def queue_reminders(business: Business, now: dt.datetime) -> int:
    """A reminder event for each scheduled visit starting within the business's hours."""
    hours = business.reminder_hours_before  # the business's settings; 0: no reminders
    if hours <= 0:
        return 0
    visits = Visit.objects.filter(
        status=VisitStatus.SCHEDULED,
        starts_at__gt=now,
        starts_at__lte=now + dt.timedelta(hours=hours),
    ).only("pk", "tenant_id", "starts_at")
    rows = [
        Notice(
            tenant_id=business.pk,
            visit_id=visit.pk,
            kind=NoticeKind.REMINDER,
            version=_reminder_version(visit),
        )
        for visit in visits
    ]
    Notice.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def _reminder_version(visit: Visit) -> int:
    return int(visit.starts_at.timestamp())


def expand_events() -> int:
    """One due row per recipient of every new event; the events are marked expanded."""
    events = list(
        Notice.objects.select_for_update(skip_locked=True)
        .filter(status=NoticeStatus.NEW, recipient__isnull=True)
        .select_related("visit")
    )
    rows: list[Notice] = []
    for event in events:
        rows.extend(
            Notice(
                tenant_id=event.tenant_id,
                visit_id=event.visit_id,
                kind=event.kind,
                version=event.version,
                recipient_id=recipient_id,
                status=NoticeStatus.DUE,
            )
            for recipient_id in _recipients(event)
        )
    Notice.objects.bulk_create(rows, ignore_conflicts=True)
    Notice.objects.filter(pk__in=[event.pk for event in events]).update(
        status=NoticeStatus.EXPANDED, done_at=timezone.now()
    )
    return len(rows)


def _recipients(event: Notice) -> list[uuid.UUID]:
    members = Membership.objects.filter(is_active=True)
    if event.kind == NoticeKind.REQUESTED:
        members = members.filter(role__in=MANAGER_ROLES)
    else:
        members = members.filter(role=Role.CLIENT, client_id=event.visit.client_id)
    return list(members.order_by("created_at").values_list("pk", flat=True))


def _send_one(
    notice_id: uuid.UUID, business: Business, now: dt.datetime, *, actor: SystemActor
) -> NoticeStatus | None:
    """Send one due row, or skip it; None if another worker holds it or it is done."""
    notice = (
        Notice.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(pk=notice_id, status=NoticeStatus.DUE)
        .select_related("visit", "visit__staff__user", "visit__service", "recipient__user")
        .first()
    )
    if notice is None:
        return None
    recipient = notice.recipient
    if recipient is None or not _still_wanted(notice, now):
        status = NoticeStatus.SKIPPED
    else:
        _message(notice, business).send()
        status = NoticeStatus.SENT
        record(
            AuditAction.NOTICE_SEND,
            actor=actor,
            target=notice.visit,
            detail={
                "notice_id": str(notice.pk),
                "kind": notice.kind,
                "recipient_id": str(recipient.pk),
            },
        )
    notice.status, notice.done_at = status, timezone.now()
    notice.save(update_fields=["status", "done_at"])
    return status


def _still_wanted(notice: Notice, now: dt.datetime) -> bool:
    """Is the message still true and wanted: an active recipient with an address who did not
    turn its kind off, about a visit still in the state it tells of."""
    recipient, visit = notice.recipient, notice.visit
    if recipient is None or not recipient.is_active or not recipient.user.email:
        return False
    choice_name = CHOICE_OF_KIND.get(NoticeKind(notice.kind))
    if choice_name is not None:
        turned_off = NoticeChoice.objects.filter(
            Q(**{choice_name: False}), membership_id=recipient.pk
        ).exists()
        if turned_off:
            return False
    if notice.kind == NoticeKind.REMINDER:
        return (
            visit.status == VisitStatus.SCHEDULED
            and _reminder_version(visit) == notice.version
            and visit.starts_at > now
        )
    if notice.kind == NoticeKind.CHANGED:
        return visit.status == VisitStatus.SCHEDULED
    return True


# --- The message -------------------------------------------------------------------------------

SUBJECTS = {
    NoticeKind.REQUESTED: "{business}: a visit was requested for {when}",
    NoticeKind.CONFIRMED: "{business}: your visit on {when} is confirmed",
    NoticeKind.CHANGED: "{business}: your visit is now on {when}",
    NoticeKind.CANCELLED: "{business}: your visit on {when} was cancelled",
    NoticeKind.REMINDER: "{business}: reminder of your visit on {when}",
    NoticeKind.REPORT: "{business}: the report of your visit on {when} is ready",
}


def _message(notice: Notice, business: Business) -> EmailMultiAlternatives:
    """The email of one row: business, time in its zone, service, staff first name and a link;
    never a door code, access note, request note, report or any other sealed field."""
    context = message_context(notice, business)
    subject = SUBJECTS[NoticeKind(notice.kind)].format(business=business.name, when=context["when"])
    text = render_to_string("scheduling/email/notice.txt", context)
    html = render_to_string("scheduling/email/notice.html", context)
    assert notice.recipient is not None
    message = EmailMultiAlternatives(
        subject.replace("\n", " "),
        text,
        settings.DEFAULT_FROM_EMAIL,
        [notice.recipient.user.email],
        headers={
            "Message-ID": f"<notice.{notice.pk}@{_mail_domain()}>",
            # What kind of notice, for the recipient's mail filters (and the tests).
            "X-Custodia-Notice": str(notice.kind),
        },
    )
    message.attach_alternative(html, "text/html")
    return message


def message_context(notice: Notice, business: Business) -> dict[str, Any]:
    """What the templates may show: nothing sealed is read here."""
    visit, recipient = notice.visit, notice.recipient
    assert recipient is not None
    zone = zone_for(business)
    starts = timezone.localtime(visit.starts_at, zone)
    staff_user = visit.staff.user if visit.staff_id and visit.staff else None
    if notice.kind == NoticeKind.REQUESTED:
        link = public_url(reverse("visit_detail", args=[visit.pk]))
    else:
        link = public_url(reverse("portal"))
    return {
        "kind": str(notice.kind),
        "business_name": business.name,
        "greeting_name": _first_name(recipient.user),
        "when": f"{starts:%A %d %B %Y, %H:%M} ({zone.key})",
        "service": visit.service.name if visit.service_id and visit.service else "",
        "staff_first_name": _first_name(staff_user) if staff_user else "",
        "link": link,
        "choices_link": public_url(reverse("notice_choices")),
        "can_turn_off": NoticeKind(notice.kind) in CHOICE_OF_KIND,
    }


def _first_name(user: Any) -> str:
    words = (getattr(user, "full_name", "") or "").split()
    return words[0] if words else ""


def _mail_domain() -> str:
    return urlsplit(settings.PUBLIC_URL).hostname or "custodia.invalid"
