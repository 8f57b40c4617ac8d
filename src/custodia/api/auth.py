"""Who is calling the API: a bearer token narrowed to its scopes, or the browser session."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja.security import APIKeyCookie, HttpBearer

from custodia.accounts.mfa import refuse_token_without_factor
from custodia.core.actor import Actor
from custodia.core.requestctx import SAFE_METHODS, presents_bearer_token
from custodia.tenancy.actors import actor_for_token


class BearerTokenAuth(HttpBearer):
    """`Authorization: Bearer cst_...`: a personal token, narrowed to its scopes."""

    def authenticate(self, request: HttpRequest, token: str) -> Actor | None:
        # Acting from here to the end of the request, in TenantMiddleware's acting scope.
        actor = actor_for_token(
            token,
            acting=request.acting,  # type: ignore[attr-defined]
            durable=request.method not in SAFE_METHODS,
        )
        if actor is not None:
            # A genuine token only: a 403 that says why (the business requires MFA of its owner).
            refuse_token_without_factor(actor)
            request.actor = actor  # type: ignore[attr-defined]
            request.user = actor.user
        return actor


class SessionAuth(APIKeyCookie):
    """The browser session (with CSRF), for people using the API from the web app."""

    param_name = settings.SESSION_COOKIE_NAME

    def __call__(self, request: HttpRequest) -> Actor | None:
        # A request that presents a token is answered for the token alone: a wrong token is a
        # 401, not a fall-back to whatever session cookie rides along (nor a CSRF 403).
        if presents_bearer_token(request):
            return None
        # Without a session actor there is nothing to protect with CSRF: answer 401, not 403.
        if getattr(request, "actor", None) is None:
            return None
        return super().__call__(request)  # checks CSRF on unsafe methods, then authenticate()

    def authenticate(self, request: HttpRequest, key: str | None) -> Actor | None:
        return getattr(request, "actor", None) if key else None


def actor_of(request: HttpRequest) -> Actor:
    """The authenticated actor of an API request (auth guarantees one)."""
    actor = getattr(request, "auth", None)
    if not isinstance(actor, Actor):
        raise PermissionDenied("No business membership.")
    return actor
