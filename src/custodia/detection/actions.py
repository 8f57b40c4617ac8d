"""Writes of alerts: raising one (deduplicated, told to the owners and the SIEM), and an owner
acknowledging one.

A business's alert is written by the detection task's system actor inside that business's
row-level security; a platform-wide one through `custodia_detection_raise_platform`
(migrations/0001_initial.py), which the app role can call only with the context key.
"""

from __future__ import annotations

import json
import uuid

from django.db import transaction
from django.utils import timezone

from custodia.core.actor import Actor, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.dbcontext import fetch_all_with_key
from custodia.core.permissions import Role
from custodia.detection import delivery
from custodia.detection.access import access_alert_by_id
from custodia.detection.models import SUBJECT_LENGTH, Alert
from custodia.detection.rules import Finding, rule_named

RAISE_PLATFORM_SQL = (
    "SELECT custodia_detection_raise_platform(%s, %s, %s, %s, %s::jsonb, %s::bigint[], %s)"
)


def do_raise_alert(finding: Finding, *, actor: Actor) -> Alert | None:
    """The business's alert for `finding`, unless the same rule raised one for the same subject
    within its window (then None); its owners are emailed and the SIEM told."""
    require_active(actor)
    rule = rule_named(finding.rule)
    if rule.platform:
        raise ValueError(f"{rule.name} is a platform rule: raise_platform_alert raises it.")
    now = timezone.now()
    subject = finding.subject[:SUBJECT_LENGTH]
    with transaction.atomic():
        duplicate = Alert.objects.filter(
            tenant_id=actor.tenant_id,
            rule=rule.name,
            subject=subject,
            created_at__gt=now - rule.window,
        ).exists()
        if duplicate:
            return None
        alert = Alert.objects.create(
            tenant_id=actor.tenant_id,
            rule=rule.name,
            severity=rule.severity,
            subject=subject,
            evidence=finding.evidence,
            event_ids=finding.event_ids,
            created_at=now,
        )
        delivery.mail_owners(alert)
        delivery.queue_siem(delivery.siem_payload(alert))
    return alert


def raise_platform_alert(finding: Finding) -> uuid.UUID | None:
    """A platform-wide alert for `finding` (for the operators and the SIEM), unless the same
    rule raised one for the same subject within its window; the new alert's id, or None."""
    rule = rule_named(finding.rule)
    if not rule.platform:
        raise ValueError(f"{rule.name} is a business rule: do_raise_alert raises it.")
    with transaction.atomic():
        [(alert_id,)] = fetch_all_with_key(
            RAISE_PLATFORM_SQL,
            [
                rule.name,
                str(rule.severity),
                finding.subject[:SUBJECT_LENGTH],
                json.dumps(finding.evidence, sort_keys=True, default=str),
                finding.event_ids,
                rule.window,
            ],
        )
        if alert_id is None:
            return None
        delivery.queue_operators_mail(alert_id, rule.name, str(rule.severity))
        delivery.queue_siem(
            delivery.platform_payload(
                alert_id=alert_id,
                rule=rule.name,
                severity=str(rule.severity),
                subject=finding.subject[:SUBJECT_LENGTH],
                evidence=finding.evidence,
                event_ids=finding.event_ids,
                created_at=timezone.now(),
            )
        )
    return uuid.UUID(str(alert_id))


def do_acknowledge_alert(alert_id: object, *, actor: Actor) -> Alert:
    """An owner marks the alert as seen (once; acknowledging again changes nothing)."""
    require_active(actor)
    with transaction.atomic():
        alert = access_alert_by_id(actor, alert_id, for_change=True)
        if alert.acknowledged_at is not None:
            return alert
        alert.acknowledged_at = timezone.now()
        alert.acknowledged_by_id = actor.user.pk if actor.role == Role.OWNER else None
        alert.save(update_fields=["acknowledged_at", "acknowledged_by"])
        record(
            AuditAction.ALERT_ACKNOWLEDGE,
            actor=actor,
            target_type="alert",
            target_id=alert.pk,
            detail={"rule": alert.rule},
        )
    return alert
