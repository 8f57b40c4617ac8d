"""Expected audit events, and reading back, inside a test's transaction, the ones a request wrote.

The test client serves requests on the test's own connection ("default", custodia_app, RLS
forced), so their events are uncommitted: only that connection sees them, and only with the
context of someone allowed to read the chain (an owner of the business, or, for the platform
chain, the person an event names).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pprint import pformat
from typing import Any

from django.db import connection, transaction
from django.http import HttpResponse

from custodia.core.actor import Actor
from custodia.core.audit import AuditAction, Outcome
from custodia.core.dbcontext import set_db_context
from tests.api.conftest import fill
from tests.factories import TenantMatrix

COLUMNS = (
    "id",
    "action",
    "outcome",
    "actor_user_id",
    "actor_role",
    "target_type",
    "target_id",
    "client_id",
    "subject_ids",
    "request_id",
    "purpose",
    "detail",
)
SELECT = f"SELECT {', '.join(COLUMNS)} FROM audit_auditevent"


@dataclass(frozen=True)
class Ev:
    """One expected event. Ids are placeholders ("{client}") filled as in tests/api; the actor
    is the request's. An `access.denied` event's detail is the refused request's method, route
    and status, given when the events are checked."""

    action: AuditAction
    target_type: str = ""
    target_id: str = ""
    client_id: str | None = None
    subject_ids: list[str] | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    outcome: Outcome = Outcome.OK

    def row(self, actor: Actor, values: Mapping[str, Any], denial: Mapping[str, Any]) -> dict:
        """The event as `written` reports it, done by `actor`."""
        detail = dict(denial) if self.action is AuditAction.ACCESS_DENIED else self.detail
        return {
            "action": str(self.action),
            "outcome": str(self.outcome),
            "actor_user_id": str(actor.user.pk),
            "actor_role": actor.role.value,
            "target_type": self.target_type,
            "target_id": fill(self.target_id, values),
            "client_id": fill(self.client_id, values),
            "subject_ids": fill(self.subject_ids, values),
            "detail": _fill(dict(detail), values),
        }


def _fill(template: Any, values: Mapping[str, Any]) -> Any:
    # tests/api's fill(), except that a string that is just a placeholder of a number (a count
    # known only from the answer) becomes that number.
    if isinstance(template, dict):
        return {key: _fill(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [_fill(value, values) for value in template]
    match = re.fullmatch(r"\{(\w+)\}", template) if isinstance(template, str) else None
    if match and isinstance(values.get(match[1]), int):
        return values[match[1]]
    return fill(template, values)


def on_client(action: AuditAction, client: str = "{client}", **detail: Any) -> Ev:
    """An event about one client record."""
    return Ev(action, "client", client, client, detail=detail)


def on_visit(
    action: AuditAction, visit: str = "{visit}", client: str = "{client}", **detail: Any
) -> Ev:
    """An event about one visit (and so about its client)."""
    return Ev(action, "visit", visit, client, detail=detail)


def on_record(action: AuditAction, target_type: str, target_id: str, **detail: Any) -> Ev:
    """An event about a record that is not a client's (a service, a membership, an invitation)."""
    return Ev(action, target_type, target_id, detail=detail)


def client_list(*clients: str, **detail: Any) -> Ev:
    """A bulk read of these clients, in the order shown."""
    ids = list(clients)
    return Ev(AuditAction.CLIENT_LIST, subject_ids=ids, detail={**detail, "count": len(ids)})


def visit_list(visits: list[str], clients: list[str]) -> Ev:
    """A bulk read of these visits (in the order shown), whose clients are `clients`."""
    return Ev(
        AuditAction.VISIT_LIST, subject_ids=clients, detail={"count": len(visits), "ids": visits}
    )


def denied(target_type: str = "", target_id: str = "") -> Ev:
    """A refusal: of the object an access function refused, else of the id the route names."""
    return Ev(
        AuditAction.ACCESS_DENIED,
        target_type,
        target_id,
        client_id=target_id if target_type == "client" else None,
        outcome=Outcome.DENIED,
    )


