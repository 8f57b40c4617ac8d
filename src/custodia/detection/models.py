"""Alerts raised by the detection rules (rules.py): a business's under its owners' row-level
security, platform-wide ones (no business) readable only by the operators' functions
(migrations/0001_initial.py)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

SUBJECT_LENGTH = 120


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class Alert(models.Model):
    """One rule's finding: what, how bad, about whom (a person's id or an address, never a
    customer's data), the evidence (counts, window, threshold) and the audit events behind it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # NULL: platform-wide (credential stuffing across businesses, a broken chain, a drill).
    tenant = models.ForeignKey(
        "tenancy.Business", null=True, on_delete=models.CASCADE, related_name="+"
    )
    rule = models.CharField(max_length=40)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    subject = models.CharField(max_length=SUBJECT_LENGTH)
    evidence = models.JSONField(default=dict)
    event_ids = ArrayField(models.BigIntegerField(), default=list)
    created_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="detection_alert_recent"),
            models.Index(
                fields=["tenant", "rule", "subject", "created_at"], name="detection_dedup"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule} ({self.severity}) at {self.created_at:%Y-%m-%d %H:%M}"
