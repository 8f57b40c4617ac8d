"""The platform's own records: its operators and the vulnerability reports it receives.

Neither belongs to a business, so neither has a `tenant_id`; both are still under forced
row-level security (platform/migrations/0002_guards.py): an operator row is read by its own
login and written only in the console's context (`custodia operator`), and a report is read
and updated only by an active operator's context, while anyone may add a new one.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.db import models

from custodia.accounts.models import User

# The first-response target of a vulnerability report (docs/operators.md).
FIRST_RESPONSE_TARGET = dt.timedelta(hours=24)
# Form limits, also enforced by the columns.
SUMMARY_MAX = 200
DETAILS_MAX = 10_000
RESPONSE_MAX = 5_000


class Operator(models.Model):
    """A login of the platform's own personnel: never a member of any business."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    disabled_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"operator {self.pk}"

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None


class ReportStatus(models.TextChoices):
    NEW = "new", "New"
    TRIAGED = "triaged", "Triaged"
    RESOLVED = "resolved", "Resolved"
    NOT_APPLICABLE = "not_applicable", "Not applicable"


class VulnerabilityReport(models.Model):
    """A report sent through /security/report/, tracked against the first-response target."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # What the reporter and the operators call it (`VR-` and 10 random characters).
    reference = models.CharField(max_length=16, unique=True)
    received_at = models.DateTimeField()
    reporter_email = models.EmailField(max_length=254, blank=True)
    summary = models.CharField(max_length=SUMMARY_MAX)
    details = models.TextField()
    status = models.CharField(max_length=16, choices=ReportStatus.choices, default=ReportStatus.NEW)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    first_response_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    response = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["received_at"], name="platform_report_received")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(first_response_at__isnull=True)
                | models.Q(first_response_by__isnull=False),
                name="platform_report_response_by",
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def answered(self) -> bool:
        return self.first_response_at is not None

    def age(self, now: dt.datetime) -> dt.timedelta:
        """How long it has waited (until its first response, once answered)."""
        return (self.first_response_at or now) - self.received_at

    def is_overdue(self, now: dt.datetime) -> bool:
        """Unanswered beyond the first-response target."""
        return not self.answered and now - self.received_at > FIRST_RESPONSE_TARGET
