"""Scenario 14: what an encrypted, signed backup costs over a plain `pg_dump`, and a restore.

The bench database (the 10,000-business dataset in FULL) is dumped four times in mirrored order
(backup, plain, plain, backup): `custodia backup run`'s code (pg_dump in custom format through
age encryption, row counts in the same snapshot, fsync, a signed manifest) against `pg_dump` of
the same options writing its file directly. Throughput is the database's size over the time
taken, so the ratio is plain seconds / backup seconds (target >= 0.9). The restore of the last
backup into a new database (decrypt, pg_restore in one transaction, row counts checked) is
reported against its backup's time, without a target.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import Bench, python_json, say


def scenario_14(bench: Bench, env: dict[str, str]) -> None:
    say("backups: backup vs plain pg_dump, mirrored, then a restore")
    measured = python_json(env, "-m", "bench.backups", "measure", timeout=3600)
    name = "14-backups"
    bench.results[name] = measured
    size = measured["database_bytes"]
    backup = statistics.mean(measured["backup_seconds"])
    plain = statistics.mean(measured["plain_seconds"])
    bench.record(
        name, "backup MB/s vs plain pg_dump", size / backup / 1e6, size / plain / 1e6, at_least=0.9
    )
    bench.record(name, "restore s vs backup s", measured["restore_seconds"], backup)


# --- The subprocess side ---------------------------------------------------------------------


def _plain_dump(directory: Path) -> float:
    from custodia.lifecycle.backups import _program, database_name

    command, env = _program(
        "pg_dump", database_name(), "--format=custom", "--no-unlogged-table-data",
        "--file", str(directory / "plain.dump"),
    )  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True)  # noqa: S603 (fixed arguments)
    elapsed = time.perf_counter() - started
    (directory / "plain.dump").unlink()
    return elapsed


def measure() -> dict[str, Any]:
    import pyrage
    from django.conf import settings

    from custodia.embedded import admin_connection
    from custodia.lifecycle import backups

    identity = pyrage.x25519.Identity.generate()
    settings.BACKUP_RECIPIENTS = [str(identity.to_public())]
    with admin_connection(settings.ADMIN_DATABASE, backups.database_name()) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    result: dict[str, Any] = {"database_bytes": row[0] if row else 0}
    result["backup_seconds"], result["plain_seconds"] = [], []
    with tempfile.TemporaryDirectory(prefix="custodia-bench-backups-") as scratch:
        directory = Path(scratch)
        store = backups.BackupStore(directory / "store")
        last = None
        for side in ("backup", "plain", "plain", "backup"):
            if side == "plain":
                result["plain_seconds"].append(_plain_dump(directory))
                continue
            started = time.perf_counter()
            last = backups.run_backup(store)
            result["backup_seconds"].append(time.perf_counter() - started)
            result["backup_bytes"] = last.manifest["dump"]["size"]
        assert last is not None
        into = f"{backups.database_name()}_bench_restore"
        backups.drop_database(into)
        started = time.perf_counter()
        backups.restore_backup(last, [identity], into)
        result["restore_seconds"] = time.perf_counter() - started
        backups.drop_database(into)
    return result


def main(argv: list[str]) -> None:
    """`measure`: one JSON line."""
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    if argv != ["measure"]:
        raise SystemExit("usage: python -m bench.backups measure")
    print(json.dumps(measure()))


if __name__ == "__main__":
    main(sys.argv[1:])
