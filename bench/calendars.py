"""Scenario 20: the calendar's month view of a 20-staff business (docs/visits.md, "Calendar").

The target business gets 18 more staff members (20 in all) and, for each of them, five visits a
day over the 48 days around today, about 4,800 visits (written with `COPY` through the admin
connection, like scenario 19: the tenant on every row, the request note and report sealed for
their own row), then `ANALYZE`. Then, through the server and the owner's API token, in mirrored
order (week, month, one staff member's month, the same, month, week; each side's mean):

- the month view's feed, `GET /api/v1/visits/calendar` over 42 days (what FullCalendar asks for
  a month: six weeks), every staff member's visits: about 4,200 events;
- baselines: the week view's feed of the same business (7 days, about 700 events), and the
  month feed of one staff member (`staff=`, about 210 events).

A month answer carries six times the week's events and twenty times one staff member's: the
targets say its time grows no faster than the events it carries (no cost per staff member or per
day on top of the cost per event).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import uuid
from typing import Any
from urllib.parse import urlencode

from bench.harness import Bench, mean_of, python_json, say, server, wrk

STAFF = 20
VISITS_PER_DAY = 5
DAYS_AROUND = 24  # days seeded before and after today
MONTH_DAYS = 42
WEEK_DAYS = 7


def scenario_20(bench: Bench, prod: dict[str, str], env: dict[str, str], bearer: dict[str, str],
                seconds: int) -> None:  # fmt: skip
    say(f"calendar: the month feed of a {STAFF}-staff business vs its week and one staff member")
    seeded = python_json(env, "-m", "bench.calendars", "seed", timeout=1800)
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    month_start = now - dt.timedelta(days=MONTH_DAYS // 2)
    paths = {
        "month": feed(month_start, MONTH_DAYS),
        "week": feed(now, WEEK_DAYS),
        "one staff month": feed(month_start, MONTH_DAYS, staff=seeded["staff"][0]),
    }
    with server(prod) as url:
        for path in paths.values():
            wrk(url, [path], seconds=2, connections=4, headers=bearer)  # unmeasured warm-up
        measured: dict[str, list[dict[str, Any]]] = {side: [] for side in paths}
        order = ("week", "month", "one staff month")
        for side in (*order, *reversed(order)):
            measured[side].append(
                wrk(url, [paths[side]], seconds=seconds, connections=4, headers=bearer)
            )
    runs = {side: mean_of(each) for side, each in measured.items()}
    record_20(bench, runs, seeded)


def feed(start: dt.datetime, days: int, **extra: str) -> str:
    end = start + dt.timedelta(days=days)
    query = {"start": f"{start:%Y-%m-%dT%H:%M:%SZ}", "end": f"{end:%Y-%m-%dT%H:%M:%SZ}", **extra}
    return "/api/v1/visits/calendar?" + urlencode(query)


def record_20(bench: Bench, runs: dict[str, dict[str, Any]], seeded: dict[str, Any]) -> None:
    """The figures: the month's p50 against the week's and one staff member's, each held to the
    ratio of the events they carry."""
    name = "20-calendar"
    bench.results[name] = {"runs": runs, "seeded": seeded}
    month, week, one = runs["month"], runs["week"], runs["one staff month"]
    bench.record(
        name,
        "month p50 ms vs week (6x events)",
        month["p50_ms"],
        week["p50_ms"],
        at_most=MONTH_DAYS / WEEK_DAYS,
    )
    bench.record(
        name,
        f"month p50 ms vs 1 of {STAFF} staff",
        month["p50_ms"],
        one["p50_ms"],
        at_most=STAFF,
    )
    bench.record(name, "month p99 ms vs week", month["p99_ms"], week["p99_ms"])


# --- The subprocess side ---------------------------------------------------------------------


def seed() -> dict[str, Any]:
    """18 more staff members of the target business (20 in all) and their visits; the staff
    members' ids and the visits written."""
    from django.conf import settings
    from django.db import transaction

    from custodia.accounts.models import User
    from custodia.core.actor import acting_as
    from custodia.crypto.fields import seal_text
    from custodia.embedded import admin_connection
    from custodia.ops.management.commands.bench_data import TARGET_OWNER_EMAIL, TARGET_SLUG
    from custodia.tenancy.actors import console_actors, find_user
    from custodia.tenancy.models import Membership

    with transaction.atomic():
        [owner] = console_actors(find_user(TARGET_OWNER_EMAIL), TARGET_SLUG)
        with acting_as(owner):
            have = Membership.objects.filter(tenant_id=owner.tenant_id, role="staff").count()
            for number in range(have, STAFF):
                user = User.objects.create_user(f"bench-staff-{number}@bench.invalid", None)
                Membership.objects.create(tenant_id=owner.tenant_id, user=user, role="staff")
    tenant = owner.tenant_id
    table = "scheduling_visit"
    database = settings.DATABASES["default"]["NAME"]
    written = 0
    with admin_connection(settings.ADMIN_DATABASE, database) as conn:
        staff = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM tenancy_membership WHERE tenant_id = %s AND role = 'staff'"
                " ORDER BY id",
                [tenant],
            ).fetchall()
        ]
        clients = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM clients_client WHERE tenant_id = %s ORDER BY id LIMIT 500",
                [tenant],
            ).fetchall()
        ]
        services = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM scheduling_service WHERE tenant_id = %s ORDER BY name", [tenant]
            ).fetchall()
        ]
        assert len(staff) >= STAFF and clients and services, "the target business is too small"
        today = dt.datetime.now(dt.UTC).replace(hour=8, minute=0, second=0, microsecond=0)
        columns = (
            "id", "tenant_id", "client_id", "staff_id", "service_id", "starts_at", "ends_at",
            "status", "request_note", "report", "created_at", "updated_at",
        )  # fmt: skip
        with conn.transaction(), conn.cursor() as cursor:
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for day in range(-DAYS_AROUND, DAYS_AROUND):
                    for member_number, member in enumerate(staff[:STAFF]):
                        for slot in range(VISITS_PER_DAY):
                            visit = uuid.uuid4()
                            starts = today + dt.timedelta(days=day, hours=2 * slot)
                            copy.write_row(
                                (
                                    visit,
                                    tenant,
                                    clients[(written + member_number) % len(clients)],
                                    member,
                                    services[slot % len(services)],
                                    starts,
                                    starts + dt.timedelta(minutes=45),
                                    "scheduled",
                                    seal_text(tenant, table, "request_note", visit, ""),
                                    seal_text(tenant, table, "report", visit, ""),
                                    starts,
                                    starts,
                                )
                            )
                            written += 1
        conn.execute(f"ANALYZE {table}")
    return {"staff": [str(member) for member in staff[:STAFF]], "visits": written}


def main(argv: list[str]) -> None:
    """`seed`: one JSON line."""
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    if argv != ["seed"]:
        raise SystemExit("usage: python -m bench.calendars seed")
    print(json.dumps(seed()))


if __name__ == "__main__":
    main(sys.argv[1:])
