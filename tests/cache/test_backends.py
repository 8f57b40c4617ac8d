"""The cache's contract, on both backends (the UNLOGGED table and the real Redis): expiry,
`add` only when absent or expired, atomic `incr` and `add` under concurrent threads, deletion;
and what either one stores: an HMAC for each key, JSON for each value, never a pickle."""

from __future__ import annotations

import json
import os
import pickle
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache, caches
from django.db import connection

from custodia.cache import backend as backend_module
from custodia.cache.backend import PostgresCache, _pool_for, purge_expired_entries
from tests.caches import redis_keys

# The cache writes outside the test's transaction, on connections of its own: a plain `db` test.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cache_backend")]

ADDRESS = "203.0.113.9"
RATE_KEY = f"allauth:rl:allauth.account:login:30/60/ip:ip:{ADDRESS}"


def stored() -> list[tuple[str, bytes]]:
    """Every (key, raw value) the backend holds for this run, as someone reading it sees it."""
    backend = caches["default"]
    if isinstance(backend, PostgresCache):
        with connection.cursor() as cursor:
            cursor.execute("SELECT key, value::text FROM custodia_cache_entry")
            return [(key, value.encode()) for key, value in cursor.fetchall()]
    client = backend._cache.get_client(None, write=True)
    return [(key.decode(), client.get(key)) for key in redis_keys(backend)]


