"""CUSTODIA_REDIS_URL chooses the cache: checked at start-up, never echoed (it may carry a
password); unset, the UNLOGGED table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_settings import BASE_ENV, refused

PASSWORD = "s3cret-redis-pass"  # noqa: S105


def cache_settings(tmp_path: Path, env: dict[str, str]) -> str:
    clean = {**BASE_ENV, "CUSTODIA_VAR_DIR": str(tmp_path), **env}
    code = (
        "import custodia.settings as s; c = s.CACHES['default'];"
        " print(c['BACKEND'], c['LOCATION'], c['KEY_FUNCTION'], c['OPTIONS'].get('serializer'))"
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], env=clean, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_without_redis_the_cache_is_the_unlogged_table(tmp_path):
    assert cache_settings(tmp_path, {}) == (
        "custodia.cache.backend.PostgresCache custodia_cache_entry"
        " custodia.cache.keys.make_key None"
    )


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{PASSWORD}@127.0.0.1:6379/3",
        "rediss://cache.internal/0",
        "redis://127.0.0.1",
        "unix:///run/redis/redis.sock?db=2",
    ],
)
def test_a_redis_url_selects_djangos_redis_cache_with_json_values(tmp_path, url):
    assert cache_settings(tmp_path, {"CUSTODIA_REDIS_URL": url}) == (
        f"django.core.cache.backends.redis.RedisCache {url}"
        " custodia.cache.keys.make_key custodia.cache.keys.JSONSerializer"
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (f"http://:{PASSWORD}@cache.internal:6379/0", "the scheme"),
        (f"redis://:{PASSWORD}@:6379/0", "the host is missing"),
        (f"redis://:{PASSWORD}@cache.internal:port/0", "the port"),
        (f"redis://:{PASSWORD}@cache.internal:99999/0", "the port"),
        (f"redis://:{PASSWORD}@cache.internal/zero", "database number"),
        (f"redis://:{PASSWORD}@cache.internal/0?socket_timeout=soon", "an option"),
        ("unix://", "socket's path"),
        (f"{PASSWORD}", "the scheme"),
    ],
)
def test_a_malformed_redis_url_stops_start_up_without_echoing_it(tmp_path, url, reason):
    message = refused(tmp_path, {"CUSTODIA_REDIS_URL": url})
    assert message.startswith("CUSTODIA_REDIS_URL must be a URL such as")
    assert reason in message
    assert PASSWORD not in message and "cache.internal" not in message


def test_the_redis_url_can_come_from_a_file(tmp_path):
    secret = tmp_path / "redis_url"
    secret.write_text(f"redis://:{PASSWORD}@127.0.0.1:6379/1\n")
    output = cache_settings(tmp_path, {"CUSTODIA_REDIS_URL_FILE": str(secret)})
    assert output.startswith(
        f"django.core.cache.backends.redis.RedisCache redis://:{PASSWORD}@127.0.0.1:6379/1 "
    )
