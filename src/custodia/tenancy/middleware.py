"""One transaction per request, with the RLS settings made from the authenticated membership."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse

from custodia.accounts.stepup import SessionAuthentication
from custodia.tenancy import access
from custodia.tenancy.context import (
    Actor,
    activate,
    activate_member,
    clear,
    cleared_unless_set,
    set_db_context,
)
from custodia.web import requestctx

if TYPE_CHECKING:
    from django.contrib.sessions.backends.base import SessionBase

    from custodia.accounts.models import User
    from custodia.tenancy.models import Membership

ACTIVE_BUSINESS_SESSION_KEY = "custodia.business_id"
# Set when the business a session acted for went away (deleted, or the membership ended): the
# session acts for no business until the person chooses one, never silently for another.
CHOOSE_BUSINESS_SESSION_KEY = "custodia.choose_business"
BUSINESS_GONE = (
    "The business you were working in is no longer available to you. Choose a business to continue."
)


def act_for(session: SessionBase, business_id: object) -> None:
    """The session acts for this business from now on (a switch, an accepted invitation)."""
    session[ACTIVE_BUSINESS_SESSION_KEY] = str(business_id)
    session.pop(CHOOSE_BUSINESS_SESSION_KEY, None)


def forget_business(session: SessionBase) -> None:
    """The session acts for no business until the person chooses one."""
    session.pop(ACTIVE_BUSINESS_SESSION_KEY, None)
    session[CHOOSE_BUSINESS_SESSION_KEY] = True


def session_membership(
    request: HttpRequest, user: User, *, durable: bool = True
) -> Membership | None:
    """The membership the session acts for, with the transaction's context set to it (to the
    user alone without one) in one round trip. When the business it named is no longer the
    user's, the session forgets it and says so, rather than acting for another of theirs: a
    form opened for the old business must not submit into a different one."""
    session = request.session
    named = session.get(ACTIVE_BUSINESS_SESSION_KEY)
    if not named and session.get(CHOOSE_BUSINESS_SESSION_KEY):
        set_db_context(user_id=user.pk, durable=durable)
        return None
    try:
        business_id = uuid.UUID(str(named)) if named else None
    except ValueError:
        set_db_context(user_id=user.pk, durable=durable)
        grant = None
    else:
        grant = activate_member(user.pk, business_id, durable=durable)
    if grant is None:
        if named:
            forget_business(session)
            messages.warning(request, BUSINESS_GONE, fail_silently=True)
        return None
    return access.granted_membership(grant)


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
        with transaction.atomic():
            request.actor = None  # type: ignore[attr-defined]
            user = request.user
            # Each way sets every setting, so nothing of an earlier request can linger.
            pending: AbstractContextManager[None] = nullcontext()
            if user.is_authenticated:
                membership = session_membership(request, user, durable=durable)  # type: ignore[arg-type]
                if membership is not None:
                    actor = Actor(
                        user,  # type: ignore[arg-type]
                        membership,
                        authentication=SessionAuthentication(request),
                    )
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
            with transaction.atomic():
                activate(refused)
                record_refusal(request, refused, response.status_code)
        return response


SAFE_METHODS = frozenset({"GET", "HEAD"})
API_PREFIX = "/api/"


def presents_token(request: HttpRequest) -> bool:
    """An API request with a bearer token, which the API's authentication answers alone."""
    return request.path.startswith(API_PREFIX) and request.headers.get(
        "Authorization", ""
    ).lower().startswith("bearer")


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
    from custodia.audit.actions import record
    from custodia.audit.events import AuditAction, Outcome

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
