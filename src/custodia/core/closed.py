"""A closed business's refusal, as every door shows it.

The database refuses every write to a closed business's data (tenancy/migrations/
0008_closing_guards.py, SQLSTATE `CU409`, the purge date in the error's detail). Every connection
runs its statements through `translate_refusal` (installed by `install`, on each new connection),
which turns that refusal into `BusinessClosed`: a PermissionDenied whose message says until when
and who can undo it. Pages answer it with a 409 page (web/middleware.py), the API with a 409 in
its JSON shape (api/errors.py), commands with a CommandError (ops/management/commands/).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

CLOSED_SQLSTATE = "CU409"


def closed_message(purge_after: dt.datetime | None) -> str:
    """The words every door uses."""
    when = "" if purge_after is None else f" until {purge_after:%Y-%m-%d %H:%M} UTC"
    return (
        f"This business is closed{when}, when it will be deleted for good: nothing can be"
        " changed meanwhile. An owner can reopen it."
    )


class BusinessClosed(PermissionDenied):
    """A write to a business that is closed (read-only until its purge)."""

    status_code = 409

    def __init__(self, purge_after: dt.datetime | None = None) -> None:
        self.purge_after = purge_after
        super().__init__(closed_message(purge_after))


def refusal_of(exc: BaseException) -> BusinessClosed | None:
    """The BusinessClosed a database error stands for, if it is the closed-business refusal."""
    cause: BaseException | None = exc
    while cause is not None:
        if getattr(cause, "sqlstate", None) == CLOSED_SQLSTATE:
            diag = getattr(cause, "diag", None)
            detail = getattr(diag, "message_detail", None) or ""
            try:
                until = dt.datetime.fromisoformat(detail.replace("Z", "+00:00"))
            except ValueError:
                until = None
            return BusinessClosed(until)
        cause = cause.__cause__
    return None


def translate_refusal(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
    """A connection's execute wrapper: the closed-business refusal raised as BusinessClosed."""
    try:
        return execute(sql, params, many, context)
    except DatabaseError as exc:
        refusal = refusal_of(exc)
        if refusal is None:
            raise
        raise refusal from exc


def _on_connection(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    if translate_refusal not in connection.execute_wrappers:
        connection.execute_wrappers.append(translate_refusal)


def install() -> None:
    """Translate the refusal on every connection made from now on (called once, at start-up)."""
    connection_created.connect(_on_connection, dispatch_uid="custodia.core.closed")
