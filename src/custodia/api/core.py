"""The JSON API: one NinjaAPI, session or bearer-token auth, errors that explain themselves."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import typing
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, TypeVar

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as RequestInvalid
from ninja.pagination import LimitOffsetPagination, paginate
from ninja.parser import Parser
from ninja.security import APIKeyCookie, HttpBearer
from ninja.types import DictStrAny
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from custodia.accounts.mfa import refuse_token_without_factor
from custodia.core import requestctx
from custodia.core.actor import Actor
from custodia.core.audit import record_bulk_read
from custodia.core.requestctx import SAFE_METHODS, body_too_large_message
from custodia.crypto.errors import CryptoError, public_answer
from custodia.crypto.fields import request_failure
from custodia.tenancy.actors import actor_for_token

T = TypeVar("T")
request_logger = logging.getLogger("django.request")
INVALID_INPUT = "Invalid input."


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
        if request.headers.get("Authorization", "").lower().startswith("bearer"):
            return None
        # Without a session actor there is nothing to protect with CSRF: answer 401, not 403.
        if getattr(request, "actor", None) is None:
            return None
        return super().__call__(request)  # checks CSRF on unsafe methods, then authenticate()

    def authenticate(self, request: HttpRequest, key: str | None) -> Actor | None:
        return getattr(request, "actor", None) if key else None


class MalformedBody(ValueError):
    """The request body is not JSON; the message says where, never what."""


class JsonParser(Parser):
    """JSON bodies; a malformed one becomes a 422 that names the position of the fault."""

    def parse_body(self, request: HttpRequest) -> DictStrAny:
        try:
            return super().parse_body(request)
        except json.JSONDecodeError as exc:
            raise MalformedBody(
                f"Malformed JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
            ) from None
        except UnicodeDecodeError:
            raise MalformedBody("Malformed JSON: the body is not UTF-8.") from None


# The errors any operation may answer with, in the one JSON shape the handlers below produce.
ERROR_RESPONSES = {
    "401": "No valid session or bearer token.",
    "403": "The role, the token's scopes or the CSRF check do not allow it.",
    "404": "No such record within your reach (or no such endpoint).",
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


class CustodiaAPI(NinjaAPI):
    """NinjaAPI whose OpenAPI document lists the error answers of every operation."""

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(*args, **kwargs)
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                errors = dict(ERROR_RESPONSES)
                if "requestBody" in operation:
                    errors.update(BODY_ERROR_RESPONSES)
                for status, description in errors.items():
                    responses.setdefault(
                        status,
                        {
                            "description": description,
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Error"}
                                }
                            },
                        },
                    )
        return schema


api = CustodiaAPI(
    title="Custodia API",
    version="1",
    description=(
        "Custodia's JSON API. Authenticate with a personal token (`Authorization: Bearer cst_...`,"
        " limited to its scopes) or, from the web app, with the session cookie and a CSRF token."
        ' Errors are JSON: `{"detail": message}`, plus `errors` by field for 422.'
        " Each token, and each signed-in session, may make `CUSTODIA_API_RATE_LIMIT` requests a"
        " minute (120 unless the operator set another): that many at once after a quiet minute,"
        " then one every 60/N seconds; more are answered 429 with `Retry-After` in seconds."
        " A body over 2.5 MB is answered 413. Visit times lie between 2000-01-01 and 2099-12-31."
    ),
    urls_namespace="api",
    auth=[BearerTokenAuth(), SessionAuth(csrf=True)],
    docs_url="/docs",
    parser=JsonParser(),
)


def _refuse(request: HttpRequest, status: int, body: dict[str, Any]) -> HttpResponse:
    # An error answer writes nothing: undo whatever an earlier step of this request did
    # (TenantMiddleware runs every request in one transaction).
    if transaction.get_connection().in_atomic_block:
        transaction.set_rollback(True)
    return api.create_response(request, body, status=status)


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


@api.exception_handler(ValidationError)
def validation_failed(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    """An action refused the input: 422 with its messages by field."""
    return _refuse(request, 422, {"detail": INVALID_INPUT, "errors": _errors_from(exc)})


@api.exception_handler(RequestInvalid)
def request_invalid(request: HttpRequest, exc: RequestInvalid) -> HttpResponse:
    """The request did not match its schema: 422 with pydantic's findings by field."""
    return _refuse(request, 422, {"detail": INVALID_INPUT, "errors": _request_errors(exc)})


@api.exception_handler(Http404)
def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    """Missing, or outside the actor's reach: the same 404 either way."""
    return _refuse(request, 404, {"detail": "Not found."})


@api.exception_handler(PermissionDenied)
def forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    """The role or the token's scopes do not allow it: 403."""
    message = str(exc) or "You are not allowed to do that."
    return _refuse(request, 403, {"detail": message})


@api.exception_handler(AuthenticationError)
def unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    """No valid session or token: 401."""
    response = _refuse(
        request, 401, {"detail": "Authentication required: a session or a valid bearer token."}
    )
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    """ninja's own refusals (unparsable body, failed CSRF check) in the same JSON shape."""
    if isinstance(exc.__cause__, MalformedBody):
        return _refuse(
            request, 422, {"detail": INVALID_INPUT, "errors": {"__all__": [str(exc.__cause__)]}}
        )
    if exc.status_code == 403 and "CSRF" in exc.message:
        return _refuse(request, 403, {"detail": "CSRF check failed: send the X-CSRFToken header."})
    return _refuse(request, exc.status_code, {"detail": exc.message})


