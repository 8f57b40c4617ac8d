"""Reads of services and visits, narrowed to the actor's business and role.

Visits are customer data (who is visited, when, what was reported): the functions that hand them
out record the read themselves (`access_visit_by_id` with `Intent.SHOW`, `page_of_visits`,
`read_visits`, `read_calendar`, and `access_visit_photo_by_id` for each photo or thumbnail
served). `list_visits` is the query they narrow; a page that shows visits gets them from a
reader, never by evaluating it (counting it is fine: a count shows nobody's visit).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import NamedTuple, TypeVar

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from custodia.core.actor import Actor
from custodia.core.audit import AuditAction, note_refusal, record
from custodia.core.permissions import Permission, Role
from custodia.scheduling.models import Service, Visit, VisitPhoto, VisitStatus
from custodia.scheduling.rows import CalendarEvent, VisitLine, calendar_events, visit_lines
from custodia.tenancy.access import list_staff, parse_id
from custodia.tenancy.models import Membership
from custodia.tenancy.paging import Page, keyset_page
from custodia.tenancy.reads import Intent

# A visit as a page shows it: the model, or a line of plain columns (scheduling/rows.py).
V = TypeVar("V", Visit, VisitLine, CalendarEvent)

PER_PAGE = 50
SERVICE_ORDER = ("name", "id")
VISIT_ORDER = ("starts_at", "id")


def list_services(actor: Actor, *, include_inactive: bool = False) -> QuerySet[Service]:
    """The business's services (clients see the active ones to request visits)."""
    actor.require(Permission.SERVICES_READ)
    services = Service.objects.filter(tenant_id=actor.tenant_id)
    if not include_inactive or actor.role == Role.CLIENT:
        services = services.filter(is_active=True)
    return services.order_by(*SERVICE_ORDER)


def page_of_services(
    actor: Actor, *, include_inactive: bool = False, cursor: str | None = None, size: int = PER_PAGE
) -> Page[Service]:
    """A page of the business's services (what it sells: not customer data, not recorded)."""
    return keyset_page(
        list_services(actor, include_inactive=include_inactive),
        keys=SERVICE_ORDER,
        list_name="services",
        cursor=cursor,
        size=size,
    )


def access_service_by_id(actor: Actor, service_id: object) -> Service:
    """One service of the actor's business, or 404."""
    try:
        return list_services(actor, include_inactive=True).get(id=parse_id(service_id))
    except Service.DoesNotExist:
        raise Http404("No such service.") from None


def _visible_visits(actor: Actor) -> QuerySet[Visit]:
    actor.require(Permission.VISITS_READ)
    visits = Visit.objects.filter(tenant_id=actor.tenant_id).select_related(
        "client", "staff__user", "service"
    )
    if actor.role == Role.STAFF:
        return visits.filter(staff_id=actor.membership.pk)
    if actor.role == Role.CLIENT:
        own = actor.membership.client_id
        return visits.none() if own is None else visits.filter(client_id=own)
    return visits


def list_visits(
    actor: Actor,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    client_id: object = None,
    staff_id: object = None,
) -> QuerySet[Visit]:
    """Visits the actor may see, optionally within [start, end) and for one client or staff."""
    visits = _visible_visits(actor)
    if start is not None:
        visits = visits.filter(ends_at__gt=start)
    if end is not None:
        visits = visits.filter(starts_at__lt=end)
    if client_id is not None:
        visits = visits.filter(client_id=parse_id(client_id))
    if staff_id is not None:
        visits = visits.filter(staff_id=parse_id(staff_id))
    return visits.order_by(*VISIT_ORDER)


def page_of_visits(
    actor: Actor,
    *,
    cursor: str | None = None,
    size: int = PER_PAGE,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    client_id: object = None,
    staff_id: object = None,
) -> Page[Visit]:
    """A page of `list_visits`, oldest first, from `cursor` on (tenancy/paging.py): a bulk
    read."""
    page = keyset_page(
        list_visits(actor, start=start, end=end, client_id=client_id, staff_id=staff_id),
        keys=VISIT_ORDER,
        list_name="visits",
        cursor=cursor,
        size=size,
    )
    _record_list(actor, page.items)
    return page


