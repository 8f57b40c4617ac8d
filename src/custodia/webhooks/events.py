"""Events: what the actions of other apps announce, and what a payload holds.

```python
emit_event(EventType.VISIT_COMPLETED, {"id": str(visit.pk), ...}, actor=actor)
```

called inside the action's transaction, writes one outbox row per active endpoint of the
business subscribed to it (the database function of migrations/0002_rls.py, as any member) and
queues each for a worker in the same transaction: a rolled-back action sends nothing, a
committed one is delivered, retried until it is.

A payload is `{"type", "timestamp", "data"}` (the Standard Webhooks shape); `data` holds ids,
times, statuses and the names of the fields that changed: never names, notes, addresses, access
codes or any other customer text (docs/webhooks.md says why).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from django.utils import timezone

from custodia.core.actor import Actor
from custodia.core.dbcontext import fetch_all_with_key
from custodia.webhooks.models import EventType
from custodia.webhooks.queue import queue_delivery

ENQUEUE_SQL = "SELECT delivery_id FROM custodia_webhook_enqueue(%s, %s, %s::uuid, %s::jsonb)"


def payload_for(event_type: EventType, data: dict[str, Any]) -> dict[str, Any]:
    """The body of an event: its type, when it happened (UTC, ISO 8601) and its data."""
    return {
        "type": str(event_type),
        "timestamp": timezone.now().astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "data": data,
    }


def emit_event(event_type: EventType, data: dict[str, Any], *, actor: Actor) -> int:
    """Announce an event of the actor's business to its subscribed endpoints; how many."""
    if event_type == EventType.TEST:
        raise ValueError("A test event is sent by the test button only.")
    body = json.dumps(payload_for(event_type, data), sort_keys=True)
    rows = fetch_all_with_key(ENQUEUE_SQL, [str(event_type), str(uuid.uuid4()), body])
    for (delivery_id,) in rows:
        queue_delivery(delivery_id, actor.tenant_id)
    return len(rows)
