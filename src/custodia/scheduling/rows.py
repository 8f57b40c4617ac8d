"""Visits as the pages list them: read as plain columns, formatted once, written as HTML here.

A busy week is hundreds of visits. Building a Visit with its Client, Membership, User and Service
for each one cost three times the query itself and loaded every encrypted column with them; a
template's work per value (context lookups, filters, escaping through lazy wrappers) cost more
than the rest of the page (bench/, scenario 6). So a `VisitLine` holds what a list shows and what
its audit event names (`pk`, `client_id`), and the lines of the calendar and of the visit tables
are made below, every value escaped with `html.escape` (what Django's escaping does, without its
per-call overhead).
"""

from __future__ import annotations

import datetime as dt
import uuid
from html import escape
from typing import NamedTuple

from django.db.models import F, FloatField, Func, QuerySet
from django.urls import reverse
from django.utils import dateformat, timezone
from django.utils.safestring import SafeString, mark_safe

from custodia.scheduling.models import Visit, VisitStatus

COLUMNS = (
    "pk",
    "client_id",
    "status",
    "client__name",
    "staff__user__full_name",
    "staff__user__email",
    "service__name",
)


def epoch(field: str) -> Func:
    """A timestamp as seconds since 1970 (a float8, which the driver reads in C: a timestamptz
    goes through Django's time-zone loader in Python, half the cost of reading a visit)."""
    return Func(
        F(field), template="EXTRACT(EPOCH FROM %(expressions)s)::float8", output_field=FloatField()
    )


STATUS_LABELS = {
    str(value): str(label) for value, label in Visit._meta.get_field("status").flatchoices
}


class VisitLine(NamedTuple):
    """One visit of a list. Times are in the current time zone; `staff` is the staff member's
    display name and `service` the service's name, "" when there is none."""

    pk: uuid.UUID
    client_id: uuid.UUID
    url: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    day: str
    status: str
    status_label: str
    client: str
    staff: str
    service: str

    @property
    def when(self) -> str:
        """'Mon 1 Dec 2025, 09:00–10:00'."""
        return f"{self.day}, {self.starts_at:%H:%M}–{self.ends_at:%H:%M}"


def visit_lines(visits: QuerySet[Visit]) -> list[VisitLine]:
    """The visits of `visits` (filtered, ordered, possibly sliced), one line each."""
    zone = timezone.get_current_timezone()
    detail_url = reverse("visit_detail", args=["-"]).removesuffix("-/")  # one reverse for all
    days: dict[dt.date, str] = {}  # a day's name, formatted once
    lines = []
    rows = visits.values_list(*COLUMNS, epoch("starts_at"), epoch("ends_at"))
    for pk, client_id, status, client, full_name, email, service, starts_at, ends_at in rows:
        starts = dt.datetime.fromtimestamp(starts_at, zone)
        ends = dt.datetime.fromtimestamp(ends_at, zone)
        date = starts.date()
        if date not in days:
            days[date] = dateformat.format(starts, "D j M Y")
        lines.append(
            VisitLine(
                pk=pk,
                client_id=client_id,
                url=f"{detail_url}{pk}/",
                starts_at=starts,
                ends_at=ends,
                day=days[date],
                status=status,
                status_label=STATUS_LABELS.get(status, status),
                client=client,
                # User.display_name: the full name, else the email.
                staff=full_name or email or "",
                service=service or "",
            )
        )
    return lines


# --- As HTML ------------------------------------------------------------------------------------

CALENDAR_ENTRY = (
    '<li class="visit status-{}"><a href="{}"><span class="time">{}</span> '
    '<span class="client">{}</span> <span class="staff">{}</span>{}</a></li>'
)
CALENDAR_STATUS = ' <span class="status">{}</span>'


def calendar_entries(lines: list[VisitLine]) -> SafeString:
    """A day's visits in the week calendar, as the items of its list."""
    entries = []
    for line in lines:
        label = ""
        if line.status != VisitStatus.SCHEDULED:
            label = CALENDAR_STATUS.format(escape(line.status_label))
        entries.append(
            CALENDAR_ENTRY.format(
                escape(line.status),
                escape(line.url),
                escape(f"{line.starts_at:%H:%M}–{line.ends_at:%H:%M}"),
                escape(line.client),
                escape(line.staff or "Unassigned"),
                label,
            )
        )
    return mark_safe("".join(entries))  # noqa: S308 (every value escaped above)


