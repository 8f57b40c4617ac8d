"""A Django cache on an UNLOGGED PostgreSQL table: one statement per operation, outside the
request's transaction.

Used when `CUSTODIA_REDIS_URL` is not set (settings.CACHES). What it holds is allauth's rate
limits (per address, per user, per key) and the markers of TOTP codes already used: counters and
markers, not records. So:

- UNLOGGED: a write is not flushed to the WAL; a database crash empties the table, and every
  limit starts afresh (like a Redis restart).
- One statement per operation: `add` is an INSERT ... ON CONFLICT DO UPDATE ... WHERE the row has
  expired, so it succeeds only for an absent or expired key, atomically under concurrency;
  `incr` is one UPDATE ... RETURNING under the row's lock. Expired rows count as absent
  everywhere; `purge_expired` deletes them (the daily `custodia audit maintain`, and about one
  write in `PURGE_ONE_IN`). Expiry is the database's clock, the same for every app host.
- Its own connections (a small pool per process, in autocommit), never the request's: Django's
  DatabaseCache wrote inside the request's transaction, so a request answered with a 500 rolled
  its rate-limit counts back with it, and a lock row written early in a sign-in (allauth's
  `add` of a lock key) stayed locked, queueing every other sign-in from that address until the
  first one's transaction ended, password hashing included.

Keys are HMACs and values JSON (keys.py). The table holds no tenant data, so it has no row-level
security: the app role may read and write it (and nothing more), and whatever it reads there
names nobody.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.db import connections
from django.db import utils as db_utils
from psycopg import sql
from psycopg_pool import ConnectionPool

from custodia.cache.keys import dump_value

# About one write in this many also deletes expired rows (besides the daily maintenance); 0 never
# does (the test suite: a chance statement would make its statement counts random).
PURGE_ONE_IN = 1000
# Connections per process of `outside_the_request` when it makes the pool (the cache's default).
OUTSIDE_POOL_SIZE = 4
# Longest lifetime honoured (a timeout of None keeps a key for ever): timestamps stay in range.
MAX_TIMEOUT_SECONDS = 100 * 365 * 24 * 3600

# An entry is live until `expires` (NULL: for ever), by the database's clock.
ALIVE = sql.SQL("(expires IS NULL OR expires > statement_timestamp())")
EXPIRY = sql.SQL("statement_timestamp() + %(ttl)s::float8 * interval '1 second'")
UPSERT = sql.SQL(
    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires = EXCLUDED.expires"
)
STATEMENTS = {
    "get": "SELECT value::text FROM {table} WHERE key = %(key)s AND {alive}",
    "get_many": "SELECT key, value::text FROM {table} WHERE key = ANY(%(keys)s) AND {alive}",
    "has_key": "SELECT EXISTS (SELECT FROM {table} WHERE key = %(key)s AND {alive})",
    "set": "INSERT INTO {table} AS c (key, value, expires)"
    " VALUES (%(key)s, %(value)s::jsonb, {expiry}) {upsert}",
    "set_many": "INSERT INTO {table} AS c (key, value, expires)"
    " SELECT e.key, e.value, {expiry} FROM jsonb_each(%(entries)s::jsonb) AS e {upsert}",
    # The update happens only over an expired row: a live one makes it return nothing.
    "add": "INSERT INTO {table} AS c (key, value, expires)"
    " VALUES (%(key)s, %(value)s::jsonb, {expiry}) {upsert}"
    " WHERE c.expires IS NOT NULL AND c.expires <= statement_timestamp() RETURNING true",
    "incr": "UPDATE {table} SET value = to_jsonb(value::bigint + %(delta)s::bigint)"
    " WHERE key = %(key)s AND {alive} AND jsonb_typeof(value) = 'number'"
    " RETURNING value::bigint",
    "touch": "UPDATE {table} SET expires = {expiry} WHERE key = %(key)s AND {alive} RETURNING true",
    "delete": "DELETE FROM {table} WHERE key = %(key)s RETURNING {alive}",
    "delete_many": "DELETE FROM {table} WHERE key = ANY(%(keys)s)",
    "clear": "DELETE FROM {table}",
    "purge": "DELETE FROM {table} WHERE expires <= statement_timestamp()",
}

_pools: dict[tuple[object, ...], ConnectionPool] = {}
_pools_lock = threading.Lock()


def _pool_for(alias: str, size: int) -> ConnectionPool:
    """This process's pool to the database of connection `alias` (as that connection's role).

    Looked up per call from the alias's current settings (tests point it at their database
    after start-up); one per process, since a forked worker must not share its parent's sockets.
    """
    wrapper = connections[alias]
    settings = wrapper.settings_dict
    identity = (os.getpid(), alias, settings["NAME"], settings["HOST"], settings["PORT"])
    pool = _pools.get(identity)
    if pool is not None:
        return pool
    with _pools_lock:
        pool = _pools.get(identity)
        if pool is None:
            params = wrapper.get_connection_params()
            params["autocommit"] = True
            pool = ConnectionPool(
                kwargs=params,
                min_size=1,
                max_size=size,
                timeout=10,
                name=f"custodia-cache-{alias}",
                open=True,
            )
            _pools[identity] = pool
    return pool


@contextmanager
def outside_the_request(alias: str = "default") -> Iterator[psycopg.Connection[Any]]:
    """A connection of this process's pool for `alias` (its role, autocommit), apart from the
    request's: for a count that must outlive a request whose own transaction is rolled back (a
    failed sign-in's, accounts/throttle.py). Errors come out as django.db's."""
    try:
        with _pool_for(alias, OUTSIDE_POOL_SIZE).connection() as connection:
            yield connection
    except psycopg.Error as error:
        raise _django_error(error) from error


def close_pools() -> None:
    """Close every pool of this process (tests, and before pointing connections elsewhere)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def _django_error(error: psycopg.Error) -> db_utils.Error:
    """The django.db exception of the same kind, so callers catch one family of errors."""
    for kind in type(error).__mro__:
        django_kind = getattr(db_utils, kind.__name__, None)
        if isinstance(django_kind, type) and issubclass(django_kind, db_utils.Error):
            return django_kind(*error.args)
    return db_utils.DatabaseError(*error.args)


