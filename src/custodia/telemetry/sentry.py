"""Optional error reports to Sentry (CUSTODIA_SENTRY_DSN), scrubbed of every value.

An event keeps what locates a bug, and nothing a request or a customer brought: the exception's
type and where it was raised (files, functions, lines, the code's own source lines), the route
(the transaction, a URL pattern), the method, a few harmless headers, the release and host.
Dropped: request bodies, cookies, query strings, the URL itself (paths carry secrets: invitation
and reset links, calendar feeds), every other header, the client's address, the user, local
variables, exception messages (ours and the standard library's can quote a value), log messages'
arguments, breadcrumbs' messages and data, and any extra or context we did not list.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import sentry_sdk
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import LoggingIntegration

SAFE_HEADERS = frozenset({"accept", "content-length", "content-type"})
SAFE_CONTEXTS = frozenset({"runtime", "os", "trace"})
SAFE_FRAME_KEYS = frozenset(
    {
        "filename",
        "abs_path",
        "function",
        "module",
        "lineno",
        "colno",
        "in_app",
        "context_line",
        "pre_context",
        "post_context",
    }
)
SAFE_EVENT_KEYS = frozenset(
    {
        "event_id",
        "timestamp",
        "level",
        "platform",
        "logger",
        "transaction",
        "transaction_info",
        "server_name",
        "release",
        "environment",
        "dist",
        "sdk",
        "modules",
        "tags",
        "fingerprint",
        "exception",
        "threads",
        "request",
        "contexts",
        "breadcrumbs",
        "logentry",
        "type",
    }
)
Event = dict[str, Any]
if TYPE_CHECKING:
    from sentry_sdk._types import Event as SentryEvent


def _frames(stacktrace: Any) -> None:
    if not isinstance(stacktrace, dict):
        return
    frames = stacktrace.get("frames")
    if isinstance(frames, list):
        stacktrace["frames"] = [
            {key: value for key, value in frame.items() if key in SAFE_FRAME_KEYS}
            for frame in frames
            if isinstance(frame, dict)
        ]


def _request(request: Any) -> Event:
    if not isinstance(request, dict):
        return {}
    headers = request.get("headers")
    kept: Event = {}
    if isinstance(request.get("method"), str):
        kept["method"] = request["method"]
    if isinstance(headers, dict):
        kept["headers"] = {
            name: value for name, value in headers.items() if name.lower() in SAFE_HEADERS
        }
    return kept


def scrub_breadcrumb(crumb: Event, hint: Any = None) -> Event:
    """Only what kind of thing happened, and when: no message, no data."""
    return {key: crumb[key] for key in ("type", "category", "level", "timestamp") if key in crumb}


def scrub_event(event: Event, hint: Any = None) -> Event:
    """The event with only the keys above, and those cleaned (see the module docstring)."""
    event = {key: value for key, value in event.items() if key in SAFE_EVENT_KEYS}
    event.pop("user", None)
    if "request" in event:
        event["request"] = _request(event["request"])
    for group in ("exception", "threads"):
        values = event.get(group, {}).get("values") if isinstance(event.get(group), dict) else None
        for item in values or []:
            if not isinstance(item, dict):
                continue
            if group == "exception":
                item["value"] = ""
            _frames(item.get("stacktrace"))
            item.pop("raw_stacktrace", None)
    logentry = event.get("logentry")
    if isinstance(logentry, dict):
        # The format string is the code's; its arguments and the formatted text are values.
        event["logentry"] = {"message": str(logentry.get("message", ""))}
    contexts = event.get("contexts")
    if isinstance(contexts, dict):
        event["contexts"] = {k: v for k, v in contexts.items() if k in SAFE_CONTEXTS}
    crumbs = event.get("breadcrumbs")
    if isinstance(crumbs, dict) and isinstance(crumbs.get("values"), list):
        crumbs["values"] = [scrub_breadcrumb(c) for c in crumbs["values"] if isinstance(c, dict)]
    return event


def start(dsn: str, *, environment: str) -> None:
    """Send errors to `dsn`, never a personal or request value (no tracing, no profiling)."""
    with warnings.catch_warnings():
        # Newer SDKs deprecate send_default_pii for data_collection (which older ones in our
        # range lack); off is off in both, and the scrubbers below hold whatever the SDK collects.
        warnings.simplefilter("ignore", DeprecationWarning)
        _init(dsn, environment)


def _init(dsn: str, environment: str) -> None:
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=0.0,
        before_send=cast("Callable[[SentryEvent, dict[str, Any]], SentryEvent]", scrub_event),
        before_breadcrumb=scrub_breadcrumb,
        # Errors logged at ERROR become events (their messages scrubbed as above); the URL
        # pattern names the transaction, never the path.
        integrations=[
            DjangoIntegration(transaction_style="url"),
            LoggingIntegration(event_level=logging.ERROR),
        ],
    )
