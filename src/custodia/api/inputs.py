"""What the API accepts: JSON bodies, strict input schemas, ISO 8601 times, ids by reference."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, TypeVar

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest
from ninja import Schema
from ninja.parser import Parser
from ninja.types import DictStrAny
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    ValidationInfo,
    field_validator,
)

from custodia.core.actor import Actor

T = TypeVar("T")

# PostgreSQL text cannot hold NUL (a 500 before): every text input refuses it, and says so.
NO_NUL = r"^[^\x00]*$"
# A name: some character that is neither white space nor NUL.
NON_BLANK_TEXT = r"^[^\x00]*[^\s\x00][^\x00]*$"


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
