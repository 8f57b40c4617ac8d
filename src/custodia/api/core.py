"""The JSON API: one NinjaAPI, session or bearer-token auth, errors that explain themselves."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError
from ninja.security import APIKeyCookie, HttpBearer

from custodia.accounts.access import actor_for_token
from custodia.tenancy.context import Actor, activate


class BearerTokenAuth(HttpBearer):
    """`Authorization: Bearer cst_...`: a personal token, narrowed to its scopes."""

    def authenticate(self, request: HttpRequest, token: str) -> Actor | None:
        actor = actor_for_token(token)
        if actor is not None:
            activate(actor)
            request.actor = actor  # type: ignore[attr-defined]
            request.user = actor.user
        return actor


class SessionAuth(APIKeyCookie):
    """The browser session (with CSRF), for people using the API from the web app."""

    param_name = "__Host-sessionid"

    def authenticate(self, request: HttpRequest, key: str | None) -> Actor | None:
        return getattr(request, "actor", None)


api = NinjaAPI(
    title="Custodia API",
    version="1",
    urls_namespace="api",
    auth=[BearerTokenAuth(), SessionAuth(csrf=True)],
    docs_url="/docs",
)


def _errors_from(exc: ValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {field: [str(m) for e in errors for m in e.messages] for field, errors in exc.error_dict.items()}
    return {"__all__": [str(m) for m in exc.messages]}


@api.exception_handler(ValidationError)
def validation_failed(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return api.create_response(request, {"detail": "Invalid input.", "errors": _errors_from(exc)}, status=422)


@api.exception_handler(Http404)
def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return api.create_response(request, {"detail": "Not found."}, status=404)


@api.exception_handler(PermissionDenied)
def forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    message = str(exc) or "You are not allowed to do that."
    return api.create_response(request, {"detail": message}, status=403)


@api.exception_handler(AuthenticationError)
def unauthenticated(request: HttpRequest, exc: Any) -> HttpResponse:
    return api.create_response(
        request, {"detail": "Authentication required: a session or a valid bearer token."}, status=401
    )


def actor_of(request: HttpRequest) -> Actor:
    """The authenticated actor of an API request (auth guarantees one)."""
    actor = getattr(request, "actor", None)
    if actor is None:
        raise PermissionDenied("No business membership.")
    return actor
