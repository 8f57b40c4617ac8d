"""Encryption benchmarks: what sealed fields cost a read, and how fast a key rotation runs.

12. Requests/s and p99 of the client list API (a page of 50 clients, four sealed values each)
   on a server with encryption vs the same build with plaintext fields
   (bench/settings_plaintext.py, FIELD_ENCRYPTION = False), each reading a target business of
   the same size written in its own format (`bench-target` and `bench-target-plain`, from
   `custodia bench-data --plaintext-target`); runs interleaved. A sanity check first: a few
   clients fetched through each server, compared with what is stored.
13. Re-encryption during a data-key rotation (`crypto.actions.do_rotate_business_key`) of the
   target business: rows/s alone, against the same values opened and sealed again in memory;
   then a second rotation under client-list load, and the list's p50 during it vs without.

Run as `python -m bench.crypto stored|rotate ...` it is the subprocess side (Django set up,
settings from the environment), printing one JSON line like bench/audit.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from typing import Any

from bench.audit import combined, interleaved
from bench.harness import PYTHON, ROOT, Bench, custodia, python_json, say, server, tls_context, wrk

PLAIN_SLUG = "bench-target-plain"
PLAIN_OWNER_EMAIL = "owner@bench-target-plain.invalid"
# As scenario 9: with 4 connections, all of them sometimes land on one of the two workers.
CONNECTIONS = 8
# Clients fetched through each server for the sanity check.
CHECKED = 5
# The generator's email shape (custodia bench-data): what a correctly opened value looks like.
EMAIL = re.compile(r"^[A-Z][a-z]+\.[A-Z][a-z]+\.\d+@Example\.com$")
# Client rows opened and sealed again in memory for the rotation's baseline.
BASELINE_ROWS = 5_000
# Length of each list-load run during a rotation; runs go on until the rotation ends.
DURING_SECONDS = 2
LIST = ["/api/v1/clients"]


def api_token(env: dict[str, str], email: str, slug: str) -> dict[str, str]:
    """The Authorization header of a new one-day API token of `email` in business `slug`."""
    output = custodia(env, "token", "create", "--email", email, "--business", slug, "--days", "1")
    return {"Authorization": f"Bearer {output.strip().splitlines()[-1]}"}


def get_json(url: str, headers: dict[str, str]) -> Any:
    """GET over TLS with the local CA and `headers`; the JSON answer."""
    request = urllib.request.Request(url, headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, context=tls_context(), timeout=30) as answer:  # noqa: S310
        return json.loads(answer.read())


def read_right(side: str, api: dict[str, str], stored: dict[str, Any]) -> bool:
    """Whether a client's email came through the `side` server as its stored form says.

    On: stored sealed (format 1, not the plaintext), and the email the API gave has the shape
    the generator wrote and the business's keyed blind index made at generation time. Off:
    stored as the plaintext format, byte for byte the email the API gave.
    """
    if stored is None or not EMAIL.match(api["email"]) or not stored["index_matches"]:
        return False
    if side == "on":
        return stored["format"] == 1 and not stored["stored_is_plaintext"]
    return stored["format"] == 0 and stored["stored_is_plaintext"]


# --- Scenario 12: the client list with and without encryption --------------------------------


def scenario_12(
    bench: Bench, prod: dict[str, str], env: dict[str, str], bearer: dict[str, str], seconds: int
) -> None:
    """Client list req/s and p99 with sealed fields vs plaintext ones, same build and load."""
    envs = {"on": prod, "off": {**prod, "DJANGO_SETTINGS_MODULE": "bench.settings_plaintext"}}
    headers = {"on": bearer, "off": api_token(env, PLAIN_OWNER_EMAIL, PLAIN_SLUG)}
    slugs = {"on": "bench-target", "off": PLAIN_SLUG}
    runs: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
    checks: dict[str, Any] = {}
    with server(envs["on"]) as on_url, server(envs["off"]) as off_url:
        urls = {"on": on_url, "off": off_url}
        for side, url in urls.items():
            page = get_json(f"{url}/api/v1/clients?limit={CHECKED}", headers[side])["items"]
            api = {item["id"]: item for item in page}
            stored = python_json(
                envs[side],
                "-m",
                "bench.crypto",
                "stored",
                slugs[side],
                json.dumps({i: item["email"] for i, item in api.items()}),
                timeout=120,
            )
            checks[side] = {
                "clients": len(api),
                "read_right": sum(read_right(side, api[i], stored.get(i)) for i in api),
                "stored": stored,
            }
            # Unmeasured: a fresh server's first seconds would fall on whichever side runs first.
            wrk(url, LIST, seconds=2, connections=CONNECTIONS, headers=headers[side])
        for side in interleaved(2):
            runs[side].append(
                wrk(
                    urls[side],
                    LIST,
                    seconds=seconds,
                    connections=CONNECTIONS,
                    headers=headers[side],
                )
            )
    name = "12-encryption-cost"
    bench.results[name] = {
        "runs": {
            f"list {side} {n}": r
            for side, side_runs in runs.items()
            for n, r in enumerate(side_runs)
        },
        "checks": checks,
    }
    # A server that does not decrypt (on) or does not read plaintext (off) cannot pass.
    bench.record(name, "emails opened right, on", checks["on"]["read_right"], CHECKED, at_least=1)
    bench.record(
        name, "emails plaintext right, off", checks["off"]["read_right"], CHECKED, at_least=1
    )
    on, off = combined(runs["on"]), combined(runs["off"])
    bench.record(name, "list req/s", on["ok_rps"], off["ok_rps"], at_least=0.9)
    bench.record(name, "list p99 ms", on["p99_ms"], off["p99_ms"])


# --- Scenario 13: a key rotation --------------------------------------------------------------


def rotate(env: dict[str, str], tenant: str, *, baseline: bool) -> subprocess.Popen[str]:
    """`python -m bench.crypto rotate TENANT` started in the background."""
    return subprocess.Popen(  # noqa: S603
        [PYTHON, "-m", "bench.crypto", "rotate", tenant, *(["--baseline"] if baseline else [])],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str], timeout: int = 3600) -> dict[str, Any]:
    """The JSON line a rotation printed; its error output if it failed."""
    out, err = process.communicate(timeout=timeout)
    if process.returncode:
        raise RuntimeError(f"the rotation failed:\n{err[-3000:]}")
    return dict(json.loads(out.strip().splitlines()[-1]))


def scenario_13(
    bench: Bench,
    prod: dict[str, str],
    env: dict[str, str],
    bearer: dict[str, str],
    tenant: str,
    seconds: int,
) -> None:
    """Rows/s of a rotation alone; the client list's p50 during a rotation vs without."""
    say("crypto: rotating the target business's data key, no other load")
    quiet_rotation = finished(rotate(env, tenant, baseline=True))
    quiet: list[dict[str, Any]] = []
    during: list[dict[str, Any]] = []
    with server(prod) as url:
        wrk(url, LIST, seconds=2, connections=CONNECTIONS, headers=bearer)  # warm-up
        quiet.append(wrk(url, LIST, seconds=seconds, connections=CONNECTIONS, headers=bearer))
        say("crypto: rotating again under client-list load")
        process = rotate(env, tenant, baseline=False)
        # Short runs back to back until the rotation ends; each says whether it was still on
        # when the run ended (the last one usually outlives it).
        while process.poll() is None:
            stats = wrk(url, LIST, seconds=DURING_SECONDS, connections=CONNECTIONS, headers=bearer)
            during.append({**stats, "rotating_at_end": process.poll() is None})
        loaded_rotation = finished(process)
        quiet.append(wrk(url, LIST, seconds=seconds, connections=CONNECTIONS, headers=bearer))
    name = "13-key-rotation"
    rotating = merged(during)
    bench.results[name] = {
        "rotation": quiet_rotation,
        "rotation_under_load": loaded_rotation,
        "runs": {
            **{f"list quiet {n}": r for n, r in enumerate(quiet)},
            f"list rotating ({len(during)} runs)": rotating,
        },
        # Each short run (a list, so that the chart shows their mean only).
        "rotating_runs": during,
    }
    rate = quiet_rotation["rows"] / quiet_rotation["seconds"]
    # What the same rows cost in AES-GCM alone (open and seal each value, in memory).
    bench.record(name, "rows/s vs crypto alone", rate, quiet_rotation["baseline_rows_per_second"])
    # A rotation that re-encrypted nothing (or skipped rows) must not pass on its rate.
    bench.record(
        name,
        "rows re-encrypted / rows",
        quiet_rotation["rows"],
        quiet_rotation["sealed_rows"],
        at_least=1,
    )
    loaded_rate = loaded_rotation["rows"] / loaded_rotation["seconds"]
    bench.record(name, "rows/s under load vs alone", loaded_rate, rate)
    # Readers are unaffected: every read answered, at about the usual latency.
    bench.record(name, "list p50 ms rotating vs not", rotating["p50_ms"], merged(quiet)["p50_ms"])
    failed = rotating["unexpected"] + rotating["errors"]
    bench.record(name, "failed reads while rotating", failed, rotating["requests"], at_most=0)


