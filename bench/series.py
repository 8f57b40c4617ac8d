"""Scenario 21: expanding 1,000 repeating series (scheduling/series.py, docs/visits.md).

Measured: `scheduling.series.occurrences` for 1,000 rules, as `do_create_series` expands each
before it writes anything, in the target business's time zone: every one a weekly rule on
Monday, Wednesday and Friday for six months (78 visits each, 78,000 starts in all), each
starting on a different day and hour, so no two rules are the same.

Baseline, in the same process: 1,000 single visits listed through the access layer
(`scheduling.access.read_visit_lines` of `list_visits`, one recorded bulk read, what the calendar
and the visit tables show), seeded beforehand with `COPY` through the admin connection (like
`custodia bench-data`: the tenant on every row, the business's staff and service, sealed request
note and report) three years ahead, where nothing else is, and deleted afterwards. Mirrored
order (expand, list, list, expand), each side's mean, each list in a transaction rolled back.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import sys
import time
import uuid
from typing import Any

from bench.harness import Bench, python_json, say

SERIES = 1_000
VISITS = 1_000
# Each rule: Mon, Wed, Fri for 26 weeks.
WEEKDAYS = (0, 2, 4)
WEEKS = 26
# Target (bench/README.md, scenario 21): 78,000 starts, each a step of dateutil's rrule and a
# make_aware, against 1,000 rows read, formatted and recorded: 13-17 x measured here; <= 30.
TARGET = 30.0
AHEAD = dt.timedelta(days=3 * 365)


def scenario_21(bench: Bench, env: dict[str, str]) -> None:
    say(f"series: expanding {SERIES:,} repeating series vs listing {VISITS:,} single visits")
    record_21(bench, python_json(env, "-m", "bench.series", "measure", timeout=900))


def record_21(bench: Bench, measured: dict[str, Any]) -> None:
    """The figures: the expansion's mean seconds against the list's, and the starts made."""
    name = "21-series"
    bench.results[name] = measured
    expand = statistics.mean(measured["expand_seconds"])
    listed = statistics.mean(measured["list_seconds"])
    bench.record(name, f"expand s ({SERIES:,} series) vs list s", expand, listed, at_most=TARGET)
    expected = SERIES * WEEKS * len(WEEKDAYS)
    bench.record(name, "starts made vs rule visits", measured["starts"], expected, at_least=1)
    bench.record(name, "visits listed vs seeded", measured["listed"], VISITS, at_least=1)


# --- The subprocess side ---------------------------------------------------------------------


def seed(tenant: uuid.UUID, first: dt.datetime) -> list[uuid.UUID]:
    """1,000 scheduled visits of one client of the business from `first` on; their ids."""
    from django.conf import settings

    from custodia.crypto.fields import seal_text
    from custodia.embedded import admin_connection

    table = "scheduling_visit"
    database = settings.DATABASES["default"]["NAME"]
    ids = [uuid.uuid4() for _ in range(VISITS)]
    with admin_connection(settings.ADMIN_DATABASE, database) as conn:
        client = conn.execute(
            "SELECT id FROM clients_client WHERE tenant_id = %s ORDER BY id LIMIT 1", [tenant]
        ).fetchone()
        service = conn.execute(
            "SELECT id FROM scheduling_service WHERE tenant_id = %s ORDER BY name LIMIT 1",
            [tenant],
        ).fetchone()
        staff = conn.execute(
            "SELECT id FROM tenancy_membership WHERE tenant_id = %s AND role = 'staff' ORDER BY id",
            [tenant],
        ).fetchall()
        assert client and service and staff, "the target business has no client or staff"
        columns = (
            "id", "tenant_id", "client_id", "staff_id", "service_id", "starts_at", "ends_at",
            "status", "request_note", "report", "created_at", "updated_at",
        )  # fmt: skip
        now = dt.datetime.now(dt.UTC)
        with conn.transaction(), conn.cursor() as cursor:
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for number, visit in enumerate(ids):
                    starts = first + dt.timedelta(hours=3 * number)
                    copy.write_row(
                        (
                            visit,
                            tenant,
                            client[0],
                            staff[number % len(staff)][0],
                            service[0],
                            starts,
                            starts + dt.timedelta(minutes=45),
                            "scheduled",
                            seal_text(tenant, table, "request_note", visit, ""),
                            seal_text(tenant, table, "report", visit, ""),
                            now,
                            now,
                        )
                    )
        conn.execute(f"ANALYZE {table}")
    return ids


def unseed(ids: list[uuid.UUID]) -> None:
    from django.conf import settings

    from custodia.embedded import admin_connection

    database = settings.DATABASES["default"]["NAME"]
    with admin_connection(settings.ADMIN_DATABASE, database) as conn, conn.transaction():
        conn.execute("DELETE FROM scheduling_visit WHERE id = ANY(%s)", [ids])


def expand(first: dt.datetime) -> int:
    """Every rule's starts, as `do_create_series` computes them; how many in all."""
    from custodia.scheduling.series import Frequency, Repeat, occurrences

    made = 0
    for number in range(SERIES):
        starts_at = first + dt.timedelta(days=number % 7, hours=number % 11)
        repeat = Repeat(
            Frequency.WEEKLY,
            weekdays=WEEKDAYS,
            count=WEEKS * len(WEEKDAYS),
        )
        made += len(occurrences(repeat, starts_at))
    return made


