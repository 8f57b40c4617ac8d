"""Who is asking, for the audit trail and the logs: a request id, the client address, the browser.

`RequestContextMiddleware` (first in MIDDLEWARE) makes one `RequestInfo` per request, answers
with it in `X-Request-ID`, and keeps it in a context variable that `audit.actions.record` and the
log formatter (web/logs.py) read. Outside a request (commands, jobs) there is none.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.http import HttpRequest, HttpResponse

USER_AGENT_LENGTH = 200


@dataclass(frozen=True)
class RequestInfo:
    request_id: str
    ip: str | None
    user_agent: str
    # (target type, id) of every object this request was refused (audit.actions.note_refusal);
    # TenantMiddleware records them once the answer is known.
    refusals: list[tuple[str, str]] = field(default_factory=list)
    # Stored values that could not be opened (crypto/fields.py): the answer is a 409 or 410
    # even when a serializer or template wrapped the exception in one of its own.
    unreadable: list[Exception] = field(default_factory=list)


CURRENT: ContextVar[RequestInfo | None] = ContextVar("custodia_request", default=None)


def current() -> RequestInfo | None:
    """The request being served on this thread, if any."""
    return CURRENT.get()


class RequestContextMiddleware:
    """A fresh id per request (never taken from the caller: a log line must not be forgeable)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from custodia.accounts.throttle import client_ip

        agent = str(request.META.get("HTTP_USER_AGENT", ""))[:USER_AGENT_LENGTH]
        info = RequestInfo(uuid.uuid4().hex, client_ip(request), agent)
        request.request_id = info.request_id  # type: ignore[attr-defined]
        token = CURRENT.set(info)
        try:
            response = self.get_response(request)
        finally:
            CURRENT.reset(token)
        response["X-Request-ID"] = info.request_id
        return response