@api.exception_handler(RequestDataTooBig)
def too_large(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE: 413, unread (it was a 500)."""
    return _refuse(request, 413, {"detail": body_too_large_message()})


@api.exception_handler(CryptoError)
def unreadable(request: HttpRequest, exc: CryptoError) -> HttpResponse:
    """A stored value failed its integrity check (409) or its key is destroyed (410): logged
    where it was found, answered without details (crypto/errors.py)."""
    info = requestctx.current()
    status, code, message = public_answer(exc, info.request_id if info else "")
    return _refuse(request, status, {"detail": message, "code": code})


@api.exception_handler(Exception)
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


def actor_of(request: HttpRequest) -> Actor:
    """The authenticated actor of an API request (auth guarantees one)."""
    actor = getattr(request, "auth", None)
    if not isinstance(actor, Actor):
        raise PermissionDenied("No business membership.")
    return actor


def paginated(view: Callable[..., Any]) -> Callable[..., Any]:
    """ninja's `@paginate` (limit/offset), for views written with postponed annotations.

    The paginating wrapper lives in ninja's module, where names like `VisitFilters` in a string
    annotation cannot be resolved; resolving them against the view's own module first fixes that.
    """
    view.__annotations__ = typing.get_type_hints(view, include_extras=True)
    return paginate(BoundedLimitOffset)(view)  # type: ignore[no-any-return]


# Far past any business's row count, and far inside PostgreSQL's bigint: a larger offset was a 500.
MAX_OFFSET = 1_000_000


class BoundedLimitOffset(LimitOffsetPagination):
    """ninja's limit/offset pagination with an upper bound on the offset (a 422 past it); a
    page of customer records is a bulk read in the audit trail."""

    class Input(Schema):
        limit: int = Field(
            settings.NINJA_PAGINATION_PER_PAGE, ge=1, le=settings.NINJA_PAGINATION_MAX_LIMIT
        )
        offset: int = Field(0, ge=0, le=MAX_OFFSET)

    def paginate_queryset(
        self, queryset: QuerySet[Any], pagination: Any, request: HttpRequest, **params: Any
    ) -> Any:
        """ninja's page, evaluated once, and recorded."""
        page = super().paginate_queryset(queryset, pagination, request, **params)
        items = page[self.items_attribute]
        record_bulk_read(actor_of(request), items)
        return page


def resolve_reference(
    field: str, lookup: Callable[[Actor, object], T], actor: Actor, value: object
) -> T:
    """An object a request body names by id, through its access function; else a 422 on `field`.

    Another business's id reads exactly like one that does not exist.
    """
    try:
        return lookup(actor, value)
    except Http404:
        raise ValidationError({field: "No such record."}) from None


# --- Input building blocks --------------------------------------------------------------------


# PostgreSQL text cannot hold NUL (a 500 before): every text input refuses it, and says so.
NO_NUL = r"^[^\x00]*$"
# A name: some character that is neither white space nor NUL.
NON_BLANK_TEXT = r"^[^\x00]*[^\s\x00][^\x00]*$"


def _no_nul_in_schema(schema: dict[str, Any], model: type[Any]) -> None:
    # The OpenAPI document states the NUL rule on every free-text field of a body.
    for prop in schema.get("properties", {}).values():
        for option in prop.get("anyOf", [prop]):
            free_text = not {"pattern", "format", "enum", "const"} & set(option)
            if option.get("type") == "string" and free_text:
                option["pattern"] = NO_NUL


class InputSchema(Schema):
    """A request body: unknown fields are refused, so a typo is a 422, not a silent no-op."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_no_nul_in_schema)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("Text cannot contain NUL characters.")
        return value


def _refused_nulls_out_of_schema(schema: dict[str, Any], model: type[Any]) -> None:
    # The fields are typed `X | None` only so that they may be left out: the OpenAPI document
    # must not offer null where the validator below refuses it.
    nullable: frozenset[str] = getattr(model, "NULLABLE", frozenset())
    for name, prop in schema.get("properties", {}).items():
        if name in nullable or "anyOf" not in prop:
            continue
        kept = [option for option in prop["anyOf"] if option.get("type") != "null"]
        if len(kept) == 1:
            del prop["anyOf"]
            prop.update(kept[0])
        else:
            prop["anyOf"] = kept
        if prop.get("default", 0) is None:
            del prop["default"]


def _patch_schema_extra(schema: dict[str, Any], model: type[Any]) -> None:
    _refused_nulls_out_of_schema(schema, model)
    _no_nul_in_schema(schema, model)


class PatchSchema(InputSchema):
    """A partial update: only the fields sent change, and null is refused unless it means
    something (such as "no staff member"), so `{"name": null}` is an error, not a wipe."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_patch_schema_extra)

    NULLABLE: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _null_only_where_meaningful(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.NULLABLE:
            raise ValueError("Leave the field out rather than sending null.")
        return value


_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_8601_only(value: object) -> object:
    # pydantic would also take Unix timestamps and bare dates; the API speaks ISO 8601 only.
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATETIME.match(value):
        raise ValueError(
            "Give an ISO 8601 date-time with a time zone, e.g. 2030-05-01T09:00:00+02:00."
        )
    return value


def _in_utc(value: dt.datetime) -> dt.datetime:
    # RFC 3339 allows offsets up to +-23:59, PostgreSQL only up to +-15:59 (a 500 before):
    # the same instant in UTC is what gets stored anyway.
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("The date-time is out of range.") from None


IsoDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_8601_only), AfterValidator(_in_utc)]