def measure() -> dict[str, Any]:
    from django.db import transaction
    from django.utils import timezone

    from custodia.core.actor import acting_as
    from custodia.ops.management.commands.bench_data import TARGET_OWNER_EMAIL, TARGET_SLUG
    from custodia.scheduling.access import list_visits, read_visit_lines
    from custodia.tenancy.actors import console_actors, find_user
    from custodia.tenancy.zones import zone_for

    with transaction.atomic():
        [owner] = console_actors(find_user(TARGET_OWNER_EMAIL), TARGET_SLUG)
        zone = zone_for(owner.business)
    first = (dt.datetime.now(dt.UTC) + AHEAD).replace(minute=0, second=0, microsecond=0)
    ids = seed(owner.tenant_id, first)
    window = (first, first + dt.timedelta(hours=3 * VISITS))
    result: dict[str, Any] = {
        "series": SERIES,
        "visits": VISITS,
        "expand_seconds": [],
        "list_seconds": [],
    }
    try:
        # Unmeasured: the first list of a fresh process pays for its connection, the plan and
        # the keyring (the first one measured took ten times the next).
        with transaction.atomic():
            [owner] = console_actors(find_user(TARGET_OWNER_EMAIL), TARGET_SLUG)
            with acting_as(owner), timezone.override(zone):
                read_visit_lines(owner, list_visits(owner, start=window[0], end=window[1]))
            transaction.set_rollback(True)
        for side in ("expand", "list", "list", "expand"):
            with transaction.atomic():
                [owner] = console_actors(find_user(TARGET_OWNER_EMAIL), TARGET_SLUG)
                with acting_as(owner), timezone.override(zone):
                    started = time.perf_counter()
                    if side == "expand":
                        result["starts"] = expand(first)
                    else:
                        query = list_visits(owner, start=window[0], end=window[1])
                        [lines] = read_visit_lines(owner, query)
                        result["listed"] = len(lines)
                    elapsed = time.perf_counter() - started
                transaction.set_rollback(True)
            result[f"{side}_seconds"].append(elapsed)
    finally:
        unseed(ids)
    return result


def main(argv: list[str]) -> None:
    """`measure`: one JSON line."""
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    if argv != ["measure"]:
        raise SystemExit("usage: python -m bench.series measure")
    print(json.dumps(measure()))


if __name__ == "__main__":
    main(sys.argv[1:])
