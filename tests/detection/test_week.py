"""Weeks of synthetic traffic through the rules (detection/rules.py), a round every five minutes.

The audit trail stamps every event with the database's clock, so weeks of history cannot be
written through the audit writer in a test; these tests hand the same rule functions that
evaluate.py runs over the database a generated trail instead, and build the hourly history the
way evaluate.py's query does (per person and UTC hour: events, and records of bulk reads).

Three weeks of ordinary work make the baseline; then an ordinary fourth week raises nothing,
and the attacks replayed on top of it raise exactly their own alert.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
import zoneinfo
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from custodia.core.audit import AuditAction
from custodia.detection.rules import (
    BULK_READS,
    EVENT_LOOKBACK,
    EXPORT_LOOKBACK,
    EXPORTS,
    HOURS_BASELINE,
    Bucket,
    Event,
    Scene,
    evaluate,
)

ZONE = zoneinfo.ZoneInfo("America/New_York")
START = dt.datetime(2026, 9, 7, tzinfo=ZONE)  # a Monday
STEP = dt.timedelta(minutes=5)
OWNER, MANAGER = uuid.UUID(int=1), uuid.UUID(int=2)
STAFF = [uuid.UUID(int=10 + n) for n in range(3)]
CLIENTS = [uuid.UUID(int=100 + n) for n in range(20)]


@dataclass
class Trail:
    """A generated trail: events in id order, as the database would number them."""

    events: list[Event] = field(default_factory=list)

    def add(
        self, at: dt.datetime, user: uuid.UUID, role: str, action: str, *, records: int = 0
    ) -> None:
        self.events.append(
            Event(
                id=len(self.events) + 1,
                at=at.astimezone(dt.UTC),
                user_id=user,
                action=action,
                role=role,
                target_id=str(uuid.uuid4()),
                records=records if action in BULK_READS else 0,
            )
        )

    def sorted(self) -> None:
        self.events.sort(key=lambda e: e.at)
        self.events = [
            Event(**{**vars(e), "id": number}) for number, e in enumerate(self.events, start=1)
        ]


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """Local time on day `day` (0: the first Monday)."""
    date = (START + dt.timedelta(days=day)).date()
    return dt.datetime.combine(date, dt.time(hour, minute), tzinfo=ZONE)


def ordinary_week(trail: Trail, week: int, rng: random.Random) -> None:
    """Staff reading their clients in working hours, the manager's lists, the owner's weekly
    export and a look at the trail, clients in the portal at all hours, the odd stale link."""
    for weekday in range(7):
        day = week * 7 + weekday
        if weekday < 6:
            for staff in STAFF:
                for _ in range(rng.randint(6, 14)):
                    when = at(day, rng.randint(8, 16), rng.randint(0, 59))
                    trail.add(when, staff, "staff", AuditAction.CLIENT_READ)
                    trail.add(when, staff, "staff", AuditAction.VISIT_CHECK_IN)
                when = at(day, 8, rng.randint(0, 30))
                trail.add(when, staff, "staff", AuditAction.VISIT_LIST, records=rng.randint(3, 12))
        if weekday < 5:
            for _ in range(rng.randint(2, 5)):
                when = at(day, rng.randint(9, 17), rng.randint(0, 59))
                trail.add(when, MANAGER, "manager", AuditAction.CLIENT_LIST, records=50)
            trail.add(at(day, 9, 15), MANAGER, "manager", AuditAction.VISIT_CREATE)
            trail.add(at(day, rng.randint(9, 11), 30), OWNER, "owner", AuditAction.AUDIT_READ)
        if weekday == 0:
            for minute in range(0, 30, 5):  # the manager's Monday review: 300 records
                when = at(day, 11, minute)
                trail.add(when, MANAGER, "manager", AuditAction.CLIENT_LIST, records=50)
            trail.add(at(day, 10), OWNER, "owner", AuditAction.EXPORT_START)
            trail.add(at(day, 10, 1), OWNER, "owner", AuditAction.EXPORT_READ, records=400)
            trail.add(at(day, 10, 5), OWNER, "owner", AuditAction.EXPORT_DOWNLOAD)
        for client in rng.sample(CLIENTS, 6):
            when = at(day, rng.randint(6, 23), rng.randint(0, 59))
            trail.add(when, client, "client", AuditAction.VISIT_LIST, records=1)
        if rng.random() < 0.3:
            trail.add(at(day, 14), rng.choice(STAFF), "staff", AuditAction.ACCESS_DENIED)


def buckets(events: list[Event], until: dt.datetime) -> list[Bucket]:
    """What evaluate.py's history query returns: per person and UTC hour before `until`."""
    counts: dict[tuple[uuid.UUID, dt.datetime], list[int]] = defaultdict(lambda: [0, 0])
    for event in events:
        if event.user_id is None or event.at > until or event.at <= until - HOURS_BASELINE:
            continue
        hour = event.at.replace(minute=0, second=0, microsecond=0)
        counts[(event.user_id, hour)][0] += 1
        counts[(event.user_id, hour)][1] += event.records
    return [Bucket(user, hour, n, records) for (user, hour), (n, records) in counts.items()]


