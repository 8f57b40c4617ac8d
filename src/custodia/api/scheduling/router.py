"""API endpoints (django-ninja): thin doors onto access.py and actions.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router
from ninja.errors import HttpError

from custodia.api.auth import actor_of
from custodia.api.inputs import resolve_reference
from custodia.api.pagination import CURSOR_ERROR, CursorParams
from custodia.api.scheduling.schemas import (
    CalendarEventOut,
    CalendarFilters,
    ServiceIn,
    ServiceOut,
    ServicePageOut,
    ServicePatch,
    VisitFilters,
    VisitIn,
    VisitOut,
    VisitPageOut,
    VisitPatch,
    VisitPhotoOut,
)
from custodia.clients.access import access_client_by_id
from custodia.core.actor import Actor
from custodia.core.permissions import Permission, Role
from custodia.scheduling import access, actions
from custodia.scheduling.models import Service, Visit, VisitPhoto
from custodia.tenancy.access import access_member_by_id
from custodia.tenancy.paging import Page
from custodia.tenancy.reads import Intent

services_router = Router(tags=["services"])
visits_router = Router(tags=["visits"])

# --- Services ---------------------------------------------------------------------------------


@services_router.get("", response=ServicePageOut, openapi_extra=CURSOR_ERROR)
def list_services(
    request: HttpRequest, paging: Query[CursorParams], include_inactive: bool = False
) -> Page[Service]:
    """The services the business sells (retired ones too with `include_inactive`, for managers),
    by name, a page at a time (`next_cursor`)."""
    return access.page_of_services(
        actor_of(request),
        include_inactive=include_inactive,
        cursor=paging.cursor,
        size=paging.limit,
    )


@services_router.post("", response={201: ServiceOut})
def create_service(request: HttpRequest, payload: ServiceIn) -> Service:
    """Add a service."""
    return actions.do_create_service(actor=actor_of(request), **payload.model_dump())


@services_router.get("/{service_id}", response=ServiceOut)
def get_service(request: HttpRequest, service_id: str) -> Service:
    """One service."""
    return access.access_service_by_id(actor_of(request), service_id)


@services_router.patch("/{service_id}", response=ServiceOut)
def update_service(request: HttpRequest, service_id: str, payload: ServicePatch) -> Service:
    """Rename, re-price or retire a service."""
    actor = actor_of(request)
    service = access.access_service_by_id(actor, service_id)
    return actions.do_update_service(service, actor=actor, **payload.model_dump(exclude_unset=True))


@services_router.delete("/{service_id}", response={204: None})
def delete_service(request: HttpRequest, service_id: str) -> None:
    """Remove a service; past visits keep their times without it."""
    actor = actor_of(request)
    actions.do_delete_service(access.access_service_by_id(actor, service_id), actor=actor)


# --- Visits -----------------------------------------------------------------------------------


@visits_router.get("", response=VisitPageOut, openapi_extra=CURSOR_ERROR)
def list_visits(
    request: HttpRequest, filters: Query[VisitFilters], paging: Query[CursorParams]
) -> Page[Visit]:
    """Visits you may see (staff: their own; a client: theirs), oldest first, a page at a time
    (`next_cursor`)."""
    return access.page_of_visits(
        actor_of(request), cursor=paging.cursor, size=paging.limit, **filters.model_dump()
    )


RANGE_ERROR = {
    "responses": {
        "400": {
            "description": "`end` is not after `start`, or the range is longer than 62 days.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    }
}


@visits_router.get("/calendar", response=list[CalendarEventOut], openapi_extra=RANGE_ERROR)
def calendar(request: HttpRequest, filters: Query[CalendarFilters]) -> HttpResponse:
    """Visits overlapping [start, end) (at most 62 days) as a calendar draws them, optionally of
    one staff member (`staff`): staff see their own; clients have no calendar (403)."""
    try:
        events = access.read_calendar(
            actor_of(request), start=filters.start, end=filters.end, staff_id=filters.staff
        )
    except ValidationError as exc:
        # A range the feed does not answer is a bad request, like a cursor it did not issue.
        raise HttpError(400, " ".join(exc.messages)) from None
    # A month of a busy business is thousands of events: written here as plain JSON (the
    # schema above documents it), not validated one by one on the way out (bench/, scenario 20).
    body = [
        {
            "id": str(event.pk),
            "title": event.title,
            "start": event.starts_at.isoformat(),
            "end": event.ends_at.isoformat(),
            "status": event.status,
            "staff_id": None if event.staff_id is None else str(event.staff_id),
            "staff": event.staff,
            "service": event.service,
            "color": event.colour,
            "url": event.url,
        }
        for event in events
    ]
    return HttpResponse(
        json.dumps(body, separators=(",", ":")), content_type="application/json; charset=utf-8"
    )


# Body fields that name another object, the key the action takes it under, and its reader.
REFERENCES: tuple[tuple[str, str, Callable[[Actor, object], Any]], ...] = (
    # Naming a client in a visit is not reading their record: the visit's own event says it.
    ("client_id", "client", partial(access_client_by_id, intent=Intent.REFERENCE)),
    ("staff_id", "staff", access_member_by_id),
    ("service_id", "service", access.access_service_by_id),
)


def _references(actor: Actor, fields: dict[str, Any]) -> dict[str, Any]:
    """The objects a visit body names by id, each read through its access function."""
    resolved: dict[str, Any] = {}
    for field, key, lookup in REFERENCES:
        if field in fields:
            named = fields[field]
            # null stays None: "no staff member", "no service".
            resolved[key] = named and resolve_reference(field, lookup, actor, named)
    return resolved


def _refuse_fields(fields: dict[str, Any], names: tuple[str, ...], message: str) -> None:
    errors = {name: message for name in names if fields.get(name) is not None}
    if errors:
        raise ValidationError(errors)


@visits_router.post("", response={201: VisitOut})
def create_visit(request: HttpRequest, payload: VisitIn) -> Visit:
    """Managers schedule a visit; a client's POST is a request that a manager confirms."""
    actor = actor_of(request)
    fields = payload.model_dump(exclude_unset=True)
    if actor.role == Role.CLIENT:
        _refuse_fields(
            fields, ("client_id", "staff_id", "ends_at"), "Leave this out: you request a visit."
        )
        return actions.do_request_visit(
            actor=actor,
            starts_at=payload.starts_at,
            service=_references(actor, fields).get("service"),
            note=payload.note or "",
        )
    # Refuse before resolving ids, so a role that cannot schedule learns nothing from them.
    actor.require(Permission.VISITS_WRITE)
    _refuse_fields(fields, ("note",), "Only a client's request carries a note.")
    if payload.client_id is None:
        raise ValidationError({"client_id": "Choose the client."})
    refs = _references(actor, fields)
    return actions.do_create_visit(
        actor=actor,
        client=refs["client"],
        staff=refs.get("staff"),
        service=refs.get("service"),
        starts_at=payload.starts_at,
        ends_at=payload.ends_at,
    )


