"""A migrated database of a test module's (or package's) own, for tests that need committed data:
real workers, several connections, dumps. Every connection points at it meanwhile. And two
helpers for races on it: work on another connection, and waiting until it waits for a lock."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.db import connections

from custodia import embedded
from custodia.crypto import keyring
from custodia.ops.management.commands.setup import (
    drop_database,
    point_connections_at,
    prepare_database,
)

T = TypeVar("T")


@contextmanager
def database(suffix: str, django_db_blocker: Any, *, keystore: Path | None = None) -> Iterator[str]:
    """The test database's name plus `_suffix`, created fresh and migrated; afterwards dropped,
    and the connections pointed back at the test database. With `keystore`, the businesses made
    meanwhile keep their data keys in that directory."""
    original = dict(settings.DATABASES["default"])
    original_keystore = settings.KEYSTORE_DIR
    name = f"{original['NAME']}_{suffix}"
    with django_db_blocker.unblock():
        try:
            if keystore is not None:
                settings.KEYSTORE_DIR = keystore
                keyring.reset()
            prepare_database(name, fresh=True)
            yield name
        finally:
            connections.close_all()
            drop_database(name)
            point_connections_at(original["NAME"], original["HOST"])
            if keystore is not None:
                settings.KEYSTORE_DIR = original_keystore
                keyring.reset()


def elsewhere(pool: ThreadPoolExecutor, work: Callable[[], T]) -> Future[T]:
    """`work` on another thread, hence on a database connection of its own."""

    def run() -> T:
        try:
            return work()
        finally:
            connections.close_all()

    return pool.submit(run)


def wait_until_blocked(database: str, other: Future[Any]) -> None:
    """Until the other connection waits for a lock this one holds."""
    with embedded.admin_connection(settings.ADMIN_DATABASE, database) as admin:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if other.done():
                other.result()
                raise AssertionError("the other transaction finished without waiting")
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = %s AND wait_event_type = 'Lock'",
                [database],
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the other transaction never waited for the lock")