class PostgresCache(BaseCache):
    """Django's cache API over the UNLOGGED table named by LOCATION (see the module docstring).

    OPTIONS: DATABASE, the connection whose database and role to use ("default", the app
    role); POOL_SIZE, connections per process (4). Every operation is one statement.
    """

    def __init__(self, table: str, params: dict[str, Any]) -> None:
        super().__init__(params)
        options = params.get("OPTIONS", {})
        self._alias = str(options.get("DATABASE", "default"))
        self._pool_size = int(options.get("POOL_SIZE", 4))
        names = {"table": sql.Identifier(table), "alive": ALIVE, "expiry": EXPIRY, "upsert": UPSERT}
        self._sql = {
            name: sql.SQL(template).format(**names).as_string(None)
            for name, template in STATEMENTS.items()
        }

    # --- plumbing --------------------------------------------------------------------------

    def _run(self, name: str, params: Mapping[str, Any]) -> tuple[list[tuple[Any, ...]], int]:
        """Statement `name` in a transaction of its own; its rows (if any) and row count."""
        try:
            with _pool_for(self._alias, self._pool_size).connection() as connection:
                cursor = connection.execute(self._sql[name], params)
                rows = cursor.fetchall() if cursor.description is not None else []
                return rows, cursor.rowcount
        except psycopg.Error as error:
            raise _django_error(error) from error

    def _ttl(self, timeout: float | None | object) -> float | None:
        """Seconds to live (None: for ever); zero or less is already expired."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        if timeout is None:
            return None
        return min(float(timeout), MAX_TIMEOUT_SECONDS)  # type: ignore[arg-type]

    def _maybe_purge(self) -> None:
        if PURGE_ONE_IN and secrets.randbelow(PURGE_ONE_IN) == 0:
            self.purge_expired()

    # --- Django's cache API ----------------------------------------------------------------

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        """The live value of `key`, else `default`."""
        rows, _ = self._run("get", {"key": self.make_and_validate_key(key, version=version)})
        return json.loads(rows[0][0]) if rows else default

    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        """The live values of those of `keys` that have one."""
        made = {self.make_and_validate_key(key, version=version): key for key in keys}
        if not made:
            return {}
        rows, _ = self._run("get_many", {"keys": list(made)})
        return {made[key]: json.loads(text) for key, text in rows}

    def has_key(self, key: Any, version: int | None = None) -> bool:
        """Whether `key` has a live value."""
        rows, _ = self._run("has_key", {"key": self.make_and_validate_key(key, version=version)})
        return bool(rows[0][0])

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        """Store `value` under `key` (JSON; TypeError or ValueError for what JSON cannot hold)."""
        params = {
            "key": self.make_and_validate_key(key, version=version),
            "value": dump_value(value),
            "ttl": self._ttl(timeout),
        }
        self._run("set", params)
        self._maybe_purge()

    def set_many(
        self, data: Mapping[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[Any]:
        """Store every pair in one statement; returns the keys that failed (none)."""
        entries = {self.make_and_validate_key(key, version=version): v for key, v in data.items()}
        if entries:
            self._run(
                "set_many",
                {"entries": dump_value(entries), "ttl": self._ttl(timeout)},
            )
            self._maybe_purge()
        return []

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        """Store `value` only if `key` has no live value; whether it did (atomic)."""
        params = {
            "key": self.make_and_validate_key(key, version=version),
            "value": dump_value(value),
            "ttl": self._ttl(timeout),
        }
        rows, _ = self._run("add", params)
        self._maybe_purge()
        return bool(rows)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Add `delta` to the live integer under `key` (atomic); ValueError when there is none.

        The key keeps its expiry, as with Django's other backends.
        """
        made = self.make_and_validate_key(key, version=version)
        rows, _ = self._run("incr", {"key": made, "delta": int(delta)})
        if not rows:
            raise ValueError(f"Key '{key}' not found, or not a number.")
        return int(rows[0][0])

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        """Give the live `key` a new lifetime; whether it had one to renew."""
        made = self.make_and_validate_key(key, version=version)
        rows, _ = self._run("touch", {"key": made, "ttl": self._ttl(timeout)})
        return bool(rows)

    def delete(self, key: Any, version: int | None = None) -> bool:
        """Remove `key`; whether it had a live value."""
        rows, _ = self._run("delete", {"key": self.make_and_validate_key(key, version=version)})
        return bool(rows and rows[0][0])

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        """Remove every one of `keys` in one statement."""
        made = [self.make_and_validate_key(key, version=version) for key in keys]
        if made:
            self._run("delete_many", {"keys": made})

    def clear(self) -> None:
        """Remove everything (every limit starts afresh)."""
        self._run("clear", {})

    def purge_expired(self) -> int:
        """Delete the rows whose lifetime has ended; how many."""
        _, count = self._run("purge", {})
        return max(count, 0)

    def close(self, **kwargs: Any) -> None:
        """Nothing to do per request: the pool keeps its connections."""


def purge_expired_entries() -> int:
    """Delete the expired rows of every cache kept in PostgreSQL (the daily retention run; Redis
    expires its keys itself); how many."""
    from django.core.cache import caches

    purged = 0
    for alias in caches.settings:
        backend = caches[alias]
        if isinstance(backend, PostgresCache):
            purged += backend.purge_expired()
    return purged