def read_visits(actor: Actor, *queries: QuerySet[Visit]) -> list[list[Visit]]:
    """The visits of each query (narrowed from `list_visits`) about to be shown together on one
    page, fetched and recorded as one bulk read (none when there are none to show; a page of a
    list, even an empty one, is always recorded)."""
    return _recorded(actor, [list(query) for query in queries])


def read_visit_lines(actor: Actor, *queries: QuerySet[Visit]) -> list[list[VisitLine]]:
    """Like `read_visits`, as the lines a list shows (scheduling/rows.py): plain columns, no
    model instances and no encrypted column, for the dashboard, the calendar and visit tables."""
    return _recorded(actor, [visit_lines(query) for query in queries])


# The longest range the calendar's feed answers: a month view shows six weeks, 42 days.
CALENDAR_MAX_DAYS = 62


def read_calendar(
    actor: Actor, *, start: dt.datetime, end: dt.datetime, staff_id: object = None
) -> list[CalendarEvent]:
    """The visits overlapping [start, end) as the calendar draws them (staff: their own), at most
    `CALENDAR_MAX_DAYS` days of them, recorded as one bulk read like a page of the visit list.
    Clients have no calendar: it names and colours the business's staff."""
    actor.require(Permission.STAFF_MEMBER_READ)
    if end <= start:
        raise ValidationError({"end": "The end must come after the start."})
    if end - start > dt.timedelta(days=CALENDAR_MAX_DAYS):
        raise ValidationError({"end": f"Ask for at most {CALENDAR_MAX_DAYS} days at a time."})
    events = calendar_events(list_visits(actor, start=start, end=end, staff_id=staff_id))
    _record_list(actor, events)  # an answer of the feed, even an empty one, like a list's page
    return events


def _recorded(actor: Actor, shown: list[list[V]]) -> list[list[V]]:
    """`shown`, after recording everything in it as one bulk read (nothing when it is empty)."""
    rows = [row for rows in shown for row in rows]
    if rows:
        _record_list(actor, rows)
    return shown


def _record_list(actor: Actor, visits: Iterable[Visit | VisitLine | CalendarEvent]) -> None:
    rows = list(visits)
    record(
        AuditAction.VISIT_LIST,
        actor=actor,
        subject_ids=sorted({row.client_id for row in rows}, key=str),
        detail={"count": len(rows), "ids": [str(row.pk) for row in rows]},
    )


# A calendar feed (scheduling/feed.py) shows a member's visits from this long ago to this far ahead.
FEED_PAST = dt.timedelta(days=30)
FEED_AHEAD = dt.timedelta(days=180)
# What a feed shows of a visit: no encrypted column is read (no note, no report, nothing of the
# client's record but its name, and nothing of their home access).
FEED_COLUMNS = (
    "pk",
    "client_id",
    "client__name",
    "service__name",
    "starts_at",
    "ends_at",
    "status",
    "updated_at",
)


class FeedVisit(NamedTuple):
    """A visit as a calendar feed shows it: when, whom (the client's name), what, its state."""

    pk: uuid.UUID
    client_id: uuid.UUID
    client_name: str
    service: str | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: str
    updated_at: dt.datetime


def read_feed_visits(actor: Actor, *, now: dt.datetime) -> list[FeedVisit]:
    """The visits the actor makes (they are the visit's staff member) from FEED_PAST before
    `now` to FEED_AHEAD after it, cancelled ones left out, oldest first, recorded as one bulk
    read (`visit.feed`, with the count, even when there are none: the fetch itself is a read)."""
    visits = list_visits(actor, start=now - FEED_PAST, end=now + FEED_AHEAD).filter(
        staff_id=actor.membership.pk
    )
    rows = [
        FeedVisit(*row)
        for row in visits.exclude(status=VisitStatus.CANCELLED).values_list(*FEED_COLUMNS)
    ]
    record(
        AuditAction.VISIT_FEED,
        actor=actor,
        subject_ids=sorted({row.client_id for row in rows}, key=str),
        detail={"count": len(rows), "ids": [str(row.pk) for row in rows]},
    )
    return rows


