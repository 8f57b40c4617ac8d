"""Reads of the audit trail: the owner's views and feed, and a client's view of their own record.

Every read filters by the actor's business explicitly; row-level security (audit/migrations/0002)
is the backstop. Ordering is by event id, which the database assigns in insertion order, so one
id is both the page cursor and the SIEM feed's resume point.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL

from custodia.accounts.models import User
from custodia.audit.heads import heads_document
from custodia.audit.models import AuditEvent, Checkpoint
from custodia.core.actor import Actor
from custodia.core.audit import AuditAction, record
from custodia.core.permissions import Permission, Role

EVENTS_PER_PAGE = 50
OWN_RECORD_EVENTS = 100
OWN_READS = (
    AuditAction.CLIENT_READ,
    AuditAction.CLIENT_LIST,
    AuditAction.VISIT_READ,
    AuditAction.VISIT_LIST,
    AuditAction.VISIT_FEED,
    AuditAction.ACCESS_CODES_REVEAL,
    AuditAction.PROFILE_READ,
    AuditAction.HOUSEHOLD_REVEAL,
)
FEED_MAX_LIMIT = 5000
# Ids are drawn when an event is inserted, not when its transaction commits: an event of a
# request still running can appear later with a smaller id than one already served. The feed
# serves only events older than this, so a reader resuming from the last id misses none unless
# a transaction that recorded an event runs longer than this (requests take well under a second).
FEED_SETTLE = dt.timedelta(seconds=30)


@dataclass(frozen=True)
class EventFilters:
    """The owner's filters: a person (user id), a client (id), an action, [since, until)."""

    person: uuid.UUID | None = None
    client: uuid.UUID | None = None
    action: AuditAction | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def used(self) -> list[str]:
        """The names of the filters given (what an export's own event records, never values)."""
        return [name for name, value in vars(self).items() if value is not None]


@dataclass(frozen=True)
class EventPage:
    """One page of events, newest first, with the cursors of the pages on either side."""

    events: list[AuditEvent]
    older: int | None  # `before` for the next older page
    newer: int | None  # `after` for the next newer page


@dataclass(frozen=True)
class EventLine:
    """An event with the words a page shows for it: who did it and what."""

    event: AuditEvent
    person: str
    action_label: str
    by_viewer: bool


def list_events(actor: Actor, filters: EventFilters | None = None) -> QuerySet[AuditEvent]:
    """The business's events matching `filters`, newest first (owners only)."""
    actor.require(Permission.AUDIT_READ)
    filters = filters or EventFilters()
    if filters.since and filters.until and filters.until <= filters.since:
        raise ValidationError({"until": "The end of the date range must be after its start."})
    events = AuditEvent.objects.filter(tenant_id=actor.tenant_id)
    if filters.person is not None:
        events = events.filter(actor_user_id=filters.person)
    if filters.client is not None:
        events = events.filter(
            Q(client_id=filters.client) | Q(subject_ids__contains=[filters.client])
        )
    if filters.action is not None:
        events = events.filter(action=filters.action.value)
    if filters.since is not None:
        events = events.filter(occurred_at__gte=filters.since)
    if filters.until is not None:
        events = events.filter(occurred_at__lt=filters.until)
    return events.order_by("-id")


def read_events_page(
    actor: Actor,
    filters: EventFilters,
    *,
    before: int | None = None,
    after: int | None = None,
    size: int = EVENTS_PER_PAGE,
) -> EventPage:
    """One page of the owner's view (keyset by id: no count of a long trail), itself an event."""
    page = page_of(list_events(actor, filters), before=before, after=after, size=size)
    record(
        AuditAction.AUDIT_READ,
        actor=actor,
        detail={"count": len(page.events), "filters": filters.used()},
    )
    return page


def checkpoint_heads(actor: Actor) -> dict[str, Any]:
    """Every signed checkpoint of the business's chain as the heads file an owner keeps
    (audit/heads.py; owners only), itself an `audit.export` event."""
    actor.require(Permission.AUDIT_READ)
    checkpoints = list(Checkpoint.objects.filter(tenant_id=actor.tenant_id).order_by("id"))
    record(
        AuditAction.AUDIT_EXPORT,
        actor=actor,
        detail={"format": "heads", "count": len(checkpoints)},
    )
    return heads_document(actor.tenant_id, checkpoints)


