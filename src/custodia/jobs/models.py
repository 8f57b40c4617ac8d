"""A background job one person started, and what it has done so far (jobs/registry.py).

procrastinate's own table (`procrastinate_jobs`) holds only ids: the kind of work, its
parameters and its progress live here, under the business's row-level security like every
tenant-owned row (jobs/migrations/0002_rls.py): the starter and the business's owners see it,
no one else.
"""

from __future__ import annotations

import uuid

from django.db import models

from custodia.tenancy.models import Membership, TenantOwned


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Done"
    FAILED = "failed", "Failed"


ACTIVE_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})
STAGE_LENGTH = 80
ERROR_LENGTH = 300


class Job(TenantOwned):
    """One run of a registered job kind for one business, started by one member."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=40)
    started_by = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    # What the starter asked for (ids, options); never shown in logs.
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(null=True, blank=True)
    stage = models.CharField(max_length=STAGE_LENGTH, blank=True)
    # Written by the framework alone, from a fixed list: never an exception's text, which may
    # quote customer data (jobs/runner.py: JobFailed).
    error = models.CharField(max_length=ERROR_LENGTH, blank=True)
    result_label = models.CharField(max_length=120, blank=True)
    result_url = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # procrastinate's id for the queued run (an integer of its own table).
    queue_job_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "started_by", "created_at"], name="job_tenant_starter"),
            models.Index(fields=["tenant", "status"], name="job_tenant_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=[status.value for status in JobStatus]),
                name="job_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(total__isnull=True) | models.Q(done__lte=models.F("total")),
                name="job_done_within_total",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def percent(self) -> int | None:
        """How far along, 0-100, when the job knows its total."""
        if not self.total:
            return None
        return min(100, self.done * 100 // self.total)
