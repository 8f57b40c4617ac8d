"""The request pipeline: every middleware a request passes, in order (settings.MIDDLEWARE).

Custodia's own are all importable from here, so this list and the setting are the one place
to read the order (a test keeps them equal). On the way in:

1. RequestContextMiddleware: a request id and the client address (core/requestctx.py), for the
   logs and the audit trail; the id is answered in X-Request-ID. MetricsMiddleware
   (telemetry/metrics.py): every answer counted and timed by method, route name and status
   class.
2. RefuseUnsafeMethodsMiddleware: TRACE, TRACK and CONNECT are refused before anything runs.
3. django SecurityMiddleware, SecurityHeadersMiddleware, csp CSPMiddleware: HSTS, nosniff,
   Permissions-Policy, CORP, no caching of personal pages, the Content Security Policy.
   ProbeMiddleware: /healthz, /readyz and /metrics (web/probes/views.py) answer here, with the
   headers above and before any session, host check, transaction or audit row.
4. PublicHostMiddleware: an allowed host name, and no port but the public URL's (else 400).
5. whitenoise: static files answer here, with the headers above and no database touched.
6. django sessions, common, CSRF, authentication, messages; HashingDoorMiddleware: a login or
   signup form waits for one of the worker's few sign-in turns (accounts/hashpool.py:
   SignInGate) and gets the 503 before any work is done for it when none comes or the
   password-hashing pool is full; clickjacking; allauth's account middleware.
7. SessionLifetimeMiddleware (accounts/sessions.py): ends idle and over-age sessions before
   anything acts for them; tracks the session's last use at most once a minute.
8. ApiRateLimitMiddleware (api/ratelimit.py): counts API requests per token or session in a
   statement of its own and answers 429 before any work.
9. TenantMiddleware: one transaction for the rest of the request, acting as the session's
   actor (tenancy/actors.py, `core.actor.acting_as`) or, for a bearer token, as the token's
   (the API's authentication acts in the same scope); a 5xx rolls it back; a 403 or 404
   answered to a member is an `access.denied` audit event.
10. MFAPolicyMiddleware (accounts/mfa.py): a business that requires a second factor sends
    members without one to set it up.
11. BusyMiddleware: a sign-in whose hash the pool refused (full, or a process lost) gets a 503
    with Retry-After.
12. StepUpMiddleware: an action that needs a fresh proof of identity sends the person to it.
13. CryptoErrorMiddleware: an unreadable stored value is a 409 or 410 page, not a 500.
14. BusinessClosedMiddleware: a write the database refused because the business is closed
    (core/closed.py) is a 409 page saying until when, not a 500 or a bare 403.
Then the view: a page (web/) or an API operation (api/).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import DisallowedHost
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.http.request import split_domain_port
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import resolve, reverse
from django.utils.http import urlencode

from custodia.accounts import hashpool
from custodia.accounts.hashers import HashingBusy
from custodia.accounts.links import public_port
from custodia.accounts.mfa import MFAPolicyMiddleware
from custodia.accounts.sessions import SessionLifetimeMiddleware
from custodia.accounts.stepup import SessionAuthentication, StepUpRequired, is_fresh
from custodia.api.ratelimit import ApiRateLimitMiddleware
from custodia.core import requestctx
from custodia.core.actor import Actor, acting_as
from custodia.core.audit import AuditAction, Outcome, record
from custodia.core.closed import BusinessClosed
from custodia.core.dbcontext import clear, cleared_unless_set, transaction_failed
from custodia.core.requestctx import API_PREFIX, SAFE_METHODS, presents_bearer_token
from custodia.crypto.errors import CryptoError, public_answer
from custodia.telemetry.metrics import MetricsMiddleware
from custodia.tenancy.actors import actor_for_session

# Middleware of other modules, listed in the pipeline from here (settings.MIDDLEWARE).
__all__ = [
    "ApiRateLimitMiddleware",
    "BusinessClosedMiddleware",
    "BusyMiddleware",
    "CryptoErrorMiddleware",
    "HashingDoorMiddleware",
    "MFAPolicyMiddleware",
    "MetricsMiddleware",
    "ProbeMiddleware",
    "PublicHostMiddleware",
    "RefuseUnsafeMethodsMiddleware",
    "RequestContextMiddleware",
    "SecurityHeadersMiddleware",
    "SessionLifetimeMiddleware",
    "StepUpMiddleware",
    "TenantMiddleware",
]

REFUSED_METHODS = frozenset({"TRACE", "TRACK", "CONNECT"})
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=(), interest-cohort=()"
)


class RequestContextMiddleware:
    """A fresh request id and the client's address, for the logs and the audit trail
    (core/requestctx.py); the id is answered in `X-Request-ID`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with requestctx.serving(request) as info:
            response = self.get_response(request)
        response["X-Request-ID"] = info.request_id
        return response


