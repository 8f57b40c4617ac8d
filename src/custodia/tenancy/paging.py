"""Keyset pages of a list: a page costs the same whether the list or the database is small or huge.

A page is the rows after (or before) the last (first) row of the page the reader saw, in a fixed
order that ends in a unique key, read through an index; no row is counted past COUNT_CAP. The
cursor that names that row is opaque: the row's sort key, encrypted and authenticated with a key
derived from SECRET_KEY and bound to one list, so that a client's name (the client list's sort
key) never appears in an address, and a tampered, truncated or foreign cursor is refused
(InvalidCursor: a 400, never a 500). A cursor only positions: the query it narrows is the access
function's, filtered for the actor and under row-level security like any other.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import uuid
from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import Any, Generic, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db.models import Model, Q, QuerySet
from django.utils.crypto import salted_hmac

M = TypeVar("M", bound=Model)

# Lists say "1000+" past this: counting every row of a large business on every page cost more
# than the page itself.
COUNT_CAP = 1000
# Far longer than any cursor this module issues (a few hundred characters at most).
MAX_CURSOR_LENGTH = 1024
NONCE_BYTES = 12
KEY_PURPOSE = "custodia.tenancy.paging.cursor"
FORWARD, BACKWARD = "next", "previous"
INVALID = (
    "Invalid cursor: pass `next_cursor` or `previous_cursor` of an earlier answer of this list"
    " unchanged, or leave it out for the first page."
)


class InvalidCursor(ValueError):  # noqa: N818 (the name says what was given)
    """A cursor this server did not issue for this list (tampered, truncated, from another list,
    or sealed under an earlier SECRET_KEY)."""

    def __init__(self, message: str = INVALID) -> None:
        super().__init__(message)


@dataclass(frozen=True)
class Page(Generic[M]):
    """One page of a list, with the cursors of the pages on either side (None at either end)."""

    items: list[M]
    count: int  # rows in the whole list, counted no further than COUNT_CAP
    count_capped: bool  # more than COUNT_CAP rows: `count` is then COUNT_CAP
    next_cursor: str | None
    previous_cursor: str | None


def keyset_page(
    rows: QuerySet[M], *, keys: tuple[str, ...], list_name: str, cursor: str | None, size: int
) -> Page[M]:
    """`size` rows of `rows` in the order of `keys` (ascending; the last one unique), from the
    cursor on; InvalidCursor for a cursor not issued by this list."""
    direction, anchor = (FORWARD, None) if not cursor else _open(cursor, list_name, len(keys))
    forward = direction == FORWARD
    window = rows if anchor is None else rows.filter(past_key(keys, anchor, forward=forward))
    ordering = keys if forward else tuple(f"-{key}" for key in keys)
    batch = list(window.order_by(*ordering)[: size + 1])
    more = len(batch) > size
    shown = batch[:size]
    if not forward:
        shown.reverse()
    # Forward, a cursor means there was a page before; backward, we came from the page after.
    has_next, has_previous = (more, anchor is not None) if forward else (True, more)
    count, capped = capped_count(rows)
    return Page(
        items=shown,
        count=count,
        count_capped=capped,
        next_cursor=_seal(list_name, FORWARD, _key_of(shown[-1], keys))
        if shown and has_next
        else None,
        previous_cursor=_seal(list_name, BACKWARD, _key_of(shown[0], keys))
        if shown and has_previous
        else None,
    )


def capped_count(rows: QuerySet[Any]) -> tuple[int, bool]:
    """How many rows (no more than COUNT_CAP), and whether there are more."""
    counted = rows.order_by()[: COUNT_CAP + 1].count()
    return min(counted, COUNT_CAP), counted > COUNT_CAP


def past_key(keys: tuple[str, ...], values: list[Any], *, forward: bool) -> Q:
    """Rows after (`forward`) or before the row whose sort key is `values`.

    (k1, k2, ...) > (v1, v2, ...), written so that the first key alone bounds an index range:
    k1 >= v1 AND (k1 > v1 OR (k1 = v1 AND k2 > v2) OR ...).
    """
    strict, loose = ("gt", "gte") if forward else ("lt", "lte")
    alternatives = [
        Q(**{f"{key}__{strict}": values[i]}, **dict(zip(keys[:i], values[:i], strict=True)))
        for i, key in enumerate(keys)
    ]
    return Q(**{f"{keys[0]}__{loose}": values[0]}) & reduce(or_, alternatives)


def _key_of(row: Model, keys: tuple[str, ...]) -> list[Any]:
    values = []
    for key in keys:
        value: Any = row
        for part in key.split("__"):
            value = getattr(value, part)
        if isinstance(value, dt.datetime):
            value = value.isoformat()
        elif isinstance(value, uuid.UUID):
            value = str(value)
        if not isinstance(value, str | int):
            raise TypeError(f"A keyset sort key must be text, a number, a time or an id: {key}")
        values.append(value)
    return values


def _cipher() -> AESGCM:
    # One key for this purpose, derived from SECRET_KEY (which rotating invalidates old cursors).
    return AESGCM(salted_hmac(KEY_PURPOSE, "aes-256-gcm", algorithm="sha256").digest())


def _seal(list_name: str, direction: str, values: list[Any]) -> str:
    nonce = os.urandom(NONCE_BYTES)
    plain = json.dumps([direction, values], separators=(",", ":")).encode()
    sealed = nonce + _cipher().encrypt(nonce, plain, list_name.encode())
    return base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def _open(cursor: str, list_name: str, arity: int) -> tuple[str, list[Any]]:
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor
    try:
        sealed = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        if len(sealed) <= NONCE_BYTES:
            raise InvalidCursor
        plain = _cipher().decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], list_name.encode())
        direction, values = json.loads(plain)
    except (binascii.Error, ValueError, TypeError, InvalidTag):
        raise InvalidCursor from None
    # Sealed by this server, so well formed; checked anyway, as a cursor of an older release
    # could differ.
    well_formed = (
        direction in (FORWARD, BACKWARD)
        and isinstance(values, list)
        and len(values) == arity
        and all(isinstance(value, str | int) for value in values)
    )
    if not well_formed:
        raise InvalidCursor
    return direction, values
