"""Scenario 19: an invoice built from 10,000 completed visits (docs/payments-domain.md).

One client of the target business gets 10,000 completed visits, none invoiced and none paid with
a pass credit (written with `COPY` through the admin connection, like `custodia bench-data`: the
tenant on every row, the three services and two staff of the business, the request note and
report sealed for their own row), then `ANALYZE`. Then, in mirrored order (invoice, select,
select, invoice; each side's mean), each in a transaction of its own that is rolled back so the
visits stay invoiceable:

- `payments.actions.invoices.do_create_invoice(client, actor=owner)`: the draft, the query of
  invoiceable visits (completed, on no live invoice, no credit taken), one line per visit (each
  its own savepoint, so a visit invoiced by a racing draft is refused by the partial unique
  constraint), and the audit event naming every visit;
- the baseline, the same visits read through the access layer:
  `scheduling.access.read_visits(owner, list_visits(owner, client_id=...).filter(completed))`,
  the rows with their client, staff and service, recorded as one bulk read.

Both run as the owner at the console (`tenancy.actors.console_actors`), under the same database
context. The lines created must be the 10,000 visits.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import sys
import time
import uuid
from typing import Any

from bench.harness import Bench, StatementCounter, python_json, say

VISITS = 10_000
# Target (bench/README.md, "The card vault and invoices"): an invoice line is written, one at a
# time in its own savepoint, for every row the baseline only reads.
TARGET = 12.0
# A line is a savepoint, its INSERT and the savepoint's release; a fourth statement per line
# would be a query per visit (an N+1).
STATEMENTS_PER_LINE = 3


def scenario_19(bench: Bench, env: dict[str, str]) -> None:
    say(f"invoices: do_create_invoice over {VISITS:,} completed visits vs reading them")
    record_19(bench, python_json(env, "-m", "bench.invoices", "measure", timeout=1800))


def record_19(bench: Bench, measured: dict[str, Any]) -> None:
    """The figures: the action's mean seconds against the select's, the lines against the
    visits, and the statements per line."""
    name = "19-invoice"
    bench.results[name] = measured
    invoice = statistics.mean(measured["invoice_seconds"])
    select = statistics.mean(measured["select_seconds"])
    bench.record(name, f"invoice s vs select s, {VISITS:,} visits", invoice, select, at_most=TARGET)
    bench.record(name, "invoice lines vs completed visits", measured["lines"], VISITS, at_least=1)
    bench.record(
        name,
        "statements per invoice line",
        measured["invoice_statements"],
        measured["lines"],
        at_most=STATEMENTS_PER_LINE + 0.01,
    )


# --- The subprocess side ---------------------------------------------------------------------


def seed(tenant: uuid.UUID) -> uuid.UUID:
    """10,000 completed visits of one client of the business, by its staff; the client."""
    from django.conf import settings

    from custodia.crypto.fields import seal_text
    from custodia.embedded import admin_connection

    table = "scheduling_visit"
    database = settings.DATABASES["default"]["NAME"]
    with admin_connection(settings.ADMIN_DATABASE, database) as conn:
        client = conn.execute(
            "SELECT id FROM clients_client WHERE tenant_id = %s ORDER BY id LIMIT 1", [tenant]
        ).fetchone()
        services = conn.execute(
            "SELECT id FROM scheduling_service WHERE tenant_id = %s ORDER BY name", [tenant]
        ).fetchall()
        staff = conn.execute(
            "SELECT id FROM tenancy_membership WHERE tenant_id = %s AND role = 'staff' ORDER BY id",
            [tenant],
        ).fetchall()
        assert client and services and staff, "the target business has no client or staff"
        now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
        columns = (
            "id", "tenant_id", "client_id", "staff_id", "service_id", "starts_at", "ends_at",
            "status", "request_note", "report", "created_at", "updated_at",
        )  # fmt: skip
        with conn.transaction(), conn.cursor() as cursor:
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for number in range(VISITS):
                    visit = uuid.uuid4()
                    # One every day or so, going back from yesterday: years of visits.
                    starts = now - dt.timedelta(days=1 + number, hours=number % 9)
                    copy.write_row(
                        (
                            visit,
                            tenant,
                            client[0],
                            staff[number % len(staff)][0],
                            services[number % len(services)][0],
                            starts,
                            starts + dt.timedelta(minutes=45),
                            "completed",
                            seal_text(tenant, table, "request_note", visit, ""),
                            seal_text(tenant, table, "report", visit, "Walked, fed, all well."),
                            starts,
                            starts,
                        )
                    )
        conn.execute(f"ANALYZE {table}")
    return uuid.UUID(str(client[0]))


def measure() -> dict[str, Any]:
    from django.db import connection, transaction

    from custodia.clients.models import Client
    from custodia.core.actor import acting_as
    from custodia.ops.management.commands.bench_data import TARGET_OWNER_EMAIL, TARGET_SLUG
    from custodia.payments.actions.invoices import do_create_invoice
    from custodia.payments.models import InvoiceLine
    from custodia.scheduling.access import list_visits, read_visits
    from custodia.scheduling.models import VisitStatus
    from custodia.tenancy.actors import console_actors, find_user

    with transaction.atomic():
        [owner] = console_actors(find_user(TARGET_OWNER_EMAIL), TARGET_SLUG)
    started = time.perf_counter()
    client_id = seed(owner.tenant_id)
    result: dict[str, Any] = {
        "visits": VISITS,
        "seed_seconds": time.perf_counter() - started,
        "invoice_seconds": [],
        "select_seconds": [],
    }
    for side in ("invoice", "select", "select", "invoice"):
        with transaction.atomic():
            [owner] = console_actors(find_user(TARGET_OWNER_EMAIL), TARGET_SLUG)
            with acting_as(owner):
                client = Client.objects.get(pk=client_id)
                started = time.perf_counter()
                if side == "invoice":
                    invoice = do_create_invoice(client, actor=owner)
                    elapsed = time.perf_counter() - started
                    result["lines"] = InvoiceLine.objects.filter(invoice=invoice).count()
                else:
                    query = list_visits(owner, client_id=client.pk)
                    [visits] = read_visits(owner, query.filter(status=VisitStatus.COMPLETED))
                    elapsed = time.perf_counter() - started
                    result["selected"] = len(visits)
            transaction.set_rollback(True)
        result[f"{side}_seconds"].append(elapsed)
    # Unmeasured: the statements each side sends (most of what the action costs per line).
    for side in ("invoice", "select"):
        statements = StatementCounter()
        with transaction.atomic():
            [owner] = console_actors(find_user(TARGET_OWNER_EMAIL), TARGET_SLUG)
            with acting_as(owner):
                client = Client.objects.get(pk=client_id)
                with connection.execute_wrapper(statements):
                    if side == "invoice":
                        do_create_invoice(client, actor=owner)
                    else:
                        query = list_visits(owner, client_id=client.pk)
                        read_visits(owner, query.filter(status=VisitStatus.COMPLETED))
            transaction.set_rollback(True)
        result[f"{side}_statements"] = statements.count
    return result


def main(argv: list[str]) -> None:
    """`measure`: one JSON line."""
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    if argv != ["measure"]:
        raise SystemExit("usage: python -m bench.invoices measure")
    print(json.dumps(measure()))


if __name__ == "__main__":
    main(sys.argv[1:])