def staff_for_visits(actor: Actor, client_id: uuid.UUID) -> QuerySet[Membership]:
    """Who may be scheduled for a client's visits: active members assigned to the client (the
    rule scheduling/actions.py checks), so a form offers nobody it would then refuse."""
    return list_staff(actor).filter(assignments__client_id=client_id)


def access_visit_by_id(actor: Actor, visit_id: object, *, intent: Intent) -> Visit:
    """One visit the actor may see, or 404. Shown (`Intent.SHOW`), the read is an audit event;
    about to be changed or deleted, it is not (the write records itself). A refusal is noted."""
    key = parse_id(visit_id)
    try:
        visit = _visible_visits(actor).get(id=key)
    except Visit.DoesNotExist:
        note_refusal("visit", key)
        raise Http404("No such visit.") from None
    if intent is Intent.SHOW:
        show_visit(actor, visit)
    return visit


def show_visit(actor: Actor, visit: Visit) -> Visit:
    """A visit read to be changed that a page shows after all (a form sent back with errors):
    recorded as a read."""
    record(AuditAction.VISIT_READ, actor=actor, target=visit)
    return visit


# What a photo list needs; the sealed image and thumbnail are loaded only to be served.
PHOTO_LISTING = ("id", "tenant_id", "visit_id", "content_type", "size", "width", "height")
PHOTO_PARTS = ("image", "thumbnail")


def list_visit_photos(actor: Actor, visit: Visit) -> list[VisitPhoto]:
    """The photos of a visit the actor was given (by `access_visit_by_id`), oldest first, without
    their bytes: showing that a photo exists is part of the visit's read; each image served is
    its own read (`access_visit_photo_by_id`)."""
    return list(
        _visible_photos(actor)
        .filter(visit_id=visit.pk)
        .only(*PHOTO_LISTING, "created_by_id", "created_at")
        .order_by("created_at", "id")
    )


def _visible_photos(actor: Actor) -> QuerySet[VisitPhoto]:
    actor.require(Permission.VISITS_READ)
    photos = VisitPhoto.objects.filter(tenant_id=actor.tenant_id)
    if actor.role == Role.STAFF:
        return photos.filter(visit__staff_id=actor.membership.pk)
    if actor.role == Role.CLIENT:
        own = actor.membership.client_id
        return photos.none() if own is None else photos.filter(visit__client_id=own)
    return photos


def access_visit_photo_by_id(
    actor: Actor, visit_id: object, photo_id: object, *, part: str | None, intent: Intent
) -> VisitPhoto:
    """One photo of a visit the actor may see, or 404. With `part` ("image" or "thumbnail")
    that part's bytes are loaded and, shown, the read is an audit event; about to be deleted
    (`Intent.CHANGE`, no part), no bytes are loaded and nothing is recorded here."""
    visit_key = parse_id(visit_id)
    key = parse_id(photo_id)
    if part is not None and part not in PHOTO_PARTS:
        raise Http404("No such photo.")
    photos = _visible_photos(actor).filter(visit_id=visit_key).select_related("visit")
    fields = [*PHOTO_LISTING, "created_by_id", "created_at"]
    try:
        photo = photos.only(*fields, *([part] if part else []), "visit").get(id=key)
    except VisitPhoto.DoesNotExist:
        note_refusal("visitphoto", key)
        raise Http404("No such photo.") from None
    if intent is Intent.SHOW:
        record(
            AuditAction.VISIT_PHOTO_READ,
            actor=actor,
            target=photo,
            client_id=photo.visit.client_id,
            detail={"visit": str(photo.visit_id), "part": part or ""},
        )
    return photo
