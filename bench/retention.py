"""Scenario 16: what the daily retention run costs.

1. Bulk rules. The bench database is given ROWS due records of each bulk kind (expired sessions,
   failed sign-in counters past their series, security events past a year), and
   `lifecycle.retention.enforce` removes them; the baseline is plain `DELETE ... WHERE` statements
   of the same predicates on the same population, as the administrator. Mirrored order (custodia,
   plain, plain, custodia), the population rebuilt before each; ratio = custodia s / plain s.
2. The whole policy with nothing due, as it runs every day on the bench database (every
   business's audit chain verified before its purge, the backup store listed): its time against
   `custodia audit verify`'s code over the same chains, which is most of it. Reported.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from typing import Any

from bench.harness import FULL, Bench, python_json, say

BULK_RULES = ("sessions", "login-throttles", "security-events")


def scenario_16(bench: Bench, env: dict[str, str]) -> None:
    rows = 1_000_000 if bench.profile is FULL else 100_000
    say(f"retention: {rows:,} due records of each bulk kind, then the whole daily run")
    measured = python_json(env, "-m", "bench.retention", "measure", str(rows), timeout=3600)
    name = "16-retention"
    bench.results[name] = measured
    bench.record(
        name,
        f"bulk rules s ({3 * rows:,} rows) vs plain DELETE",
        statistics.mean(measured["custodia_seconds"]),
        statistics.mean(measured["plain_seconds"]),
        at_most=1.5,
    )
    bench.record(
        name, "daily run s vs audit verify s", measured["daily_seconds"], measured["verify_seconds"]
    )


# --- The subprocess side ---------------------------------------------------------------------

POPULATE = (
    "INSERT INTO django_session (session_key, session_data, expire_date)"
    " SELECT 'bench-' || i, 'x', now() - interval '1 hour' FROM generate_series(1, %(rows)s) i",
    "INSERT INTO accounts_loginthrottle"
    " (key, failures, lockouts, last_failure_at, generation)"
    " SELECT 'bench-' || i, 3, 0, now() - interval '3 days', 0 FROM generate_series(1, %(rows)s) i",
    "INSERT INTO accounts_securityevent (id, user_id, kind, at, user_agent, device, detail)"
    " SELECT gen_random_uuid(), (SELECT id FROM accounts_user ORDER BY id LIMIT 1), 'login',"
    " now() - interval '400 days', '', '', 'bench' FROM generate_series(1, %(rows)s) i",
)
PLAIN_DELETES = (
    "DELETE FROM django_session WHERE expire_date <= now()",
    "DELETE FROM accounts_loginthrottle WHERE last_failure_at <= now() - interval '1 day'"
    " AND (locked_until IS NULL OR locked_until <= now())",
    "DELETE FROM accounts_securityevent WHERE at <= now() - interval '365 days'",
)
LEFT = (
    "SELECT (SELECT count(*) FROM django_session WHERE session_key LIKE 'bench-%%')"
    " + (SELECT count(*) FROM accounts_loginthrottle WHERE key LIKE 'bench-%%')"
    " + (SELECT count(*) FROM accounts_securityevent WHERE detail = 'bench')"
)


def measure(rows: int) -> dict[str, Any]:
    from django.conf import settings

    from custodia.audit import chain
    from custodia.embedded import admin_connection
    from custodia.lifecycle import backups, retention

    result: dict[str, Any] = {"rows": rows, "custodia_seconds": [], "plain_seconds": []}
    with admin_connection(settings.ADMIN_DATABASE, backups.database_name()) as conn:
        for side in ("custodia", "plain", "plain", "custodia"):
            for statement in POPULATE:
                conn.execute(statement, {"rows": rows})
            conn.execute("ANALYZE django_session, accounts_loginthrottle, accounts_securityevent")
            started = time.perf_counter()
            if side == "custodia":
                outcomes = retention.enforce(only=set(BULK_RULES))
                assert all(o.error is None for o in outcomes), outcomes
            else:
                with conn.transaction():
                    for statement in PLAIN_DELETES:
                        conn.execute(statement)
            result[f"{side}_seconds"].append(time.perf_counter() - started)
            left = conn.execute(LEFT).fetchone()
            assert left is not None and left[0] == 0, f"{side} left {left} bench rows"
    with tempfile.TemporaryDirectory(prefix="custodia-bench-retention-") as scratch:
        settings.BACKUP_DIR = scratch  # the backup rule lists a store: an empty one of its own
        started = time.perf_counter()
        outcomes = retention.enforce()
        result["daily_seconds"] = time.perf_counter() - started
        result["daily_errors"] = [o.error for o in outcomes if o.error]
    started = time.perf_counter()
    for tenant_id in chain.chains():
        chain.verify_chain(tenant_id)
    result["verify_seconds"] = time.perf_counter() - started
    return result


def main(argv: list[str]) -> None:
    """`measure ROWS`: one JSON line."""
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    if len(argv) != 2 or argv[0] != "measure" or not argv[1].isdigit():
        raise SystemExit("usage: python -m bench.retention measure ROWS")
    print(json.dumps(measure(int(argv[1]))))


if __name__ == "__main__":
    main(sys.argv[1:])
