"""The weekly security digest: each active owner of a business gets, once a week, the chain heads
of the week's signed checkpoints (a JSON file to keep, `audit/heads.py`) and a count of the
week's events by kind (no customer data, no names).

`send_weekly_digest` runs for one business inside its context (the job worker's periodic task
`audit-digest`, ops/tasks.py, as the system actor). A row of `DigestSent` per owner and week
is written in the same transaction as the mail is sent, so a digest goes out once per owner and
week however often the task runs, its worker restarts included; a mail that fails rolls the
row back and the next run sends it. A worker killed between a business's mails and its commit
sends them again (at least once, never lost).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import smtplib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from custodia.accounts.links import public_url
from custodia.audit.heads import heads_document
from custodia.audit.models import AuditEvent, Checkpoint, DigestSent
from custodia.core.actor import Actor
from custodia.core.audit import AuditAction, record
from custodia.core.permissions import Permission, Role
from custodia.tenancy.models import Membership
from custodia.tenancy.zones import zone_for

logger = logging.getLogger(__name__)


def digest_week(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The last whole week (Monday 00:00 to Monday 00:00, UTC) before `now`."""
    today = now.astimezone(dt.UTC).date()
    end_day = today - dt.timedelta(days=today.weekday())
    end = dt.datetime.combine(end_day, dt.time(), tzinfo=dt.UTC)
    return end - dt.timedelta(days=7), end


@dataclass(frozen=True)
class Digests:
    """Mails sent, and mails that failed (sent on a later run)."""

    sent: int
    failed: int


def send_weekly_digest(actor: Actor, *, now: dt.datetime | None = None) -> Digests:
    """Mail the last week's digest to every active owner of the actor's business who has not
    had it yet. The actor has an owner's reach (the system actor)."""
    actor.require(Permission.AUDIT_READ)
    start, end = digest_week(now or timezone.now())
    owners = list(
        Membership.objects.filter(
            tenant_id=actor.tenant_id, role=Role.OWNER, is_active=True, user__is_active=True
        )
        .select_related("user")
        .order_by("user__email")
    )
    if not owners:
        return Digests(0, 0)
    checkpoints = list(
        Checkpoint.objects.filter(
            tenant_id=actor.tenant_id, made_at__gte=start, made_at__lt=end
        ).order_by("id")
    )
    counts = list(
        AuditEvent.objects.filter(
            tenant_id=actor.tenant_id, occurred_at__gte=start, occurred_at__lt=end
        )
        .values_list("action")
        .annotate(count=Count("id"))
        .order_by("action")
    )
    business = actor.business
    attachment = json.dumps(heads_document(actor.tenant_id, checkpoints), indent=2)
    filename = f"audit-heads-{business.slug}-{start:%Y-%m-%d}.json"
    already = set(
        DigestSent.objects.filter(tenant_id=actor.tenant_id, week=start.date()).values_list(
            "user_id", flat=True
        )
    )
    sent = failed = 0
    for owner in owners:
        if owner.user_id in already:
            continue
        message = _message(business, owner.user.email, start, end, counts, checkpoints)
        message.attach(filename, attachment, "application/json")
        try:
            # The claim and the mail together: a mail that fails takes its claim back.
            with transaction.atomic():
                DigestSent.objects.create(
                    tenant_id=actor.tenant_id, user_id=owner.user_id, week=start.date()
                )
                message.send()
        except IntegrityError:
            continue  # another worker sent it meanwhile
        except (OSError, smtplib.SMTPException) as exc:
            failed += 1
            logger.warning("weekly digest not sent: %s", type(exc).__name__)
            continue
        sent += 1
    if sent:
        record(
            AuditAction.AUDIT_EXPORT,
            actor=actor,
            detail={
                "format": "heads",
                "via": "weekly digest",
                "week": start.date().isoformat(),
                "owners": sent,
                "checkpoints": len(checkpoints),
            },
        )
    return Digests(sent, failed)


def _message(
    business: Any,
    address: str,
    start: dt.datetime,
    end: dt.datetime,
    counts: list[tuple[str, int]],
    checkpoints: list[Checkpoint],
) -> EmailMessage:
    with timezone.override(zone_for(business)):
        body = render_to_string(
            "audit/email/digest.txt",
            {
                "business": business,
                "start": start,
                "end": end - dt.timedelta(seconds=1),
                "counts": counts,
                "total": sum(count for _action, count in counts),
                "checkpoints": checkpoints,
                "audit_url": public_url(reverse("audit_list")),
            },
        )
    return EmailMessage(
        f"Weekly security digest for {business.name}",
        body,
        settings.DEFAULT_FROM_EMAIL,
        [address],
    )
