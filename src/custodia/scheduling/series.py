"""Repeating visits: a series made from one rule, then changed from one visit on or ended.

A series is the visits made together by `do_create_series`: they share a `series_id` and keep
the rule in words and as an RFC 5545 RRULE (`series_rule`), computed by python-dateutil's
`rrule` in the server's time zone, so a walk at 08:00 stays at 08:00 across a change of daylight
saving time. Every visit is an ordinary visit (its own staff, report, status, audit events):
editing one visit changes only it; `do_change_following` changes it and the ones after it (or
every one not yet done) the same way; `do_end_series` deletes the ones still to come after a
visit. Each goes through the same checks and audit events as a single visit's action.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from dateutil import rrule
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from custodia.clients.models import Client
from custodia.core.actor import Actor, ensure_in_business, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.permissions import Permission
from custodia.scheduling.actions import (
    _check_in_range,
    _check_staff,
    _check_times,
    do_create_visit,
    do_delete_visit,
    do_update_visit,
)
from custodia.scheduling.models import Service, Visit, VisitStatus
from custodia.tenancy.models import Membership

# At most this many visits from one rule (a daily visit for half a year and more).
MAX_OCCURRENCES = 200
# How far ahead a rule may reach.
MAX_SPAN = dt.timedelta(days=731)
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# Visits a series change or end leaves alone: what happened stays as it was.
DONE = (VisitStatus.COMPLETED, VisitStatus.CANCELLED)


class Frequency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


class Scope(StrEnum):
    FOLLOWING = "following"  # this visit and the ones after it
    ALL = "all"  # every visit of the series not yet done


@dataclass(frozen=True)
class Repeat:
    """How a visit repeats: every `interval` days or weeks (weekly: on `weekdays`, 0 = Monday,
    else the first visit's weekday), until a date (inclusive) or `count` visits, skipping
    `skip` dates."""

    frequency: Frequency
    interval: int = 1
    weekdays: tuple[int, ...] = ()
    until: dt.date | None = None
    count: int | None = None
    skip: tuple[dt.date, ...] = ()

    def rule(self, first: dt.datetime) -> rrule.rrule:
        """The rule of the local wall-clock times of the visits, starting at `first`."""
        frequency: Literal[3, 2] = (
            rrule.DAILY if self.frequency == Frequency.DAILY else rrule.WEEKLY
        )
        weekdays = None
        if self.frequency == Frequency.WEEKLY:
            weekdays = [rrule.weekdays[day] for day in sorted(set(self.weekdays))] or None
        until = None
        if self.until is not None:
            until = dt.datetime.combine(self.until, dt.time(23, 59, 59))
        return rrule.rrule(
            frequency,
            dtstart=first,
            interval=self.interval,
            byweekday=weekdays,
            until=until,
            count=self.count,
        )

    def words(self) -> str:
        """ "Every 2 weeks on Mon, Wed until 2031-05-30" """
        unit = "day" if self.frequency == Frequency.DAILY else "week"
        words = f"Every {unit}" if self.interval == 1 else f"Every {self.interval} {unit}s"
        if self.frequency == Frequency.WEEKLY and self.weekdays:
            words += " on " + ", ".join(WEEKDAY_NAMES[day] for day in sorted(set(self.weekdays)))
        if self.until is not None:
            words += f" until {self.until.isoformat()}"
        elif self.count is not None:
            words += f", {self.count} times"
        if self.skip:
            words += ", except " + ", ".join(day.isoformat() for day in sorted(self.skip))
        return words


def _check_repeat(repeat: Repeat, first: dt.date) -> None:
    errors = {}
    if not 1 <= repeat.interval <= 52:
        errors["interval"] = "Repeat every 1 to 52 days or weeks."
    if any(day not in range(7) for day in repeat.weekdays):
        errors["weekdays"] = "Choose days of the week."
    if (repeat.until is None) == (repeat.count is None):
        errors["until"] = "Give an end date or a number of visits (one of the two)."
    elif repeat.count is not None and not 1 <= repeat.count <= MAX_OCCURRENCES:
        errors["count"] = f"A series has 1 to {MAX_OCCURRENCES} visits."
    elif repeat.until is not None and not first <= repeat.until <= first + MAX_SPAN:
        errors["until"] = "End the series after its first visit and within two years."
    if errors:
        raise ValidationError(errors)


def occurrences(repeat: Repeat, starts_at: dt.datetime) -> list[dt.datetime]:
    """The start of every visit of the series (aware), skipped dates left out; a rule that
    gives more than MAX_OCCURRENCES is refused rather than cut."""
    zone = timezone.get_current_timezone()
    first = timezone.localtime(starts_at, zone).replace(tzinfo=None)
    _check_repeat(repeat, first.date())
    starts = []
    for index, moment in enumerate(repeat.rule(first)):
        if index >= MAX_OCCURRENCES:
            raise ValidationError(
                {"until": f"This rule makes more than {MAX_OCCURRENCES} visits: end it sooner."}
            )
        if moment.date() not in repeat.skip:
            starts.append(timezone.make_aware(moment, zone))
    if not starts:
        raise ValidationError({"until": "This rule makes no visit."})
    return starts


def do_create_series(
    *,
    actor: Actor,
    client: Client,
    starts_at: dt.datetime,
    repeat: Repeat,
    ends_at: dt.datetime | None = None,
    staff: Membership | None = None,
    service: Service | None = None,
) -> list[Visit]:
    """A manager schedules a repeating visit: every visit of the rule at once, all or none."""
    require_active(actor)
    actor.require(Permission.VISITS_WRITE)
    ensure_in_business(actor, client, service)
    _check_in_range(starts_at=starts_at, ends_at=ends_at)
    if ends_at is None:
        if service is None:
            raise ValidationError({"ends_at": "Give an end time or choose a service."})
        ends_at = starts_at + dt.timedelta(minutes=service.duration_minutes)
    _check_times(starts_at, ends_at)
    _check_staff(actor, client, staff)
    starts = occurrences(repeat, starts_at)
    _check_in_range(starts_at=starts[-1])
    length = ends_at - starts_at
    series_id = uuid.uuid4()
    rule = f"{repeat.words()} | {str(repeat.rule(starts_at.replace(tzinfo=None))).splitlines()[-1]}"
    with transaction.atomic():
        visits = [
            do_create_visit(
                actor=actor,
                client=client,
                starts_at=start,
                ends_at=start + length,
                staff=staff,
                service=service,
            )
            for start in starts
        ]
        Visit.objects.filter(tenant_id=actor.tenant_id, pk__in=[v.pk for v in visits]).update(
            series_id=series_id, series_rule=rule[:300]
        )
        for visit in visits:
            visit.series_id, visit.series_rule = series_id, rule[:300]
    return visits


def series_of(visit: Visit, *, scope: Scope) -> Iterable[Visit]:
    """The visits of `visit`'s series that a change with `scope` reaches, in time order."""
    if visit.series_id is None:
        raise ValidationError("This visit is not part of a series.")
    visits = Visit.objects.filter(tenant_id=visit.tenant_id, series_id=visit.series_id).exclude(
        status__in=DONE
    )
    if scope == Scope.FOLLOWING:
        visits = visits.filter(starts_at__gte=visit.starts_at)
    return visits.select_related("client").order_by("starts_at", "id")


def do_change_following(
    visit: Visit,
    *,
    actor: Actor,
    scope: Scope,
    start_time: dt.time | None = None,
    minutes: int | None = None,
    staff: Membership | None = None,
    service: Service | None = None,
    change_staff: bool = False,
    change_service: bool = False,
) -> int:
    """Change the series from `visit` on (or every visit not yet done): a new time of day and
    length, who goes, the service. Each visit is changed by the single visit's action (checks
    and audit events); completed and cancelled visits stay as they were. How many changed."""
    require_active(actor)
    actor.require(Permission.VISITS_WRITE)
    ensure_in_business(actor, visit, service)
    if minutes is not None and not 5 <= minutes <= 24 * 60:
        raise ValidationError({"minutes": "A visit lasts 5 minutes to 24 hours."})
    changed = 0
    with transaction.atomic():
        for each in series_of(visit, scope=scope):
            changes: dict[str, object] = {}
            start = timezone.localtime(each.starts_at)
            if start_time is not None:
                start = timezone.make_aware(dt.datetime.combine(start.date(), start_time))
                changes["starts_at"] = start
            if start_time is not None or minutes is not None:
                length = dt.timedelta(minutes=minutes) if minutes else each.ends_at - each.starts_at
                changes["ends_at"] = start + length
            if change_staff:
                changes["staff"] = staff
            if change_service:
                changes["service"] = service
            if changes:
                do_update_visit(each, actor=actor, **changes)
                changed += 1
    return changed


def do_end_series(visit: Visit, *, actor: Actor) -> int:
    """End a series after `visit`: the visits still to come after it are deleted (completed and
    cancelled ones stay). How many went."""
    require_active(actor)
    actor.require(Permission.VISITS_WRITE)
    ensure_in_business(actor, visit)
    with transaction.atomic():
        later = [v for v in series_of(visit, scope=Scope.FOLLOWING) if v.pk != visit.pk]
        for each in later:
            do_delete_visit(each, actor=actor)
        record(
            AuditAction.VISIT_UPDATE,
            actor=actor,
            target=visit,
            detail={"series": "ended", "deleted": len(later)},
        )
    return len(later)