def _read(sql: str, params: list[Any], **context: Any) -> list[dict[str, Any]]:
    # In a savepoint that is rolled back: the reader's settings must not outlive the read and
    # become the context of whatever the test does next.
    with transaction.atomic():
        set_db_context(**context)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            names = [column.name for column in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        transaction.set_rollback(True)
    return rows


def chain_events(owner: Actor, *, after: int = 0) -> list[dict[str, Any]]:
    """Events of `owner`'s business with an id above `after`, oldest first, as the owner reads
    them."""
    return _read(
        SELECT + " WHERE tenant_id = %s AND id > %s ORDER BY id",
        [owner.tenant_id, after],
        tenant_id=owner.tenant_id,
        user_id=owner.user.pk,
        role="owner",
    )


def sign_in_events(user_id: object, *, after: int = 0) -> list[dict[str, Any]]:
    """Platform-chain events of one person with an id above `after` (their own view)."""
    return _read(
        SELECT + " WHERE tenant_id IS NULL AND actor_user_id = %s AND id > %s ORDER BY id",
        [user_id, after],
        user_id=user_id,
    )


def written(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the tests compare of each event: no id, time, chain position, address or browser."""
    return [
        {
            "action": event["action"],
            "outcome": event["outcome"],
            "actor_user_id": str(event["actor_user_id"]),
            "actor_role": event["actor_role"],
            "target_type": event["target_type"],
            "target_id": event["target_id"],
            "client_id": None if event["client_id"] is None else str(event["client_id"]),
            "subject_ids": (
                None if event["subject_ids"] is None else [str(s) for s in event["subject_ids"]]
            ),
            # The connection hands jsonb over as text (Django parses JSONField values itself).
            "detail": _json(event["detail"]),
        }
        for event in events
    ]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _leaves(value: Any) -> Iterator[str]:
    # Every scalar of a JSON value as text; dict keys are left out (they are field names).
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif value is not None:
        yield str(value)


def leaked(events: list[dict[str, Any]], secrets: Iterable[str]) -> list[str]:
    """The sensitive values found in some event's detail or purpose.

    A code ("1", "4711") is looked for as a whole value, since random ids contain digit runs;
    a text anywhere inside one.
    """
    found = []
    for secret in secrets:
        whole = secret.isdigit() or len(secret) < 4
        for event in events:
            texts = [*_leaves(_json(event["detail"])), event["purpose"]]
            if any(secret == text or (not whole and secret in text) for text in texts):
                found.append(secret)
                break
    return found


class Trail:
    """The audit trail around one request of `actor`: their business's chain, the other
    business's, and their own sign-in events, from the moment the trail is made."""

    def __init__(self, matrix: TenantMatrix, actor: Actor) -> None:
        in_b = actor.tenant_id == matrix.b.owner.tenant_id
        self.actor = actor
        self.own, self.other = (
            (matrix.b.owner, matrix.a.owner) if in_b else (matrix.a.owner, matrix.b.owner)
        )
        # Ids come from one sequence across chains: anything written later has a higher one.
        seen = [*chain_events(self.own), *chain_events(self.other)]
        seen += sign_in_events(actor.user.pk)
        self.mark = max((event["id"] for event in seen), default=0)

    def assert_wrote(
        self,
        response: HttpResponse,
        expected: list[Ev],
        values: Mapping[str, Any],
        *,
        denial: Mapping[str, Any],
        secrets: Iterable[str] = (),
    ) -> None:
        """Exactly `expected`, in order, in the actor's chain with the response's request id;
        nothing elsewhere; no sensitive value in any of them."""
        events = chain_events(self.own, after=self.mark)
        want = [event.row(self.actor, values, denial) for event in expected]
        got = written(events)
        # This module is not rewritten by pytest: the message shows both sides.
        assert got == want, f"written:\n{pformat(got)}\nexpected:\n{pformat(want)}"
        request_id = response["X-Request-ID"]
        assert [event["request_id"] for event in events] == [request_id] * len(events)
        assert leaked(events, secrets) == []
        assert chain_events(self.other, after=self.mark) == [], "an event in another business"
        assert sign_in_events(self.actor.user.pk, after=self.mark) == []
