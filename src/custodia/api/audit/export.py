"""Exports of the trail: CSV and JSON for the owner, JSON lines for a SIEM; each is an event.

Bodies are built inside the request: the request's transaction (TenantMiddleware) is what lets
the rows be read, and a streamed body would be produced after it has ended.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from custodia.api.audit.schemas import AuditEventOut
from custodia.audit.access import EventFilters, events_after, list_events
from custodia.audit.models import AuditEvent
from custodia.core.actor import Actor
from custodia.core.audit import AuditAction, record
from custodia.core.cells import as_text_cell

# One export holds at most this many events (about 30 MB of CSV); a longer trail is exported
# in date ranges. A truncated export says so (`truncated`, and the X-Export-Truncated header).
EXPORT_MAX_ROWS = 100_000
COLUMNS = list(AuditEventOut.model_fields)
# A spreadsheet runs a cell starting with one of these as a formula (OWASP, CSV injection).

Format = Literal["csv", "json"]


@dataclass(frozen=True)
class Export:
    body: bytes
    count: int
    truncated: bool


@dataclass(frozen=True)
class Feed:
    body: bytes
    count: int
    next_after: int


def export_events(actor: Actor, filters: EventFilters, fmt: Format) -> Export:
    """The business's events matching `filters`, newest first, as CSV or JSON (bounded)."""
    rows = list_events(actor, filters)[: EXPORT_MAX_ROWS + 1].iterator(chunk_size=2000)
    counted = _Counted(rows, EXPORT_MAX_ROWS)
    body = _csv(counted) if fmt == "csv" else _json(counted)
    record(
        AuditAction.AUDIT_EXPORT,
        actor=actor,
        detail={
            "format": fmt,
            "count": counted.count,
            "filters": filters.used(),
            "truncated": counted.truncated,
        },
    )
    return Export(body, counted.count, counted.truncated)


def feed(actor: Actor, after_id: int, limit: int) -> Feed:
    """The SIEM feed: JSON lines in id order from `after_id`, and the id to resume from."""
    events = events_after(actor, after_id, limit)
    body = "".join(json.dumps(event_dict(event), sort_keys=True) + "\n" for event in events)
    next_after = events[-1].id if events else after_id
    record(
        AuditAction.AUDIT_EXPORT,
        actor=actor,
        detail={"format": "jsonl", "count": len(events), "after": after_id},
    )
    return Feed(body.encode(), len(events), next_after)


def event_dict(event: AuditEvent) -> dict[str, Any]:
    """An event in the API's shape, as plain JSON values."""
    return AuditEventOut.from_orm(event).model_dump(mode="json")


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text: formula-like text gets a leading apostrophe."""
    if value is None:
        text = ""
    elif isinstance(value, list):
        text = " ".join(str(item) for item in value)
    elif isinstance(value, dict):
        text = json.dumps(value, sort_keys=True)
    else:
        text = str(value)
    return as_text_cell(text)


class _Counted:
    """Iterates at most `limit` events, counting them and noting whether more were left."""

    def __init__(self, events: Iterator[AuditEvent], limit: int) -> None:
        self.events = events
        self.limit = limit
        self.count = 0
        self.truncated = False

    def __iter__(self) -> Iterator[AuditEvent]:
        for event in self.events:
            if self.count == self.limit:
                self.truncated = True
                return
            self.count += 1
            yield event


def _csv(events: Iterable[AuditEvent]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for event in events:
        values = event_dict(event)
        writer.writerow([safe_cell(values[column]) for column in COLUMNS])
    return out.getvalue().encode()


def _json(events: _Counted) -> bytes:
    items = ",\n".join(json.dumps(event_dict(event), sort_keys=True) for event in events)
    meta = json.dumps({"count": events.count, "truncated": events.truncated, "limit": events.limit})
    # The events first (they are counted while written), then the counts, in one object.
    return ('{"events": [\n' + items + "\n],\n" + '"meta": ' + meta + "}\n").encode()