def in_threads(count: int, work: Callable[[], Any]) -> list[Any]:
    """`work` in `count` threads released together; their results."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()  # this thread's Django connection, if it opened one

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


# --- The contract ---------------------------------------------------------------------------------


def test_get_set_and_defaults():
    assert cache.get("absent") is None
    assert cache.get("absent", "fallback") == "fallback"
    cache.set("history", [1_800_000_015.123456, 1_800_000_001.5], 60)
    assert cache.get("history") == [1_800_000_015.123456, 1_800_000_001.5]
    cache.set("nothing", None, 60)
    assert cache.get("nothing", "fallback") is None  # a stored None is not a miss
    assert cache.has_key("nothing") and not cache.has_key("absent")
    cache.set("history", {"replaced": True}, 60)
    assert cache.get("history") == {"replaced": True}


def test_entries_expire():
    cache.set("short", "y", 1)
    cache.set("forever", "y", None)
    cache.set("gone", "y", 0)
    cache.set("past", "y", -5)
    assert cache.get("short") == "y"
    assert cache.get("gone") is None and cache.get("past") is None
    assert not cache.has_key("gone")
    time.sleep(1.2)
    assert cache.get("short") is None and not cache.has_key("short")
    assert cache.get_many(["short", "forever"]) == {"forever": "y"}
    assert cache.get("forever") == "y"


def test_add_only_when_absent_or_expired():
    assert cache.add("lock", True, 1)
    assert not cache.add("lock", "second", 60)
    assert cache.get("lock") is True  # the loser changed nothing
    time.sleep(1.2)
    assert cache.add("lock", "after expiry", 60)
    assert cache.get("lock") == "after expiry"


def test_touch_renews_only_a_live_key():
    cache.set("marker", "y", 1)
    assert cache.touch("marker", 60)
    time.sleep(1.2)
    assert cache.get("marker") == "y"
    assert not cache.touch("absent", 60)


def test_incr_and_decr_keep_the_lifetime():
    cache.set("count", 5, 1)
    assert cache.incr("count") == 6
    assert cache.incr("count", 10) == 16
    assert cache.decr("count", 4) == 12
    assert cache.get("count") == 12
    with pytest.raises(ValueError, match="not found"):
        cache.incr("absent")
    time.sleep(1.2)
    with pytest.raises(ValueError, match="not found"):
        cache.incr("count")  # expired with the lifetime it had before the increments


def test_delete_and_delete_many():
    cache.set_many({"a": 1, "b": [2], "c": "three"}, 60)
    assert cache.get_many(["a", "b", "c", "d"]) == {"a": 1, "b": [2], "c": "three"}
    assert cache.delete("a") is True
    assert cache.delete("a") is False
    cache.delete_many(["b", "c", "d"])
    assert cache.get_many(["a", "b", "c"]) == {}
    assert stored() == []


def test_clear_empties_the_table():
    backend = caches["default"]
    if not isinstance(backend, PostgresCache):
        # Django's RedisCache.clear() is FLUSHDB: give Custodia a Redis database of its own
        # (docs/operations.md). Never run here: the database may hold other runs' keys.
        return
    cache.set_many({"a": 1, "b": 2}, 60)
    cache.clear()
    assert stored() == []


def test_expired_rows_are_purged_by_the_maintenance():
    cache.set("expired", "y", 0)
    cache.set("live", "y", 60)
    postgres = isinstance(caches["default"], PostgresCache)
    assert len(stored()) == (2 if postgres else 1)  # Redis expires keys itself
    purge_expired_entries()
    assert len(stored()) == 1
    assert cache.get("live") == "y"


def test_a_write_sometimes_purges_expired_rows(monkeypatch):
    if not isinstance(caches["default"], PostgresCache):
        return  # Redis expires keys itself
    cache.set("expired", "y", 0)
    monkeypatch.setattr(backend_module, "PURGE_ONE_IN", 1)  # this write is the one in N
    cache.set("live", "y", 60)
    assert [value for _, value in stored()] == [b'"y"']
    assert cache.get("live") == "y"


# --- Concurrency ----------------------------------------------------------------------------------


def test_concurrent_increments_are_all_counted():
    cache.set("hits", 0, 60)

    def hammer() -> None:
        for _ in range(25):
            cache.incr("hits")

    in_threads(8, hammer)
    assert cache.get("hits") == 200


def test_exactly_one_of_concurrent_adds_wins():
    for round_ in range(10):
        key = f"lock-{round_}"
        wins = in_threads(8, lambda key=key: cache.add(key, threading.get_ident(), 60))
        assert sum(bool(won) for won in wins) == 1, wins


def test_exactly_one_of_concurrent_adds_wins_over_an_expired_entry():
    for round_ in range(5):
        key = f"stale-{round_}"
        cache.set(key, "old", 0)  # present, but expired
        wins = in_threads(8, lambda key=key: cache.add(key, "new", 60))
        assert sum(bool(won) for won in wins) == 1, wins
        assert cache.get(key) == "new"


# --- What is stored ---------------------------------------------------------------------------


def test_keys_are_hmacs_that_name_no_address_user_or_code():
    """Whoever reads the table (or Redis) learns which limits exist, not whose they are."""
    cache.set(RATE_KEY, [time.time()], 60)
    cache.add("allauth.mfa.totp.used?user=42&code=123456", "y", 30)
    entries = stored()
    assert len(entries) == 2
    for key, value in entries:
        assert ADDRESS not in key and "allauth" not in key and "123456" not in key
        assert len(key.rsplit(":", 1)[1]) == 64  # prefix:version:HMAC-SHA256
        assert ADDRESS.encode() not in value


def test_values_are_json_and_what_json_cannot_hold_is_refused():
    cache.set("history", [1.5, 2.25], 60)
    cache.set("flag", True, 60)
    # Raw JSON text, as any reader of the table or of Redis sees it (no pickle framing).
    assert sorted(json.loads(value) for _key, value in stored() if value != b"true") == [
        [1.5, 2.25]
    ]
    assert sum(value == b"true" for _key, value in stored()) == 1
    for unfit in (object(), (1, 2), {1: "int key"}, float("nan"), b"bytes"):
        with pytest.raises(TypeError, match="JSON"):
            cache.set("unfit", unfit, 60)
        with pytest.raises(TypeError, match="JSON"):
            cache.add("unfit", unfit, 60)
    assert cache.get("unfit") is None


def test_a_planted_pickle_is_never_unpickled(tmp_path: Path):
    """Someone who can write to the cache (an SQL injection, a leaked Redis password) plants a
    pickle that would run a command when loaded: reading it runs nothing."""
    proof = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {proof}",))

    payload = pickle.dumps(Exploit(), protocol=0)  # ASCII: text columns take it too
    cache.set(RATE_KEY, [1.0], 60)  # find the entry's stored name
    ((name, _),) = stored()
    backend = caches["default"]
    if isinstance(backend, PostgresCache):
        # The column is jsonb: the most a writer can plant is a string holding the bytes.
        with _pool_for("default", 1).connection() as writer:  # committed at once
            writer.execute(
                "UPDATE custodia_cache_entry SET value = to_jsonb(%s::text) WHERE key = %s",
                [payload.decode("latin-1"), name],
            )
        assert isinstance(cache.get(RATE_KEY), str)
    else:
        backend._cache.get_client(None, write=True).set(name, payload)
        with pytest.raises(ValueError):  # not JSON: an error, never an execution
            cache.get(RATE_KEY)
    assert not proof.exists()
