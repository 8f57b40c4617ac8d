"""A member's visits as an iCalendar feed (RFC 5545), made with the `icalendar` library.

What an event holds, and nothing more (docs/visits.md, "Calendar feed"): the service and the
client's first name as its title, its start and end in the business's time zone (with that
zone's VTIMEZONE), its status, and a link to the visit's page (which asks for a sign-in). Never
an address, a door or alarm code, access instructions, a request note or a report: a calendar
app keeps what it is given in someone else's cloud, on every device of the member's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from django.urls import reverse
from icalendar import Calendar, Event

from custodia.accounts.links import public_url
from custodia.scheduling.access import FeedVisit
from custodia.scheduling.models import VisitStatus

PRODUCT_ID = "-//Custodia//Visits//EN"
# How often a calendar app should fetch the feed again (a hint; apps choose for themselves).
REFRESH = dt.timedelta(hours=1)
STATUSES = {
    VisitStatus.REQUESTED: "TENTATIVE",
    VisitStatus.SCHEDULED: "CONFIRMED",
    VisitStatus.COMPLETED: "CONFIRMED",
}


def first_name(name: str) -> str:
    """The first word of a client's name ("Ada" of "Ada Lovelace"); "Client" when it has none."""
    words = name.split()
    return words[0] if words else "Client"


def title_of(visit: FeedVisit) -> str:
    """ "Dog walk: Ada" (a visit without a service: "Visit: Ada")."""
    return f"{visit.service or 'Visit'}: {first_name(visit.client_name)}"


def calendar_of(
    visits: Iterable[FeedVisit], *, calendar_name: str, zone: ZoneInfo, now: dt.datetime
) -> bytes:
    """The feed's body: one VEVENT per visit, times in `zone`."""
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", calendar_name)
    calendar.add("x-wr-timezone", zone.key)
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", REFRESH)
    stamp = now.astimezone(dt.UTC)
    for visit in visits:
        event = Event()
        event.add("uid", f"visit-{visit.pk}@custodia")
        event.add("dtstamp", stamp)
        event.add("last-modified", visit.updated_at.astimezone(dt.UTC))
        event.add("dtstart", visit.starts_at.astimezone(zone))
        event.add("dtend", visit.ends_at.astimezone(zone))
        event.add("summary", title_of(visit))
        event.add("status", STATUSES.get(VisitStatus(visit.status), "CONFIRMED"))
        event.add("url", public_url(reverse("visit_detail", args=[visit.pk])))
        calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()
