"""Telling people of an alert: the business's owners by email (a link, never the evidence), and
every alert to the SIEM webhook (`CUSTODIA_ALERT_WEBHOOK_URL`), signed as the outgoing
webhooks are (Standard Webhooks, webhooks/signing.py) and sent by a job that retries.

Neither carries customer data: an alert names a rule, a severity, a person's id or an address,
counts and audit event ids.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from allauth.account.adapter import get_adapter
from django.conf import settings
from django.urls import reverse
from procrastinate.contrib.django import app

from custodia.accounts.links import public_url
from custodia.core.permissions import Role
from custodia.detection.models import Alert, Severity
from custodia.detection.rules import rule_named
from custodia.tenancy.models import Business, Membership

SIEM_TASK = "custodia.detection.siem"
OPERATORS_TASK = "custodia.detection.operators"
EVENT_TYPE = "security.alert"


def alert_url(alert: Alert) -> str:
    """The alert's page on the public URL."""
    return public_url(reverse("detection_alert", args=[alert.pk]))


def mail_owners(alert: Alert) -> int:
    """Email each active owner of the alert's business (after the commit); how many."""
    if alert.tenant_id is None:
        return 0  # a platform alert is the operators', not a business's
    business = Business.objects.filter(pk=alert.tenant_id).values_list("name", flat=True).first()
    owners = Membership.objects.filter(
        tenant_id=alert.tenant_id, role=Role.OWNER, is_active=True
    ).select_related("user")
    context = {
        "business_name": business or "",
        "rule_label": rule_named(alert.rule).label,
        "severity": alert.get_severity_display(),
        "alert_url": alert_url(alert),
        "created_at": alert.created_at,
    }
    sent = 0
    for owner in owners:
        email = getattr(owner.user, "email", "")
        if email and owner.user.is_active:
            get_adapter().send_mail("detection/email/alert", email, context)
            sent += 1
    return sent


def platform_payload(
    *,
    alert_id: object,
    rule: str,
    severity: str,
    subject: str,
    evidence: dict[str, Any],
    event_ids: list[int],
    created_at: dt.datetime,
    business_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """The SIEM's JSON for one alert (docs/detection.md, "The webhook")."""
    return {
        "type": EVENT_TYPE,
        "id": str(alert_id),
        "timestamp": created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "data": {
            "rule": rule,
            "label": rule_named(rule).label,
            "severity": severity,
            "business": None if business_id is None else str(business_id),
            "subject": subject,
            "evidence": evidence,
            "audit_event_ids": event_ids,
        },
    }


def siem_payload(alert: Alert) -> dict[str, Any]:
    """The SIEM's JSON for a business's alert."""
    return platform_payload(
        alert_id=alert.pk,
        rule=alert.rule,
        severity=alert.severity,
        subject=alert.subject,
        evidence=alert.evidence,
        event_ids=list(alert.event_ids),
        created_at=alert.created_at,
        business_id=alert.tenant_id,
    )


def queue_operators_mail(alert_id: object, rule: str, severity: str) -> None:
    """Queue the operators' email of a platform alert in the caller's transaction: the job reads
    who the operators are in a transaction of its own (tasks.py: mail_operators)."""
    app.configure_task(name=OPERATORS_TASK).defer(
        alert_id=str(alert_id), rule=rule, severity=severity
    )


def mail_operators(alert_id: str, rule: str, severity: str, recipients: list[str]) -> int:
    """Email each operator of a platform alert: the rule, the severity and the console's page of
    alerts (the evidence stays there); how many."""
    context = {
        "rule_label": rule_named(rule).label,
        "severity": dict(Severity.choices).get(severity, severity),
        "alerts_url": public_url(reverse("operator_alerts")),
        "alert_id": alert_id,
    }
    for email in recipients:
        get_adapter().send_mail("detection/email/platform_alert", email, context)
    return len(recipients)


def queue_siem(payload: dict[str, Any]) -> bool:
    """Queue the SIEM delivery in the caller's transaction (nothing when no webhook is set)."""
    if not settings.ALERT_WEBHOOK_URL:
        return False
    body = json.dumps(payload, sort_keys=True, default=str)
    app.configure_task(name=SIEM_TASK).defer(message_id=payload["id"], body=body)
    return True
