"""API input and output of services and visits."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from ninja import Field, Schema
from pydantic import StrictBool, StrictInt, StrictStr

from custodia.api.inputs import NON_BLANK_TEXT, InputSchema, IsoDateTime, PatchSchema
from custodia.api.pagination import PageOut

Status = Literal["requested", "scheduled", "completed", "cancelled"]


# The bounds the actions enforce, stated in the schema so that clients (and the OpenAPI
# document) know them; a name of spaces only is refused.


class ServiceIn(InputSchema):
    name: StrictStr = Field(min_length=1, max_length=120, pattern=NON_BLANK_TEXT)
    duration_minutes: StrictInt = Field(ge=5, le=1440)
    price_cents: StrictInt = Field(ge=0, le=10_000_000)


class ServicePatch(PatchSchema):
    """Only the fields sent change; `is_active: false` retires a service."""

    name: StrictStr | None = Field(None, min_length=1, max_length=120, pattern=NON_BLANK_TEXT)
    duration_minutes: StrictInt | None = Field(None, ge=5, le=1440)
    price_cents: StrictInt | None = Field(None, ge=0, le=10_000_000)
    is_active: StrictBool | None = None


class ServiceOut(Schema):
    id: uuid.UUID
    name: str
    duration_minutes: int
    price_cents: int
    is_active: bool
    created_at: dt.datetime


class ServicePageOut(PageOut):
    """A page of services."""

    items: list[ServiceOut]


class VisitFilters(Schema):
    """Visits overlapping [start, end), optionally of one client or one staff member."""

    start: IsoDateTime | None = None
    end: IsoDateTime | None = None
    client_id: uuid.UUID | None = None
    staff_id: uuid.UUID | None = None


class CalendarFilters(Schema):
    """Visits overlapping [start, end), at most 62 days, optionally of one staff member."""

    start: IsoDateTime
    end: IsoDateTime
    staff: uuid.UUID | None = None


class CalendarEventOut(Schema):
    """A visit as a calendar draws it (FullCalendar's event fields): times in the business's
    time zone, the client's name as the title, the staff member's colour."""

    id: uuid.UUID
    title: str
    start: dt.datetime
    end: dt.datetime
    status: str
    staff_id: uuid.UUID | None
    staff: str
    service: str
    color: str
    url: str


class VisitIn(InputSchema):
    """Managers schedule: `client_id` and `starts_at`, plus `ends_at` or a service.

    Clients request: `starts_at`, optionally `service_id` and a `note`; a manager confirms it.
    """

    client_id: uuid.UUID | None = None
    staff_id: uuid.UUID | None = None
    service_id: uuid.UUID | None = None
    starts_at: IsoDateTime
    ends_at: IsoDateTime | None = None
    note: StrictStr | None = Field(None, max_length=2000)


class VisitPatch(PatchSchema):
    """Only the fields sent change. Managers change any; staff `status` and `report` of their own.

    `staff_id` or `service_id` null removes the staff member or service from the visit.
    """

    NULLABLE = frozenset({"staff_id", "service_id"})

    starts_at: IsoDateTime | None = None
    ends_at: IsoDateTime | None = None
    staff_id: uuid.UUID | None = None
    service_id: uuid.UUID | None = None
    status: Status | None = None
    report: StrictStr | None = Field(None, max_length=10000)


class VisitOut(Schema):
    id: uuid.UUID
    client_id: uuid.UUID
    staff_id: uuid.UUID | None
    service_id: uuid.UUID | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: str
    request_note: str
    report: str
    checked_in_at: dt.datetime | None
    checked_out_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class VisitPhotoOut(Schema):
    """A visit photo's description; its bytes are GET /visits/{id}/photos/{photo_id}."""

    id: uuid.UUID
    visit_id: uuid.UUID
    content_type: str
    size: int
    width: int
    height: int
    created_at: dt.datetime


class VisitPageOut(PageOut):
    """A page of visits."""

    items: list[VisitOut]
