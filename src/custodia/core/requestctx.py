"""Who is asking, for the audit trail and the logs: a request id, the client address, the browser.

`RequestContextMiddleware` (first in the pipeline, web/middleware.py) makes one `RequestInfo`
per request with `serving`, answers with its id in `X-Request-ID`, and the context variable here
is what `core.audit.record` and the log formatter (core/logs.py) read. A background job has
one of its own (`running_job`); outside both (commands) there is none.

The client address is the TCP peer unless `CUSTODIA_TRUSTED_PROXIES` proxies stand in front of
Custodia; then it is read from the right of X-Forwarded-For (each proxy appends the address it
was reached from, so entries further left were written by the client and prove nothing), but
only as far back as every sender is a proxy inside `CUSTODIA_TRUSTED_PROXY_NETWORKS`: a header
from anyone else is ignored, and a chain with an untrusted hop stops at that hop. allauth's rate
limits key on it through `AccountAdapter.get_client_ip`.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.conf import settings
from django.http import HttpRequest

USER_AGENT_LENGTH = 200
# Methods that change nothing: their transaction need not wait for its WAL flush.
SAFE_METHODS = frozenset({"GET", "HEAD"})
# Where the JSON API is mounted (urls.py).
API_PREFIX = "/api/"


@dataclass(frozen=True)
class RequestInfo:
    request_id: str
    ip: str | None
    user_agent: str
    # (target type, id) of every object this request was refused (core.audit.note_refusal);
    # TenantMiddleware records them once the answer is known.
    refusals: list[tuple[str, str]] = field(default_factory=list)
    # Stored values that could not be opened (crypto/fields.py): the answer is a 409 or 410
    # even when a serializer or template wrapped the exception in one of its own.
    unreadable: list[Exception] = field(default_factory=list)


CURRENT: ContextVar[RequestInfo | None] = ContextVar("custodia_request", default=None)


def current() -> RequestInfo | None:
    """The request being served on this thread, if any."""
    return CURRENT.get()


@contextmanager
def serving(request: HttpRequest) -> Iterator[RequestInfo]:
    """This request's information, current for the duration of the block.

    A fresh id per request, never taken from the caller: a log line must not be forgeable.
    """
    agent = str(request.META.get("HTTP_USER_AGENT", ""))[:USER_AGENT_LENGTH]
    info = RequestInfo(uuid.uuid4().hex, client_ip(request), agent)
    request.request_id = info.request_id  # type: ignore[attr-defined]
    token = CURRENT.set(info)
    try:
        yield info
    finally:
        CURRENT.reset(token)


@contextmanager
def running_job(name: str, kind: str) -> Iterator[RequestInfo]:
    """A background job's information, current for the duration of the block: its name
    (`job-<id>`, or a periodic task's) stands where a request's id would, so that each audit
    row and log line it writes says which job; no address, and the kind as the agent."""
    info = RequestInfo(name[:64], None, f"custodia job: {kind}"[:USER_AGENT_LENGTH])
    token = CURRENT.set(info)
    try:
        yield info
    finally:
        CURRENT.reset(token)


def _parse_ip(value: str) -> str | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[::1]:443" or "[::1]"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "192.0.2.1:443"
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _is_trusted_proxy(address: str) -> bool:
    parsed = ipaddress.ip_address(address)
    return any(parsed in network for network in settings.CUSTODIA_TRUSTED_PROXY_NETWORKS)


def client_ip(request: HttpRequest) -> str:
    """The client's address, trusting X-Forwarded-For only from and through trusted proxies.

    The header counts only when the peer is in `CUSTODIA_TRUSTED_PROXY_NETWORKS`. Walking it from
    the right, each entry is the address the proxy before it was reached from: while that is
    another trusted proxy, the walk goes on, up to `CUSTODIA_TRUSTED_PROXIES` entries; the first
    address that is not a trusted proxy is the client (a chain with an untrusted hop stops
    there). A header with too few entries, or an unparsable entry on the way, did not come
    through the proxies: the peer address is used instead (the strictest choice, as every such
    request then shares one limit).
    """
    peer = _parse_ip(str(request.META.get("REMOTE_ADDR", ""))) or "0.0.0.0"  # noqa: S104
    proxies = settings.CUSTODIA_TRUSTED_PROXIES
    if proxies <= 0 or not _is_trusted_proxy(peer):
        return peer
    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    entries = [entry for entry in str(header).split(",") if entry.strip()]
    for hop in range(1, proxies + 1):
        if len(entries) < hop:
            return peer
        address = _parse_ip(entries[-hop])
        if address is None:
            return peer
        if hop == proxies or not _is_trusted_proxy(address):
            return address
    return peer


def presents_bearer_token(request: HttpRequest) -> bool:
    """The request carries `Authorization: Bearer ...`: the API answers it for the token alone."""
    return request.headers.get("Authorization", "").lower().startswith("bearer")


def body_too_large_message() -> str:
    """What a request over DATA_UPLOAD_MAX_MEMORY_SIZE is told (the API and the pages alike)."""
    return f"The request is too large: at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes."