@visits_router.get("/{visit_id}", response=VisitOut)
def get_visit(request: HttpRequest, visit_id: str) -> Visit:
    """One visit."""
    return access.access_visit_by_id(actor_of(request), visit_id, intent=Intent.SHOW)


@visits_router.patch("/{visit_id}", response=VisitOut)
def update_visit(request: HttpRequest, visit_id: str, payload: VisitPatch) -> Visit:
    """Reschedule, reassign, change the status, or write the report."""
    actor = actor_of(request)
    visit = access.access_visit_by_id(actor, visit_id, intent=Intent.CHANGE)
    fields = payload.model_dump(exclude_unset=True)
    changes = {k: v for k, v in fields.items() if k not in ("staff_id", "service_id")}
    return actions.do_update_visit(visit, actor=actor, **changes, **_references(actor, fields))


@visits_router.delete("/{visit_id}", response={204: None})
def delete_visit(request: HttpRequest, visit_id: str) -> None:
    """Remove a visit from the calendar."""
    actor = actor_of(request)
    visit = access.access_visit_by_id(actor, visit_id, intent=Intent.CHANGE)
    actions.do_delete_visit(visit, actor=actor)


@visits_router.get("/{visit_id}/photos", response=list[VisitPhotoOut])
def list_visit_photos(request: HttpRequest, visit_id: str) -> list[VisitPhoto]:
    """A visit's photos (descriptions; the visit's read is recorded)."""
    actor = actor_of(request)
    visit = access.access_visit_by_id(actor, visit_id, intent=Intent.SHOW)
    return access.list_visit_photos(actor, visit)


@visits_router.get("/{visit_id}/photos/{photo_id}", response={200: None})
def get_visit_photo(
    request: HttpRequest, visit_id: str, photo_id: str, thumbnail: bool = False
) -> HttpResponse:
    """A visit photo's JPEG bytes (`?thumbnail=true`: the 320-pixel thumbnail); recorded."""
    part = "thumbnail" if thumbnail else "image"
    photo = access.access_visit_photo_by_id(
        actor_of(request), visit_id, photo_id, part=part, intent=Intent.SHOW
    )
    response = HttpResponse(getattr(photo, part), content_type=photo.content_type)
    response["Cache-Control"] = "private, no-store"
    return response
