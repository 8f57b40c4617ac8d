"""The two cache backends for tests: the UNLOGGED table (the default) and the real Redis.

`cache_backend` (a fixture of tests/conftest.py) runs a test once on each. Redis is the one on
127.0.0.1:6379 (`CUSTODIA_TEST_REDIS_URL` names another); every pytest process keys its entries
under a prefix of its own and deletes only those, never the whole database.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import caches

from custodia.accounts.models import LoginThrottle
from custodia.cache.backend import PostgresCache, outside_the_request

REDIS_URL = os.environ.get("CUSTODIA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_PREFIX = f"custodia-test-{os.getpid()}-{secrets.token_hex(4)}"
START_REDIS = (
    "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' --appendonly no"
)


def redis_caches(location: str = REDIS_URL) -> dict[str, Any]:
    """settings.CACHES as production has it with CUSTODIA_REDIS_URL, under this run's prefix."""
    return {
        "default": {
            **settings.CACHES["default"],
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": location,
            "KEY_PREFIX": REDIS_PREFIX,
            "OPTIONS": {
                "serializer": "custodia.cache.keys.JSONSerializer",
                "socket_connect_timeout": 2,
                "socket_timeout": 2,
            },
        }
    }


def redis_client() -> Any:
    import redis

    return redis.Redis.from_url(REDIS_URL)


def require_redis() -> None:
    """Fail (never skip) when the Redis the tests need is not there, saying how to start it."""
    import redis

    try:
        redis_client().ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis at {REDIS_URL} is not answering ({error}); start it: {START_REDIS}")


def redis_keys(backend: Any) -> list[bytes]:
    """The keys under the Redis backend's prefix (this run's)."""
    client = backend._cache.get_client(None, write=True)
    return list(client.scan_iter(match=f"{backend.key_prefix}:*", count=1000))


def forget_sign_in_failures() -> None:
    """The sign-in throttle's rows, which are written outside the test's transaction too
    (accounts/throttle.py), deleted so that no count or pause carries over."""
    with outside_the_request() as connection:
        connection.execute(f"DELETE FROM {LoginThrottle._meta.db_table}")  # noqa: S608


def empty_cache() -> None:
    """Nothing left of this run in the current backend: the table emptied, or this run's Redis
    keys deleted (never FLUSHDB, as Django's RedisCache.clear does: the database may hold
    others')."""
    backend = caches["default"]
    if isinstance(backend, PostgresCache):
        backend.clear()
        return
    assert backend.key_prefix.startswith("custodia-test-"), backend.key_prefix
    keys = redis_keys(backend)
    if keys:
        backend._cache.get_client(None, write=True).delete(*keys)
