"""Paging of the API's lists: by opaque cursor, with a count that stops at 1,000.

A list answers `{"items": [...], "count": n, "count_capped": bool, "next_cursor": str | null,
"previous_cursor": str | null}`; the next page is the same request with `cursor=<next_cursor>`.
The pages themselves come from the access functions (`page_of_clients`, ...), which record the
reads of customer data; this module only states the shape and answers a cursor the server did not
issue with a 400 (tenancy/paging.py, api/errors.py).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from ninja import Field, Schema
from pydantic import field_validator
from pydantic.json_schema import SkipJsonSchema

from custodia.tenancy.paging import COUNT_CAP, MAX_CURSOR_LENGTH

NO_OFFSET = "Lists are paged by cursor: pass the `next_cursor` of the previous answer as `cursor`."


class CursorParams(Schema):
    """Which page, and how long."""

    cursor: str | None = Field(
        None,
        max_length=MAX_CURSOR_LENGTH,
        description="`next_cursor` or `previous_cursor` of an earlier answer of the same list,"
        " unchanged; left out, the first page. Any other value is answered 400.",
    )
    limit: int = Field(
        settings.NINJA_PAGINATION_PER_PAGE, ge=1, le=settings.NINJA_PAGINATION_MAX_LIMIT
    )
    # Version 1 paged by offset; it is refused with a pointer to the cursor rather than ignored
    # (which would answer the first page again and again). Not part of the documented schema.
    offset: SkipJsonSchema[str | None] = None

    @field_validator("offset")
    @classmethod
    def _no_offset(cls, value: str | None) -> None:
        if value is not None:
            raise ValueError(NO_OFFSET)


class PageOut(Schema):
    """A page of a list; a subclass names the items' schema."""

    items: list[Any]
    count: int = Field(description=f"How many match in all, counted no further than {COUNT_CAP:,}.")
    count_capped: bool = Field(
        description=f'More than {COUNT_CAP:,} match (`count` is then {COUNT_CAP:,}): "1000+".'
    )
    next_cursor: str | None = Field(description="`cursor` of the next page; null on the last.")
    previous_cursor: str | None = Field(
        description="`cursor` of the previous page; null on the first."
    )


# The one error a list adds to those of every operation (api/errors.py, ERROR_RESPONSES).
CURSOR_ERROR = {
    "responses": {
        "400": {
            "description": "`cursor` is not one this list issued (tampered, truncated, another"
            " list's, or from before the server's secret key changed).",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    }
}
