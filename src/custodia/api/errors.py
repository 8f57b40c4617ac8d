"""How the API says no: every error in one JSON shape, `{"detail": ..., "errors": {...}}`.

Each answer rolls back whatever the request wrote so far, names no cause of a server fault, and is
listed in the OpenAPI document of every operation (ERROR_RESPONSES, ERROR_SCHEMA).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as RequestInvalid
from ninja.renderers import JSONRenderer

from custodia.api.inputs import MalformedBody
from custodia.core import requestctx
from custodia.core.closed import BusinessClosed
from custodia.core.requestctx import body_too_large_message
from custodia.crypto.errors import CryptoError, public_answer
from custodia.crypto.fields import request_failure
from custodia.tenancy.paging import InvalidCursor

request_logger = logging.getLogger("django.request")
INVALID_INPUT = "Invalid input."
# The API's renderer (api/app.py), so an error is rendered like any other answer.
RENDERER = JSONRenderer()

# The errors any operation may answer with, in the one JSON shape the handlers below produce.
ERROR_RESPONSES = {
    "401": "No valid session or bearer token.",
    "403": "The role, the token's scopes or the CSRF check do not allow it.",
    "404": "No such record within your reach (or no such endpoint).",
    "409": "A write to a business that is closed (read-only until its purge; an owner can reopen"
    " it): `code` is `closed`.",
    "422": "Invalid input; `errors` names the fields.",
    "429": "Over the rate limit of the token or session; `Retry-After` says when to try again.",
}
# Only where the operation takes a body.
BODY_ERROR_RESPONSES = {
    "413": "The request body is larger than the server accepts (DATA_UPLOAD_MAX_MEMORY_SIZE).",
}
ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["detail"],
}


def _refuse(request: HttpRequest, status: int, body: dict[str, Any]) -> HttpResponse:
    # An error answer writes nothing: undo whatever an earlier step of this request did
    # (TenantMiddleware runs every request in one transaction).
    if transaction.get_connection().in_atomic_block:
        transaction.set_rollback(True)
    content = RENDERER.render(request, body, response_status=status)
    return HttpResponse(
        content, status=status, content_type=f"{RENDERER.media_type}; charset={RENDERER.charset}"
    )


def _errors_from(exc: ValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {
            field: [str(m) for e in errors for m in e.messages]
            for field, errors in exc.error_dict.items()
        }
    return {"__all__": [str(m) for m in exc.messages]}


# Friendlier words for pydantic's commonest complaints (its own never echo the input either).
_MESSAGES = {
    "extra_forbidden": "Unknown field.",
    "missing": "This field is required.",
    "json_invalid": "Malformed JSON.",
}


def _field_of(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie", "form"}:
        source = parts.pop(0)
        # Every body here is one schema parameter named `payload`: report its fields by name.
        if source == "body" and parts and parts[0] == "payload":
            parts.pop(0)
    return ".".join(parts) or "__all__"


def _request_errors(exc: RequestInvalid) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for error in exc.errors:
        message = _MESSAGES.get(error.get("type", ""), str(error.get("msg", "Invalid value.")))
        message = message.removeprefix("Value error, ")
        errors.setdefault(_field_of(error.get("loc", ())), []).append(message)
    return errors


def validation_failed(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    """An action refused the input: 422 with its messages by field."""
    return _refuse(request, 422, {"detail": INVALID_INPUT, "errors": _errors_from(exc)})


def request_invalid(request: HttpRequest, exc: RequestInvalid) -> HttpResponse:
    """The request did not match its schema: 422 with pydantic's findings by field."""
    return _refuse(request, 422, {"detail": INVALID_INPUT, "errors": _request_errors(exc)})


def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    """Missing, or outside the actor's reach: the same 404 either way."""
    return _refuse(request, 404, {"detail": "Not found."})


def forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    """The role or the token's scopes do not allow it: 403."""
    message = str(exc) or "You are not allowed to do that."
    return _refuse(request, 403, {"detail": message})


def business_closed(request: HttpRequest, exc: BusinessClosed) -> HttpResponse:
    """A write to a closed business, refused by the database (core/closed.py): 409, saying
    until when and that an owner can reopen it."""
    return _refuse(request, BusinessClosed.status_code, {"detail": str(exc), "code": "closed"})


def unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    """No valid session or token: 401."""
    response = _refuse(
        request, 401, {"detail": "Authentication required: a session or a valid bearer token."}
    )
    response["WWW-Authenticate"] = "Bearer"
    return response


def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    """ninja's own refusals (unparsable body, failed CSRF check) in the same JSON shape."""
    if isinstance(exc.__cause__, MalformedBody):
        return _refuse(
            request, 422, {"detail": INVALID_INPUT, "errors": {"__all__": [str(exc.__cause__)]}}
        )
    if exc.status_code == 403 and "CSRF" in exc.message:
        return _refuse(request, 403, {"detail": "CSRF check failed: send the X-CSRFToken header."})
    return _refuse(request, exc.status_code, {"detail": exc.message})


def too_large(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE: 413, unread (it was a 500)."""
    return _refuse(request, 413, {"detail": body_too_large_message()})


def unreadable(request: HttpRequest, exc: CryptoError) -> HttpResponse:
    """A stored value failed its integrity check (409) or its key is destroyed (410): logged
    where it was found, answered without details (crypto/errors.py)."""
    info = requestctx.current()
    status, code, message = public_answer(exc, info.request_id if info else "")
    return _refuse(request, status, {"detail": message, "code": code})


def server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    """Anything unexpected: a 500 that names no cause."""
    failure = request_failure(exc)
    if failure is not None:
        # An unreadable stored value, wrapped by the response's serializer.
        return unreadable(request, failure)
    if settings.DEBUG:
        raise exc
    # Logged as Django logs any 500 (the middleware rolls the request back); the answer says
    # nothing about the cause.
    request_logger.error("API error %s %s", request.method, request.path, exc_info=exc)
    return _refuse(request, 500, {"detail": "Something went wrong on our side. Try again later."})


def invalid_cursor(request: HttpRequest, exc: InvalidCursor) -> HttpResponse:
    """A cursor this server did not issue for this list (tampered, truncated, another list's)."""
    return _refuse(request, 400, {"detail": str(exc)})


# ninja picks the handler of the nearest class in the exception's MRO.
HANDLERS: dict[type[Exception], Callable[[HttpRequest, Any], HttpResponse]] = {
    ValidationError: validation_failed,
    RequestInvalid: request_invalid,
    Http404: not_found,
    BusinessClosed: business_closed,
    PermissionDenied: forbidden,
    AuthenticationError: unauthenticated,
    HttpError: http_error,
    RequestDataTooBig: too_large,
    CryptoError: unreadable,
    InvalidCursor: invalid_cursor,
    Exception: server_error,
}


def install_error_handlers(api: NinjaAPI) -> None:
    """Answer every error of `api` in the one JSON shape."""
    for exc_class, handler in HANDLERS.items():
        api.add_exception_handler(exc_class, handler)
