"""Reads of alerts: a business's owners read theirs (anyone else: 404); the operators' console
reads the platform-wide ones through `list_platform_alerts`.

Every read filters by the actor's business and role explicitly; row-level security
(migrations/0001_initial.py) is the backstop. A page of alerts is itself an audit event.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.http import Http404

from custodia.core.actor import Actor
from custodia.core.audit import AuditAction, note_refusal, record
from custodia.core.dbcontext import fetch_all_with_key
from custodia.core.permissions import Role
from custodia.detection.models import Alert

ALERTS_PER_PAGE = 100
PLATFORM_ALERTS_SQL = (
    "SELECT id, rule, severity, subject, evidence, event_ids, created_at, acknowledged_at"
    " FROM custodia_detection_platform_alerts(%s, %s)"
)


def _owner_or_404(actor: Actor) -> None:
    # Owners only: the alerts name members and addresses. Any other role is told nothing
    # exists here, as for another business's alert.
    if actor.role != Role.OWNER:
        raise Http404("No such page.")


def list_alerts(actor: Actor, *, limit: int = ALERTS_PER_PAGE) -> list[Alert]:
    """The business's newest alerts (owners only; 404 for any other role), itself an event."""
    _owner_or_404(actor)
    alerts = list(Alert.objects.filter(tenant_id=actor.tenant_id).order_by("-created_at")[:limit])
    record(AuditAction.ALERT_READ, actor=actor, detail={"count": len(alerts)})
    return alerts


def access_alert_by_id(actor: Actor, alert_id: object, *, for_change: bool = False) -> Alert:
    """One alert of the actor's business, for its owners; 404 for anything else."""
    _owner_or_404(actor)
    try:
        key = uuid.UUID(str(alert_id))
    except ValueError:
        raise Http404("No such alert.") from None
    alerts = Alert.objects.filter(pk=key, tenant_id=actor.tenant_id)
    alert = (alerts.select_for_update() if for_change else alerts).first()
    if alert is None:
        note_refusal("alert", key)
        raise Http404("No such alert.")
    if not for_change:
        record(
            AuditAction.ALERT_READ,
            actor=actor,
            target_type="alert",
            target_id=alert.pk,
            detail={"count": 1},
        )
    return alert


@dataclass(frozen=True)
class PlatformAlert:
    """A platform-wide alert as the operators' console shows it."""

    id: uuid.UUID
    rule: str
    severity: str
    subject: str
    evidence: dict[str, Any]
    event_ids: list[int]
    created_at: dt.datetime
    acknowledged_at: dt.datetime | None


def _evidence(value: Any) -> dict[str, Any]:
    """A platform alert's evidence: Django's connection hands jsonb over as its text."""
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def list_platform_alerts(*, limit: int = ALERTS_PER_PAGE) -> list[PlatformAlert]:
    """The newest platform-wide alerts (credential stuffing, spraying, a broken audit chain, a
    failed restore drill), for the operators' console; no business's alerts are among them.

    The caller decides who is an operator: this reads through a function only the app's
    context key opens, so a database session with the app role's password alone reads nothing.
    """
    with transaction.atomic():
        rows = fetch_all_with_key(PLATFORM_ALERTS_SQL, [max(0, min(limit, 1000))])
    return [
        PlatformAlert(
            id=row[0],
            rule=row[1],
            severity=row[2],
            subject=row[3],
            evidence=_evidence(row[4]),
            event_ids=list(row[5] or []),
            created_at=row[6],
            acknowledged_at=row[7],
        )
        for row in rows
    ]