def page_of(
    events: QuerySet[AuditEvent],
    *,
    before: int | None = None,
    after: int | None = None,
    size: int = EVENTS_PER_PAGE,
) -> EventPage:
    """`size` events older than `before` (or newer than `after`, or the newest), newest first."""
    events = events.order_by()
    if after is not None:
        batch = list(events.filter(id__gt=after).order_by("id")[: size + 1])
        newer = batch[size - 1].id if len(batch) > size else None
        shown = batch[:size][::-1]
        older = shown[-1].id if shown and events.filter(id__lt=shown[-1].id).exists() else None
        return EventPage(shown, older=older, newer=newer)
    rows = events if before is None else events.filter(id__lt=before)
    batch = list(rows.order_by("-id")[: size + 1])
    shown = batch[:size]
    older = shown[-1].id if len(batch) > size else None
    newer = None
    if before is not None and shown and events.filter(id__gt=shown[0].id).exists():
        newer = shown[0].id
    return EventPage(shown, older=older, newer=newer)


def events_about_own_record(actor: Actor) -> QuerySet[AuditEvent]:
    """For a client login: the events that name their own record, newest first."""
    actor.require(Permission.CLIENTS_SELF_READ)
    client_id = actor.membership.client_id
    return AuditEvent.objects.filter(
        Q(client_id=client_id) | Q(subject_ids__contains=[client_id]),
        tenant_id=actor.tenant_id,
    ).order_by("-id")


def recent_access_to_own_record(actor: Actor, limit: int = OWN_RECORD_EVENTS) -> list[EventLine]:
    """The portal's "who accessed your record": the latest events about it, with names.

    The client's own reads are left out: every portal visit is one, and they would crowd out
    everyone else's within a few visits (the API's full list keeps them).
    """
    events = events_about_own_record(actor).exclude(
        actor_user_id=actor.user.pk, action__in=[action.value for action in OWN_READS]
    )
    return describe(actor, events[:limit])


def events_after(actor: Actor, after_id: int, limit: int) -> list[AuditEvent]:
    """The SIEM feed: up to `limit` settled events with ids above `after_id`, in id order."""
    actor.require(Permission.AUDIT_READ)
    if not 1 <= limit <= FEED_MAX_LIMIT:
        raise ValidationError({"limit": f"Give a limit from 1 to {FEED_MAX_LIMIT}."})
    horizon = RawSQL("clock_timestamp() - make_interval(secs => %s)", [FEED_SETTLE.total_seconds()])
    newer = AuditEvent.objects.filter(tenant_id=actor.tenant_id, id__gt=after_id)
    # Only the ids before the first unsettled event: ids and times come from two calls, so a
    # settled event may follow an unsettled one, and serving it would move the reader's
    # resume point past the other for good.
    unsettled = newer.filter(occurred_at__gte=horizon).order_by("id").values_list("id", flat=True)
    first_unsettled = unsettled.first()
    events = newer.filter(occurred_at__lt=horizon)
    if first_unsettled is not None:
        events = events.filter(id__lt=first_unsettled)
    return list(events.order_by("id")[:limit])


def describe(actor: Actor, events: Iterable[AuditEvent]) -> list[EventLine]:
    """Events with the name of who acted and the action's label, for a page."""
    rows = list(events)
    names = _names(actor, {row.actor_user_id for row in rows if row.actor_user_id is not None})
    return [
        EventLine(
            event=row,
            person=_person(actor, row, names),
            action_label=action_label(row.action),
            by_viewer=row.actor_user_id == actor.user.pk,
        )
        for row in rows
    ]


def action_label(action: str) -> str:
    """The label of a stored action (its raw value if the enum no longer has it)."""
    try:
        return AuditAction(action).label
    except ValueError:
        return action


def _names(actor: Actor, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, User]:
    # Users are not tenant data (one login, several businesses): looked up only for the ids of
    # events the actor has already been allowed to read.
    if not user_ids:
        return {}
    return {
        user.pk: user for user in User.objects.filter(pk__in=user_ids).only("full_name", "email")
    }


def _person(actor: Actor, event: AuditEvent, names: dict[uuid.UUID, User]) -> str:
    if event.actor_user_id is None:
        return "Custodia"
    user = names.get(event.actor_user_id)
    if actor.role == Role.CLIENT:
        # A client learns the name of whoever opened their record, but not staff email addresses.
        if user is not None and user.full_name:
            return user.full_name
        return _role_label(event.actor_role)
    return user.display_name if user is not None else str(event.actor_user_id)


def _role_label(role: str) -> str:
    try:
        return Role(role).label
    except ValueError:
        return "Someone"
