"""Typed readers for the environment: every setting comes through here and fails loudly."""

from __future__ import annotations

import os
import secrets
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def env_raw(name: str) -> str | None:
    """NAME's value, or the contents (trimmed) of the file named by NAME_FILE; None when neither."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"{name}_FILE names a file that cannot be read: {exc.strerror}"
            ) from None
    return os.environ.get(name)


def _not(name: str, raw: str) -> str:
    """The rejected value for the message, unless it came from a file: a file may be a secret
    named by mistake, and messages never repeat one."""
    return "" if os.environ.get(f"{name}_FILE") else f", not {raw!r}"


def env_str(name: str, default: str | None = None) -> str:
    """A string from NAME, or from the file named by NAME_FILE; missing without default fails."""
    value = env_raw(name)
    if value is not None:
        return value
    if default is None:
        raise ImproperlyConfigured(f"{name} (or {name}_FILE) must be set.")
    return default


def env_bool(name: str, default: bool) -> bool:
    """A yes/no flag; anything but a recognised word is an error."""
    raw = env_raw(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    words = sorted(TRUE_WORDS | FALSE_WORDS)
    raise ImproperlyConfigured(f"{name} must be one of {words}{_not(name, raw)}.")


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int = 2**31) -> int:
    """An integer within bounds."""
    raw = env_raw(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer{_not(name, raw)}.") from None
    if not minimum <= value <= maximum:
        raise ImproperlyConfigured(f"{name} must be between {minimum} and {maximum}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    """A comma-separated list."""
    raw = env_raw(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_time_zone(name: str, default: str) -> str:
    """An IANA time zone name that this system knows."""
    value = env_str(name, default)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ImproperlyConfigured(
            f"{name} must be an IANA time zone name such as Europe/London or UTC."
        ) from None
    return value


def env_origins(name: str, default: list[str]) -> list[str]:
    """A comma-separated list of origins, each scheme://host[:port] with nothing after."""
    origins = env_list(name, default)
    for origin in origins:
        parts = urlsplit(origin)
        if (
            parts.scheme not in {"https", "http"}
            or not parts.netloc
            or parts.path not in {"", "/"}
            or parts.query
            or parts.fragment
        ):
            raise ImproperlyConfigured(
                f"{name} must be comma-separated origins such as https://custodia.example.com."
            )
    return origins


def env_email_address(name: str, default: str) -> str:
    """One email address, optionally with a display name: `Name <user@host>`."""
    value = env_str(name, default)
    _display, address = parseaddr(value)
    local, _, domain = address.partition("@")
    if not local or not domain or any(char in value for char in "\r\n"):
        raise ImproperlyConfigured(f"{name} must be an email address such as Name <user@host>.")
    return value


REDIS_SCHEMES = {"redis", "rediss", "unix"}


def env_redis_url(name: str) -> str:
    """A Redis URL (`redis://`, `rediss://` or `unix://`), or "" when unset.

    Checked as redis-py will read it, so a typo stops start-up rather than the first sign-in.
    Messages never repeat the value: it may carry a password.
    """
    value = env_str(name, "").strip()
    if not value:
        return ""
    problem = f"{name} must be a URL such as redis://:password@host:6379/0 or rediss://host/0"
    try:
        parts = urlsplit(value)
        port = parts.port  # ValueError when not a number in range
    except ValueError:
        raise ImproperlyConfigured(f"{problem} (the port is not a number).") from None
    if parts.scheme not in REDIS_SCHEMES:
        raise ImproperlyConfigured(f"{problem} (the scheme must be redis, rediss or unix).")
    if parts.scheme == "unix":
        if not parts.path:
            raise ImproperlyConfigured(f"{problem} (a unix:// URL names the socket's path).")
    else:
        if not parts.hostname:
            raise ImproperlyConfigured(f"{problem} (the host is missing).")
        database = parts.path.strip("/")
        if database and not database.isdigit():
            raise ImproperlyConfigured(f"{problem} (the path is a database number).")
        if port == 0:
            raise ImproperlyConfigured(f"{problem} (the port is not a number).")
    from redis import ConnectionPool  # only needed, and importable, when Redis is configured

    try:
        ConnectionPool.from_url(value)  # parses the query options too; connects to nothing
    except (ValueError, TypeError):
        raise ImproperlyConfigured(f"{problem} (an option in it is malformed).") from None
    return value


def create_private_file(path: Path, content: bytes) -> None:
    """Write `content` to a new 0600 file, unless the file exists (another process may have
    just made it: its content wins)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)


def generated_secret(path: Path) -> str:
    """A development secret kept in a 0600 file under var/, created on first use."""
    if not path.exists():
        create_private_file(path, secrets.token_urlsafe(50).encode())
    return path.read_text().strip()


def parse_database_url(url: str) -> dict[str, str]:
    """Split a postgres:// URL into Django's connection fields."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ImproperlyConfigured("DATABASE_URL must start with postgres:// or postgresql://.")
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured("DATABASE_URL must name a database (postgres://user@host/NAME).")
    return {
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }
