"""A rate limit on the API per token and per signed-in session, so no caller can fill the audit
trail (every read is an event, kept a year) or the server without bound.

`CUSTODIA_API_RATE_LIMIT` requests a minute (settings.API_RATE_LIMIT_PER_MINUTE) by the generic
cell rate algorithm: after a quiet minute up to that many at once, then one every 60/N seconds.
One more is answered 429 with Retry-After (the seconds until the next one is allowed), before
authentication, the tenant context or any audit event; refused requests do not use up allowance.
The first refusal of a caller in a minute is a security event (the person's security panel, and
`auth.rate_limited` in the audit trail), so the refusals themselves cannot flood anything either.

The verdict is one INSERT ... ON CONFLICT DO UPDATE ... RETURNING on an UNLOGGED table: one round
trip, atomic under concurrency (parallel requests of one token are counted exactly), and made
outside the request's transaction, so the row lock lasts one statement, not the whole request.
Callers are told apart by an HMAC of the token or session key as presented, never the value
itself; a wrong token has a key of its own, so nobody can spend another caller's allowance by
sending its public prefix.
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from custodia.accounts.access import TOKEN_PREFIX
from custodia.accounts.actions import do_record_security_event
from custodia.accounts.digests import digest_secret
from custodia.accounts.models import SecurityEventKind
from custodia.core.dbcontext import set_db_context
from custodia.core.requestctx import API_PREFIX
from custodia.tenancy.actors import actor_for_token

KEY_PURPOSE = "api-rate-limit"
WINDOW = dt.timedelta(minutes=1)
# About one request in this many also deletes the rows of callers idle for a window or more; 0
# never does (the test suite: a chance statement would make its statement counts random).
PURGE_ONE_IN = 1000

# All expressions on the right of SET read the row as it was: `allowed` and `tat` decide this
# request; `notify` is true for the first refusal after `noticed_until`.
TAKE_SQL = """
INSERT INTO accounts_apiratelimit AS r (key, tat, allowed, notify, noticed_until)
VALUES (%(key)s, %(now)s + %(interval)s, true, false, NULL)
ON CONFLICT (key) DO UPDATE SET
    allowed = GREATEST(r.tat, %(now)s) + %(interval)s <= %(now)s + %(window)s,
    tat = CASE WHEN GREATEST(r.tat, %(now)s) + %(interval)s <= %(now)s + %(window)s
        THEN GREATEST(r.tat, %(now)s) + %(interval)s ELSE r.tat END,
    notify = GREATEST(r.tat, %(now)s) + %(interval)s > %(now)s + %(window)s
        AND (r.noticed_until IS NULL OR r.noticed_until <= %(now)s),
    noticed_until = CASE WHEN GREATEST(r.tat, %(now)s) + %(interval)s > %(now)s + %(window)s
        AND (r.noticed_until IS NULL OR r.noticed_until <= %(now)s)
        THEN %(now)s + %(window)s ELSE r.noticed_until END
RETURNING allowed, notify, EXTRACT(EPOCH FROM (tat - %(now)s))::float8
"""
PURGE_SQL = """
DELETE FROM accounts_apiratelimit
WHERE tat < %(now)s - %(window)s AND (noticed_until IS NULL OR noticed_until < %(now)s)
"""


@dataclass(frozen=True)
class Verdict:
    """Whether a request may go on; if not, in how many seconds the next one may."""

    allowed: bool
    notify: bool = False
    retry_after: int = 0


def take(key: str, *, now: dt.datetime | None = None) -> Verdict:
    """Count one request of the caller `key` against its allowance (one statement)."""
    now = now or timezone.now()
    limit = settings.API_RATE_LIMIT_PER_MINUTE
    interval = WINDOW / limit
    params: dict[str, Any] = {"key": key, "now": now, "interval": interval, "window": WINDOW}
    with connection.cursor() as cursor:
        cursor.execute(TAKE_SQL, params)
        allowed, notify, ahead = cursor.fetchone()
        if PURGE_ONE_IN and secrets.randbelow(PURGE_ONE_IN) == 0:
            cursor.execute(PURGE_SQL, params)
    if allowed:
        return Verdict(True)
    # The next request fits once `tat` is within a window of now, less one interval.
    wait = ahead + interval.total_seconds() - WINDOW.total_seconds()
    return Verdict(False, bool(notify), max(1, math.ceil(wait)))


def _bearer(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


def caller_key(request: HttpRequest) -> str | None:
    """The HMAC that names this API caller: its bearer token, else its signed-in session.

    None for a request that will be answered 401 without work (no credentials, a malformed
    token), so those are never counted or stored.
    """
    token = _bearer(request)
    if token is not None:
        if not token.startswith(f"{TOKEN_PREFIX}_") or len(token) > 200:
            return None
        return digest_secret(KEY_PURPOSE, f"token:{token}")
    session_key = request.session.session_key if hasattr(request, "session") else None
    if session_key and request.user.is_authenticated:
        return digest_secret(KEY_PURPOSE, f"session:{session_key}")
    return None


def limit_message(retry_after: int) -> str:
    """The 429's detail: the limit, and when to come back."""
    limit = settings.API_RATE_LIMIT_PER_MINUTE
    return (
        f"Too many requests: at most {limit} a minute per token or session."
        f" Try again in {retry_after} second{'s' if retry_after != 1 else ''}."
    )


def record_refusal(request: HttpRequest) -> None:
    """A security event for whoever was refused, if the credentials are real (else nobody's)."""
    token = _bearer(request)
    user: Any
    with ExitStack() as acting, transaction.atomic():
        if token is not None:
            actor = actor_for_token(token, acting=acting)
            if actor is None:
                return
            user, detail = actor.user, f"API token {token.split('_')[1]}"
        else:
            user, detail = request.user, "API, signed-in session"
            set_db_context(user_id=user.pk)
        do_record_security_event(
            user, SecurityEventKind.API_RATE_LIMITED, request=request, detail=detail
        )


class ApiRateLimitMiddleware:
    """429 with Retry-After for an API caller over its allowance (see the module's docstring).

    Before TenantMiddleware, so the count commits in a statement of its own and a refused
    request does no work: no token check, no tenant context, no audit event but the one notice.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        key = caller_key(request)
        if key is None:
            return self.get_response(request)
        verdict = take(key)
        if verdict.allowed:
            return self.get_response(request)
        if verdict.notify:
            record_refusal(request)
        response = JsonResponse({"detail": limit_message(verdict.retry_after)}, status=429)
        response.headers["Retry-After"] = str(verdict.retry_after)
        return response
