"""API input and output of the audit trail; the same event shape serves the file exports."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from ninja import Field, Schema

from custodia.api.inputs import IsoDateTime
from custodia.audit.access import EVENTS_PER_PAGE, FEED_MAX_LIMIT, EventFilters, EventLine
from custodia.audit.models import AuditEvent
from custodia.core.audit import AuditAction

MAX_PAGE_SIZE = 500


class AuditEventOut(Schema):
    """One event. `lane`, `seq` and `hash` let a reader check the chain (docs/audit.md)."""

    id: int
    occurred_at: dt.datetime
    actor_user_id: uuid.UUID | None
    actor_role: str
    action: str
    outcome: str
    target_type: str
    target_id: str
    client_id: uuid.UUID | None
    subject_ids: list[uuid.UUID] | None
    ip: str | None
    user_agent: str
    request_id: str
    purpose: str
    detail: dict[str, Any]
    lane: int
    seq: int
    hash: str

    @staticmethod
    def resolve_hash(event: AuditEvent) -> str:
        return bytes(event.hash).hex()


class OwnRecordEventOut(Schema):
    """What a client sees of an event about their record: when, by whom (a name, or the role),
    what, and the outcome; never the staff's address, browser or the other records of a list."""

    id: int
    occurred_at: dt.datetime
    person: str
    actor_role: str
    action: str
    action_label: str
    outcome: str
    by_you: bool

    @staticmethod
    def from_line(line: EventLine) -> OwnRecordEventOut:
        """The client's view of one described event."""
        event = line.event
        return OwnRecordEventOut(
            id=event.id,
            occurred_at=event.occurred_at,
            person=line.person,
            actor_role=event.actor_role,
            action=event.action,
            action_label=line.action_label,
            outcome=event.outcome,
            by_you=line.by_viewer,
        )


class OwnRecordEventPage(Schema):
    """Newest first; pass `next_before` as `before` for the next older page (null: no more)."""

    items: list[OwnRecordEventOut]
    next_before: int | None


class AuditEventPage(Schema):
    """Newest first; pass `next_before` as `before` for the next older page (null: no more)."""

    items: list[AuditEventOut]
    next_before: int | None


class AuditFilters(Schema):
    """Events of one person (user id), about one client (id), of one action, in [since, until)."""

    person: uuid.UUID | None = None
    client: uuid.UUID | None = None
    action: AuditAction | None = None
    since: IsoDateTime | None = None
    until: IsoDateTime | None = None

    def to_filters(self) -> EventFilters:
        """The access layer's filters."""
        return EventFilters(**self.model_dump())


class PageParams(Schema):
    """A keyset page: events with ids below `before` (the newest without it)."""

    before: int | None = Field(None, ge=1)
    limit: int = Field(EVENTS_PER_PAGE, ge=1, le=MAX_PAGE_SIZE)


class FeedParams(Schema):
    """Events with ids above `after`, oldest first; `after` is the last id already received."""

    after: int = Field(0, ge=0)
    limit: int = Field(1000, ge=1, le=FEED_MAX_LIMIT)
