"""Closing a business: close -> read-only grace period (reopen possible) -> purge.

- `do_close_business`: an owner, with a fresh step-up and the business's name typed, closes it.
  From then on the database refuses every write to its data (tenancy/migrations/
  0008_closing_guards.py; core/closed.py is how doors say so), while reads keep working, so
  owners can still export. It is purged `CLOSED_BUSINESS_GRACE_DAYS` later.
- `do_reopen_business`: an owner, with a fresh step-up, reopens it before then.
- `do_purge_closed_businesses(now)`: the daily purge (and `custodia closing purge`). One business
  at a time, each in one transaction as the purge's system actor (tenancy/actors.py: an owner's
  reach inside that one business's row-level security, never a bypass, no login, never a
  step-up; its audit rows say `task-closed-business-purge`): every row of the business
  is deleted, its members' sessions for it end, then its data keys are destroyed. What is kept is
  `ClosedBusiness`: its id, dates and counts, no names. Killed at any point, it runs again: the
  deletion is one transaction, and purged businesses whose keys are not yet destroyed are listed
  again until they are.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.http import Http404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from custodia.accounts import adapter as mail
from custodia.accounts.links import public_url
from custodia.accounts.sessions import current_session_key, end_sessions
from custodia.accounts.stepup import require_step_up
from custodia.core import requestctx
from custodia.core.actor import Actor, acting_as, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.dbcontext import fetch_all_with_key, set_db_context
from custodia.core.permissions import Permission, Role
from custodia.crypto.actions import do_destroy_business_keys
from custodia.tenancy.actors import system_actor
from custodia.tenancy.models import Business, ClosedBusiness, Membership
from custodia.tenancy.signals import business_deleting
from custodia.tenancy.zones import zone_for

logger = logging.getLogger(__name__)

PURGE = "closed-business-purge"
WORK_SQL = "SELECT business_id, step FROM custodia_closing_work(%s, %s)"


def grace_period() -> dt.timedelta:
    """How long a closed business stays before its purge (CUSTODIA_CLOSED_BUSINESS_GRACE_DAYS)."""
    return dt.timedelta(days=settings.CLOSED_BUSINESS_GRACE_DAYS)


def _own_business(actor: Actor, business: Business) -> None:
    require_active(actor)
    actor.require(Permission.BUSINESS_CLOSE)
    if business.pk != actor.tenant_id:
        raise Http404("No such business.")
    require_step_up(actor)


def do_close_business(business: Business, *, actor: Actor, confirm_name: str) -> Business:
    """Close the business: read-only from now on, purged after the grace period."""
    _own_business(actor, business)
    if confirm_name.strip() != business.name.strip():
        raise ValidationError(
            {"confirm": "Type the business's name exactly as shown to confirm closing it."}
        )
    now = timezone.now()
    with transaction.atomic():
        locked = Business.objects.select_for_update().get(pk=business.pk)
        if locked.closed_at is not None:
            raise ValidationError("This business is already closed.")
        locked.closed_at = now
        locked.purge_after = now + grace_period()
        locked.save(update_fields=["closed_at", "purge_after"])
        ClosedBusiness.objects.update_or_create(
            business_id=locked.pk,
            defaults={"closed_at": now, "purge_after": locked.purge_after},
        )
        record(
            AuditAction.BUSINESS_CLOSE,
            actor=actor,
            target=locked,
            detail={"purge_after": locked.purge_after.isoformat()},
        )
    business.closed_at, business.purge_after = locked.closed_at, locked.purge_after
    _tell_managers(business, actor=actor, closed=True)
    logger.info("business closed tenant=%s", business.pk)
    return business


def do_reopen_business(business: Business, *, actor: Actor) -> Business:
    """Reopen a closed business before its purge: it takes writes again."""
    _own_business(actor, business)
    with transaction.atomic():
        locked = Business.objects.select_for_update().get(pk=business.pk)
        if locked.closed_at is None:
            raise ValidationError("This business is open.")
        locked.closed_at = None
        locked.purge_after = None
        locked.save(update_fields=["closed_at", "purge_after"])
        ClosedBusiness.objects.filter(business_id=locked.pk).delete()
        record(AuditAction.BUSINESS_REOPEN, actor=actor, target=locked)
    business.closed_at = business.purge_after = None
    _tell_managers(business, actor=actor, closed=False)
    logger.info("business reopened tenant=%s", business.pk)
    return business


def _tell_managers(business: Business, *, actor: Actor, closed: bool) -> None:
    """Every active owner and manager is told by email that the business was closed (with the
    purge date) or reopened, and by whom: one owner cannot close it unnoticed. No customer data."""
    addresses = list(
        Membership.objects.filter(
            tenant_id=business.pk, role__in=[Role.OWNER, Role.MANAGER], is_active=True
        )
        .select_related("user")
        .values_list("user__email", flat=True)
    )
    if not addresses:
        return
    with timezone.override(zone_for(business)):  # its dates in the business's zone
        body = render_to_string(
            "tenancy/email/closing.txt",
            {
                "business": business,
                "closed": closed,
                "by": actor.user,
                "link": public_url(reverse("business_delete")),
            },
        )
    subject = f"{business.name} was {'closed' if closed else 'reopened'}"
    # Once the close (or reopening) commits: a notice of a change rolled back is never sent.
    mail.send_after_commit(
        EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, sorted(addresses))
    )


def delete_business_rows(business: Business, *, actor: Actor) -> None:
    """Delete every row of the business in the current transaction, as `actor` (an owner).

    Its members' sessions acting for it end with it (the request doing it keeps its own); its
    API tokens go first (an owner sees only their own: accounts/0005). A closed business is
    marked `purging` first: the one change its rows accept is then their deletion (tenancy/0008).
    """
    business_id = business.pk
    if Business.objects.filter(pk=business_id, closed_at__isnull=False).exists():
        Business.objects.filter(pk=business_id).update(purging=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT custodia_delete_business_tokens(%s)", [business_id])
    signed_in = Membership.objects.filter(
        tenant_id=business_id, user__usersession__isnull=False
    ).distinct()
    for member in signed_in.select_related("user"):
        end_sessions(member.user, keep=current_session_key(member.user), business_id=business_id)
    # What other processes keep for it (the card vault's cards) goes first, or nothing does.
    business_deleting.send(sender=Business, business_id=business_id)
    Business.objects.filter(pk=business_id).delete()


# --- The purge ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Work:
    """One step of the purge (ids only): a due business to purge, or a purged one's keys."""

    business_id: uuid.UUID
    step: str