TABLE_ROW = (
    '<tr><td data-label="When"><a href="{}">{}</a></td>{}{}'
    '<td data-label="Service">{}</td><td data-label="Status">{}</td></tr>'
)
TABLE_STATUS = '<span class="status status-{}">{}</span>'
NOBODY = '<span class="muted">Nobody yet</span>'


def table_rows(lines: list[VisitLine], *, show_client: bool, show_staff: bool) -> SafeString:
    """The rows of a visit table (includes/visit_table.html): when, client and staff if asked
    for, service, status."""
    rows = []
    for line in lines:
        client = f'<td data-label="Client">{escape(line.client)}</td>' if show_client else ""
        staff = (
            f'<td data-label="Staff">{escape(line.staff) if line.staff else NOBODY}</td>'
            if show_staff
            else ""
        )
        rows.append(
            TABLE_ROW.format(
                escape(line.url),
                escape(line.when),
                client,
                staff,
                escape(line.service or "—"),
                TABLE_STATUS.format(escape(line.status), escape(line.status_label)),
            )
        )
    return mark_safe("".join(rows))  # noqa: S308 (every value escaped above)


# --- As the calendar's feed ---------------------------------------------------------------------

# A stable colour per staff member: white text on each has a contrast of at least 4.5:1 (WCAG AA,
# tests/scheduling/test_calendar.py checks), and neighbours in the list differ in hue.
STAFF_COLOURS = (
    "#1f4e79",  # navy
    "#8b2a1e",  # brick
    "#2d6a31",  # green
    "#5b2a86",  # purple
    "#8a4500",  # rust
    "#00616f",  # teal
    "#9b2257",  # magenta
    "#3d4f5c",  # slate
    "#665200",  # olive
    "#2f3fa0",  # indigo
    "#7a3b5e",  # plum
    "#0b5e4a",  # pine
)
UNASSIGNED_COLOUR = "#595959"


def staff_colour(staff_id: uuid.UUID | None) -> str:
    """The colour a staff member's visits have in the calendar (the same on every page and
    day: derived from their membership's id), grey for a visit nobody is assigned to."""
    if staff_id is None:
        return UNASSIGNED_COLOUR
    return STAFF_COLOURS[staff_id.int % len(STAFF_COLOURS)]


class CalendarEvent(NamedTuple):
    """One visit as the calendar draws it (an event of FullCalendar): times in the current time
    zone, the client's name as its title (never their record: no door code, no notes)."""

    pk: uuid.UUID
    client_id: uuid.UUID
    staff_id: uuid.UUID | None
    title: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: str
    staff: str
    service: str
    colour: str
    url: str


CALENDAR_COLUMNS = (
    "pk",
    "client_id",
    "staff_id",
    "status",
    "client__name",
    "staff__user__full_name",
    "staff__user__email",
    "service__name",
)


def calendar_events(visits: QuerySet[Visit]) -> list[CalendarEvent]:
    """The visits of `visits` (filtered and ordered), one calendar event each."""
    zone = timezone.get_current_timezone()
    detail_url = reverse("visit_detail", args=["-"]).removesuffix("-/")
    rows = visits.values_list(*CALENDAR_COLUMNS, epoch("starts_at"), epoch("ends_at"))
    return [
        CalendarEvent(
            pk=pk,
            client_id=client_id,
            staff_id=staff_id,
            title=client,
            starts_at=dt.datetime.fromtimestamp(starts_at, zone),
            ends_at=dt.datetime.fromtimestamp(ends_at, zone),
            status=status,
            staff=full_name or email or "",
            service=service or "",
            colour=staff_colour(staff_id),
            url=f"{detail_url}{pk}/",
        )
        for (
            pk, client_id, staff_id, status, client, full_name, email, service, starts_at, ends_at
        ) in rows
    ]  # fmt: skip