def rounds(start: dt.datetime, end: dt.datetime) -> Iterator[dt.datetime]:
    now = start
    while now <= end:
        yield now
        now += STEP


def findings_between(trail: Trail, start: dt.datetime, end: dt.datetime) -> set[tuple[str, str]]:
    """Every (rule, subject) a round every five minutes from `start` to `end` finds."""
    trail.sorted()
    events = trail.events
    found: set[tuple[str, str]] = set()
    history_cache: dict[dt.datetime, list[Bucket]] = {}
    for now in rounds(start.astimezone(dt.UTC), end.astimezone(dt.UTC)):
        window = [
            e
            for e in events
            if now - EXPORT_LOOKBACK < e.at <= now
            and (e.at > now - EVENT_LOOKBACK or e.action in EXPORTS)
        ]
        if not any(e.at > now - EVENT_LOOKBACK for e in window):
            continue
        hour = now.replace(minute=0, second=0, microsecond=0)
        if hour not in history_cache:
            history_cache[hour] = buckets(events, now - EVENT_LOOKBACK)
        scene = Scene(
            now=now,
            events=window,
            history=history_cache[hour],
            time_zone=str(ZONE),
            members=frozenset([OWNER, MANAGER, *STAFF]),
        )
        found |= {(f.rule, f.subject) for f in evaluate(scene, platform=False)}
    return found


def four_weeks(seed: int = 17) -> Trail:
    trail = Trail()
    rng = random.Random(seed)
    for week in range(4):
        ordinary_week(trail, week, rng)
    return trail


def test_an_ordinary_week_after_three_raises_nothing() -> None:
    trail = four_weeks()
    assert findings_between(trail, at(21, 0), at(28, 0)) == set()


def test_ordinary_weeks_with_other_seeds_raise_nothing_either() -> None:
    for seed in (1, 2):
        trail = four_weeks(seed)
        assert findings_between(trail, at(21, 0), at(28, 0)) == set()


def test_a_staff_member_at_three_in_the_morning() -> None:
    trail = four_weeks()
    for minute in (0, 5, 10, 15):
        trail.add(at(23, 3, minute), STAFF[0], "staff", AuditAction.CLIENT_READ)
    assert findings_between(trail, at(21, 0), at(28, 0)) == {
        ("unusual_hours", f"person {STAFF[0]}")
    }


def test_a_client_at_three_in_the_morning_is_their_own_business() -> None:
    trail = four_weeks()
    for minute in (0, 5, 10, 15):
        trail.add(at(23, 3, minute), CLIENTS[0], "client", AuditAction.VISIT_LIST, records=1)
    assert findings_between(trail, at(21, 0), at(28, 0)) == set()


def test_bulk_reads_are_judged_against_the_persons_own_busiest_hour() -> None:
    """The manager's busiest hour is the Monday review (300 records): 700 records in an hour
    stays under five times it; 2000 does not."""
    trail = four_weeks()
    for minute in range(0, 56, 4):  # 14 pages of 50 = 700
        trail.add(at(22, 11, minute), MANAGER, "manager", AuditAction.CLIENT_LIST, records=50)
    assert findings_between(trail, at(21, 0), at(28, 0)) == set()
    trail = four_weeks()
    for minute in range(40):  # 40 pages of 50 = 2000 in an hour
        trail.add(at(24, 14, minute), MANAGER, "manager", AuditAction.CLIENT_LIST, records=50)
    assert findings_between(trail, at(21, 0), at(28, 0)) == {("bulk_reads", f"person {MANAGER}")}


def test_the_owner_exporting_three_times_in_a_day() -> None:
    """The weekly export is ordinary; three in a Thursday are not."""
    trail = four_weeks()
    for hour in (10, 11, 12):
        trail.add(at(24, hour), OWNER, "owner", AuditAction.AUDIT_EXPORT)
    assert findings_between(trail, at(21, 0), at(28, 0)) == {("exports", f"person {OWNER}")}