def merged(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Several wrk runs as one: mean rates and percentiles, total requests and failures."""
    count = max(1, len(runs))
    means = ("ok_rps", "p50_ms", "p90_ms", "p99_ms")
    totals = ("requests", "unexpected", "errors")
    return {
        **{key: sum(r[key] for r in runs) / count for key in means},
        **{key: sum(r[key] for r in runs) for key in totals},
    }


# --- The subprocess side ---------------------------------------------------------------------


def _target(cursor: Any, slug: str) -> uuid.UUID:
    cursor.execute("SELECT id FROM tenancy_business WHERE slug = %s", [slug])
    row = cursor.fetchone()
    if row is None:
        raise SystemExit(f"no business {slug}")
    return uuid.UUID(str(row[0]))


def stored(slug: str, emails: dict[str, str]) -> dict[str, dict[str, Any]]:
    """How each client's email is stored, compared with the email an API gave for it: its
    format byte, whether it is that email in plaintext, whether its blind index is that email's
    (under the settings of this process: encrypted or the plaintext baseline's)."""
    from django.db import connections, transaction

    from custodia.clients.models import email_key
    from custodia.crypto.keyring import FORMAT_PLAINTEXT, blind_index
    from custodia.crypto.rows import enter_business

    found: dict[str, dict[str, Any]] = {}
    with transaction.atomic(using="owner"), connections["owner"].cursor() as cursor:
        tenant = _target(cursor, slug)
        enter_business(cursor, tenant)
        cursor.execute(
            "SELECT id, email, email_search FROM clients_client WHERE id = ANY(%s)",
            [[uuid.UUID(i) for i in emails]],
        )
        for client, blob, index in cursor.fetchall():
            email, blob = emails[str(client)], bytes(blob)
            found[str(client)] = {
                "format": blob[0],
                "stored_is_plaintext": blob == bytes([FORMAT_PLAINTEXT]) + email.encode(),
                "index_matches": bytes(index or b"")
                == blind_index(tenant, "email", email_key(email)),
            }
    return found


def _sealed_rows(tenant: uuid.UUID) -> int:
    """Rows of the business in every table with sealed values."""
    from django.db import connections, transaction
    from psycopg import sql

    from custodia.crypto.rows import enter_business, sealed_tables

    total = 0
    with transaction.atomic(using="owner"), connections["owner"].cursor() as cursor:
        enter_business(cursor, tenant)
        for table in sealed_tables():
            query = sql.SQL("SELECT count(*) FROM {} WHERE tenant_id = %s").format(
                sql.Identifier(table.table)
            )
            cursor.execute(query.as_string(cursor.connection), [str(tenant)])
            total += int(cursor.fetchone()[0])
    return total


def crypto_alone(tenant: uuid.UUID, rows: int) -> dict[str, float]:
    """Client rows/s of opening and sealing again each sealed value in memory (no database)."""
    from django.db import connections, transaction

    from custodia.crypto.fields import open_text, seal_text
    from custodia.crypto.rows import enter_business

    columns = ("email", "phone", "address", "notes")
    with transaction.atomic(using="owner"), connections["owner"].cursor() as cursor:
        enter_business(cursor, tenant)
        cursor.execute(
            "SELECT id, email, phone, address, notes FROM clients_client WHERE tenant_id = %s"
            " LIMIT %s",
            [str(tenant), rows],
        )
        sample = cursor.fetchall()
    started = time.perf_counter()
    for client, *values in sample:
        for column, blob in zip(columns, values, strict=True):
            text = open_text(tenant, "clients_client", column, client, bytes(blob))
            seal_text(tenant, "clients_client", column, client, text)
    seconds = time.perf_counter() - started
    return {"rows": len(sample), "seconds": seconds, "rows_per_second": len(sample) / seconds}


def rotate_business(tenant: str, *, baseline: bool) -> dict[str, Any]:
    """Rotate the business's data key (re-encrypting every row); what it did and how fast."""
    # The lead's rotation (custodia keys rotate-business); imported here, so that the rest of
    # the benchmarks load without it.
    from custodia.crypto.actions import do_rotate_business_key

    business = uuid.UUID(tenant)
    result: dict[str, Any] = {"sealed_rows": _sealed_rows(business)}
    if baseline:
        alone = crypto_alone(business, BASELINE_ROWS)
        result["baseline"] = alone
        result["baseline_rows_per_second"] = alone["rows_per_second"]
    batches = 0

    def progress(message: str) -> None:
        nonlocal batches
        batches += 1

    rotation = do_rotate_business_key(business, progress=progress)
    result.update(
        {
            "version": rotation.version,
            "rows": rotation.rows,
            "seconds": rotation.seconds,
            "rows_per_second": rotation.rows / rotation.seconds if rotation.seconds else 0.0,
            "batches": batches,
        }
    )
    return result


def main(argv: list[str]) -> None:
    """`stored SLUG JSON` or `rotate TENANT [--baseline]`: one JSON line."""
    command, *args = argv
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    if command == "stored":
        result: Any = stored(args[0], json.loads(args[1]))
    elif command == "rotate":
        result = rotate_business(args[0], baseline="--baseline" in args[1:])
    else:
        raise SystemExit(f"unknown command {command}")
    sys.stdout.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