# The operators' probes (web/probes/views.py, named in urls.py), answered by ProbeMiddleware.
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class ProbeMiddleware:
    """Liveness, readiness and metrics answer here: after the security headers, before the
    host check (a load balancer names a node by its address), sessions, CSRF and the tenant's
    transaction, so a probe sets no cookie and writes no session or audit row."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info not in PROBE_PATHS:
            return self.get_response(request)
        match = resolve(request.path_info)
        request.resolver_match = match
        response: HttpResponse = match.func(request, *match.args, **match.kwargs)
        response.headers["Cache-Control"] = "no-store"
        return response


class PublicHostMiddleware:
    """A request must name an allowed host, and no port but the public URL's: else 400.

    Django checks the Host header's name against ALLOWED_HOSTS and ignores its port, so a link
    built from `Host: localhost:31337` would point at another port of the real host. A Host that
    names no port (what browsers send for their scheme's default, and what proxies pass on) is
    judged by its name alone, as Django does. Mail links never come from the Host at all
    (accounts/links.py).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        host = request.get_host()  # DisallowedHost (400) for a name outside ALLOWED_HOSTS
        _, port = split_domain_port(host)
        if port and (not port.isdigit() or int(port) != public_port()):
            raise DisallowedHost(f"Invalid HTTP_HOST header: {host!r}. {WRONG_PORT}")
        return self.get_response(request)


WRONG_PORT = "Its port is not the one of CUSTODIA_PUBLIC_URL."


class RefuseUnsafeMethodsMiddleware:
    """TRACE and friends are refused before anything else runs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in REFUSED_METHODS:
            return HttpResponseNotAllowed(
                ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
            )
        return self.get_response(request)


class SecurityHeadersMiddleware:
    """Permissions-Policy, CORP, and no caching of anything shown to a logged-in person."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        user = getattr(request, "user", None)
        private = (user is not None and user.is_authenticated) or request.path.startswith("/api/")
        # A view's own no-store stays as it wrote it (a visit photo's "private, no-store").
        if private and "no-store" not in response.headers.get("Cache-Control", ""):
            response.headers["Cache-Control"] = "no-store"
        elif "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-cache"
        return response


class TenantMiddleware:
    """Everything after this runs inside one transaction that sees only the actor's rows.

    A response of 500 or more rolls the transaction back, so nothing is half-written. A 403 or
    404 answered to a member of a business is an audit event (someone else's object, or an
    action their role lacks). A GET or HEAD commits without waiting for its WAL flush: it
    writes only read events, and docs/audit.md states what a database crash can cost them.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        durable = request.method not in SAFE_METHODS
        # The transaction ends first, then the acting scope: the database context ends with the
        # transaction, the current actor with the scope.
        with ExitStack() as acting, transaction.atomic():
            request.actor = None  # type: ignore[attr-defined]
            # The API's bearer-token authentication acts in this scope too (api/auth.py).
            request.acting = acting  # type: ignore[attr-defined]
            # Each way sets every setting, so nothing of an earlier request can linger.
            pending: AbstractContextManager[None] = nullcontext()
            if request.user.is_authenticated:
                # The context is set with the membership, in one round trip.
                actor = actor_for_session(request, durable=durable)
                if actor is not None:
                    acting.enter_context(acting_as(actor, durable=durable, context_set=True))
                    request.actor = actor  # type: ignore[attr-defined]
            elif presents_token(request):
                # Its authentication sets the context (or an empty one) in its first query.
                pending = cleared_unless_set()
            else:
                clear()
            with pending:
                response = self.get_response(request)
            if response.status_code >= 500:
                transaction.set_rollback(True)
            refused = _refused_actor(request, response)
            if refused is not None and not transaction.get_rollback():
                record_refusal(request, refused, response.status_code)
                refused = None
        if refused is not None:
            # The answer undid the request's writes (an API error does): the refusal is still
            # on record, in a transaction of its own.
            with transaction.atomic(), acting_as(refused):
                record_refusal(request, refused, response.status_code)
        return response


def presents_token(request: HttpRequest) -> bool:
    """An API request with a bearer token, which the API's authentication answers alone."""
    return request.path.startswith(API_PREFIX) and presents_bearer_token(request)


REFUSALS = frozenset({403, 404})


def _refused_actor(request: HttpRequest, response: HttpResponse) -> Actor | None:
    info = requestctx.current()
    if response.status_code not in REFUSALS and not (info and info.refusals):
        return None
    actor = getattr(request, "actor", None) or getattr(request, "auth", None)
    return actor if isinstance(actor, Actor) else None


def record_refusal(request: HttpRequest, actor: Actor, status: int) -> None:
    """`access.denied` events: each object an access function refused, or else the route (a
    pattern, never the raw path, which may carry a secret such as an invitation link) and the
    id it named."""
    match = request.resolver_match
    route = match.route if match is not None else ""
    info = requestctx.current()
    refusals = list(info.refusals) if info is not None else []
    if not refusals:
        named = [str(value) for value in (match.kwargs.values() if match is not None else ())]
        refusals = [("", next((value for value in named if _is_uuid(value)), ""))]
    for target_type, target_id in refusals:
        record(
            AuditAction.ACCESS_DENIED,
            actor=actor,
            target_type=target_type,
            target_id=target_id,
            # So that the owner's filter by client finds the attempts on that client.
            client_id=target_id if target_type == "client" else None,
            outcome=Outcome.DENIED,
            detail={"method": request.method, "route": route, "status": status},
        )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


BUSY_MESSAGE = "Too many sign-ins are being checked right now. Please try again in a few seconds."


def busy_response(request: HttpRequest) -> HttpResponse:
    """The 503 with Retry-After for a request that found no room to hash a password."""
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": BUSY_MESSAGE}, status=503)
    else:
        response = render(
            request, "web/error.html", {"title": "Busy", "message": BUSY_MESSAGE}, status=503
        )
    response.headers["Retry-After"] = "2"
    return response


class BusyMiddleware:
    """A request that found every password-hashing slot taken gets a 503 with Retry-After.

    Last in the list, so the 503 passes through the request's transaction (rolled back) and every
    header middleware on its way out.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, HashingBusy):
            return None
        return busy_response(request)


class HashingDoorMiddleware:
    """Sign-in and sign-up forms pass a door before any work is done for them.

    The door (accounts/hashpool.py: SignInGate) lets a web worker work on a few at once
    (SIGN_IN_SLOTS); a few more wait there, asleep, for their turn; the rest, and any while the
    pool itself is full and refusing, get BusyMiddleware's 503 at once. So a storm of sign-ins
    costs the other requests a few sleeping threads, not a login's work on every thread.
    It decides before any account is looked up, so it tells nothing about one. The pool's bound
    still holds for every hash; this only keeps the requests that would meet it from piling up.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        pool = settings.PASSWORD_HASH_SOCKET
        if not (
            pool
            and request.method == "POST"
            and request.path_info in {reverse("account_login"), reverse("account_signup")}
        ):
            return self.get_response(request)
        gate = hashpool.sign_in_gate(
            settings.SIGN_IN_SLOTS, settings.SIGN_IN_WAITING, settings.SIGN_IN_WAIT_SECONDS
        )
        with gate.entry() as admitted:
            if admitted and hashpool.has_room(pool):
                return self.get_response(request)
        # Read the form (bounded by DATA_UPLOAD_MAX_MEMORY_SIZE) before answering: a body left
        # unread can make granian drop the kept-alive connection under the next request.
        request.body  # noqa: B018
        return busy_response(request)


class CryptoErrorMiddleware:
    """A page whose stored value fails its integrity check, or whose key was destroyed: a 409
    or 410 with a plain message instead of a 500 (crypto/errors.py), and the request's writes
    undone like a 500's. The failure itself is logged where it was found (crypto/fields.py),
    with ids only. API requests get the same answer from the API's own handler (api/errors.py)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, CryptoError):
            return None
        info = requestctx.current()
        status, _code, message = public_answer(exception, info.request_id if info else "")
        context = {"title": "Cannot show this record", "message": message}
        response = render(request, "web/error.html", context, status=status)
        # After rendering (the page's menus read the database too).
        transaction.set_rollback(True)
        return response


class BusinessClosedMiddleware:
    """A write to a closed business, refused by the database (core/closed.py): a 409 page
    that says until when and that an owner can reopen it; the request's writes are undone.

    When the refusal left the transaction unusable (a write outside an action's own atomic
    block), the page is rendered without the layout's database reads.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, BusinessClosed):
            return None
        if request.path.startswith("/api/"):
            return None  # the API answers it in its own JSON shape (api/errors.py)
        context = {"title": "This business is closed", "message": str(exception)}
        if transaction_failed():
            transaction.set_rollback(True)
            html = render_to_string("web/error_plain.html", context)
            return HttpResponse(html, status=BusinessClosed.status_code)
        response = render(request, "web/error.html", context, status=BusinessClosed.status_code)
        transaction.set_rollback(True)
        return response


# allauth's own account-changing pages, whose actions allauth owns: the step-up guards them at
# the door instead (url name -> the methods guarded). allauth's re-authentication accepts the
# password alone; these need the full proof (password plus second factor, or a passkey). The
# recovery codes are shown once, right after they are made (MFA_RECOVERY_CODES_SHOW_ONCE), by a
# request that the guarded POST before it has already passed.
STEP_UP_VIEWS: dict[str, frozenset[str]] = {
    "mfa_activate_totp": frozenset({"POST"}),
    "mfa_deactivate_totp": frozenset({"POST"}),
    "mfa_generate_recovery_codes": frozenset({"POST"}),
    "mfa_add_webauthn": frozenset({"POST"}),
    "mfa_remove_webauthn": frozenset({"POST"}),
    "account_email": frozenset({"POST"}),
    "account_change_password": frozenset({"POST"}),
    "account_set_password": frozenset({"POST"}),
}


class StepUpMiddleware:
    """Sends a person whose action needs a fresh proof of identity to get one.

    Custodia's actions raise StepUpRequired (the API answers it itself: 403 with the message);
    allauth's account-changing pages in STEP_UP_VIEWS are checked before their view runs. A form
    is not replayed: the person comes back to the page they submitted from and submits again.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: Any
    ) -> HttpResponse | None:
        match = request.resolver_match
        guarded = STEP_UP_VIEWS.get((match.url_name or "") if match else "", frozenset())
        if request.method not in guarded or not request.user.is_authenticated:
            return None
        if is_fresh(SessionAuthentication(request).stepped_up_at()):
            return None
        return self._send_to_step_up(request, StepUpRequired())

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, StepUpRequired) or request.path.startswith("/api/"):
            return None
        if not request.user.is_authenticated:
            return None
        return self._send_to_step_up(request, exception)

    @staticmethod
    def _send_to_step_up(request: HttpRequest, exception: StepUpRequired) -> HttpResponse:
        back = request.get_full_path()
        if request.method != "GET":
            referer = urlsplit(request.headers.get("Referer", ""))
            same_site = referer.netloc == request.get_host() and referer.scheme == "https"
            back = referer.path if same_site and referer.path else reverse("dashboard")
            messages.info(request, f"{exception} Then submit again.")
        return redirect(f"{reverse('step_up')}?{urlencode({'next': back})}")
