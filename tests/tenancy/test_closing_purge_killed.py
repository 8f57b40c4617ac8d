"""The purge, run as the operator's command in a process of its own against committed data:
killed with SIGKILL in the middle of a business's deletion, it leaves that business whole (the
deletion is one transaction), and run again it finishes: nothing of the business is left in any
table (searched as a superuser, no row-level security in the way) but the anonymous record and
the id-only audit trail, and its keys are gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import transaction

from custodia.crypto import keystore
from custodia.embedded import admin_connection
from custodia.tenancy.closing import do_close_business
from custodia.tenancy.models import Business
from tests import scratch
from tests.acting import act
from tests.factories import build_business
from tests.tenancy.test_closing import KEPT_AFTER_PURGE


@pytest.fixture(scope="module")
def scratch_database(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database of this module's own, where tests commit, and a keystore for it."""
    keys = tmp_path_factory.mktemp("purge-keys")
    with scratch.database("purge", django_db_blocker, keystore=keys) as name:
        yield name


def superuser(name: str) -> psycopg.Connection[Any]:
    return admin_connection(settings.ADMIN_DATABASE, name)


def rows_naming(database: str, business_id: Any) -> dict[str, int]:
    """Every column of every table that could hold an id, searched for the business's."""
    found = {}
    with superuser(database) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public' AND data_type IN ('uuid', 'text',"
            " 'character varying', 'jsonb', 'ARRAY', 'bytea')"
        ).fetchall()
        for table, column, kind in columns:
            if kind == "uuid":
                condition, value = f'"{column}" = %s::uuid', str(business_id)
            elif kind == "ARRAY":
                condition, value = f'%s = ANY("{column}"::text[])', str(business_id)
            elif kind == "bytea":
                condition, value = f'position(%s::bytea in "{column}") > 0', str(business_id)
            else:
                condition, value = f'"{column}"::text LIKE %s', f"%{business_id}%"
            row = conn.execute(
                f'SELECT count(*) FROM "{table}" WHERE {condition}',  # noqa: S608
                [value],
            ).fetchone()
            if row and row[0]:
                found[f"{table}.{column}"] = row[0]
    return found


def wait_for(condition: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def purge_command(database: str, *args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "custodia"), "closing", *args]


def test_a_purge_killed_mid_deletion_runs_again_and_finishes(
    scratch_database: str, django_db_blocker: Any
) -> None:
    database = scratch_database
    with django_db_blocker.unblock():
        with transaction.atomic():
            doomed = build_business("Doomed")
            kept = build_business("Kept")
        with transaction.atomic():
            act(doomed.owner)
            business = Business.objects.get(pk=doomed.owner.tenant_id)
            do_close_business(business, actor=doomed.owner, confirm_name=business.name)
    with superuser(database) as conn:
        # Its grace period is over (set as the superuser: the app's roles may not move it).
        conn.execute(
            "UPDATE tenancy_business SET purge_after = now() - interval '1 minute',"
            " closed_at = now() - interval '31 days' WHERE id = %s",
            [business.pk],
        )
    before = rows_naming(database, business.pk)
    assert before.get("clients_client.tenant_id") == 2
    env = {
        **os.environ,
        "CUSTODIA_DB_NAME": database,
        "CUSTODIA_KEYSTORE_DIR": str(settings.KEYSTORE_DIR),
    }

    # A lock on the session list holds the purge inside its transaction, after it wrote the
    # record of counts, its audit event and deleted the API tokens, before the rows go.
    with superuser(database) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE usersessions_usersession IN ACCESS EXCLUSIVE MODE")
        run = subprocess.Popen(  # noqa: S603  (fixed arguments)
            purge_command(database, "purge"),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            with superuser(database) as observer:
                wait_for(
                    lambda: (
                        observer.execute(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                            " AND datname = %s AND pid <> pg_backend_pid()",
                            [database],
                        ).fetchone()[0]
                        > 0
                    )
                )
            run.send_signal(signal.SIGKILL)
            run.wait(timeout=30)
        finally:
            blocker.execute("ROLLBACK")
    assert run.returncode == -signal.SIGKILL
    # The killed run changed nothing: the business is whole, its keys are there.
    assert rows_naming(database, business.pk) == before
    assert keystore.path_for(business.pk).exists()

    done = subprocess.run(  # noqa: S603  (fixed arguments)
        purge_command(database, "purge"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"purged {business.pk}" in done.stdout
    left = rows_naming(database, business.pk)
    assert {name.split(".")[0] for name in left} <= KEPT_AFTER_PURGE, left
    assert not keystore.path_for(business.pk).exists()
    with superuser(database) as conn:
        record = conn.execute(
            "SELECT clients, visits, members, purged_at IS NOT NULL, keys_destroyed_at IS NOT NULL"
            " FROM tenancy_closedbusiness WHERE business_id = %s",
            [business.pk],
        ).fetchone()
        assert record == (2, 1, 5, True, True)
        # The other business is whole.
        assert conn.execute(
            "SELECT count(*) FROM clients_client WHERE tenant_id = %s", [kept.owner.tenant_id]
        ).fetchone() == (2,)
    assert keystore.path_for(kept.owner.tenant_id).exists()

    # And a third run has nothing left to do.
    again = subprocess.run(  # noqa: S603  (fixed arguments)
        purge_command(database, "purge"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0 and "0 closed business(es) purged." in again.stdout