def closing_work(now: dt.datetime) -> list[Work]:
    """What the purge has to do at `now`, as the context key's holder may list it."""
    with transaction.atomic():
        return [Work(*row) for row in fetch_all_with_key(WORK_SQL, [now])]


def do_purge_closed_businesses(now: dt.datetime | None = None) -> list[uuid.UUID]:
    """Purge every closed business whose grace period ended by `now`, one at a time; destroy
    the keys of purged ones. Returns the ids of the businesses purged by this run."""
    now = now or timezone.now()
    purged: list[uuid.UUID] = []
    # Audit rows and log lines name the purge where a request's id would stand, however it was
    # started (the retention task, the console).
    with requestctx.running_job(f"task-{PURGE}", PURGE):
        for work in closing_work(now):
            _work_on(work, now, purged)
    return purged


def _work_on(work: Work, now: dt.datetime, purged: list[uuid.UUID]) -> None:
    """One step: purge a due business (then its keys), or destroy a purged one's keys."""
    if work.step == "purge":
        try:
            if not _purge_one(work.business_id, now):
                return
        except ValidationError:
            # A part of it that lives elsewhere could not go (the card vault unreachable): the
            # whole purge rolled back, and the business is listed again on the next run.
            logger.exception("closed business not purged yet tenant=%s", work.business_id)
            return
        purged.append(work.business_id)
    _destroy_keys(work.business_id)


def _purge_one(business_id: uuid.UUID, now: dt.datetime) -> bool:
    """Delete one due business in one transaction, as the purge's system actor (an owner's
    reach inside that one business, no login: tenancy/actors.py); False if it is no longer
    due."""
    actor = system_actor(business_id, task=PURGE)
    with transaction.atomic():
        with acting_as(actor):
            business = Business.objects.select_for_update().filter(pk=business_id).first()
            if business is None or business.purge_after is None or business.purge_after > now:
                return False  # reopened, or purged by another run meanwhile
            counts = _counts(business.pk)
            ClosedBusiness.objects.update_or_create(
                business_id=business.pk,
                defaults={
                    "closed_at": business.closed_at,
                    "purge_after": business.purge_after,
                    "purged_at": now,
                    **counts,
                },
            )
            record(
                AuditAction.BUSINESS_PURGE,
                actor=actor,
                target=business,
                purpose="grace period over: purged by the platform",
                detail=counts,
            )
            delete_business_rows(business, actor=actor)
    logger.info("closed business purged tenant=%s", business_id)
    return True


def _counts(business_id: uuid.UUID) -> dict[str, int]:
    """The anonymous counts a purge keeps (by table, not by model: the apps above tenancy
    are not imported here)."""
    counts = {}
    with connection.cursor() as cursor:
        for name, table in (
            ("clients", "clients_client"),
            ("visits", "scheduling_visit"),
            ("members", "tenancy_membership"),
        ):
            cursor.execute(f"SELECT count(*) FROM {table} WHERE tenant_id = %s", [business_id])  # noqa: S608
            counts[name] = int(cursor.fetchone()[0])
    return counts


def _destroy_keys(business_id: uuid.UUID) -> None:
    """A purged business's data keys, destroyed after its deletion committed; recorded on the
    platform chain. A failure leaves it listed for the next run."""
    try:
        do_destroy_business_keys(business_id, reason="closed business purged", using="default")
        with transaction.atomic():
            set_db_context(tenant_id=business_id)
            ClosedBusiness.objects.filter(business_id=business_id).update(
                keys_destroyed_at=timezone.now()
            )
    except Exception:
        logger.exception("purged business keys not destroyed yet tenant=%s", business_id)
