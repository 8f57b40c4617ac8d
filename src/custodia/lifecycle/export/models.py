"""A whole-business export: who started it, where it stands, and the key of its stored file."""

from __future__ import annotations

import uuid
from enum import StrEnum

from django.db import models

from custodia.crypto.fields import EncryptedTextField
from custodia.tenancy.models import Membership, TenantOwned


class ExportStatus(StrEnum):
    RUNNING = "running"  # being built (a job)
    READY = "ready"  # stored, encrypted, waiting for its one download
    DOWNLOADED = "downloaded"  # handed out once; the file is deleted
    EXPIRED = "expired"  # not downloaded in time; the file is deleted
    FAILED = "failed"  # the build failed; nothing is stored


class Export(TenantOwned):
    """One export of a business's data, downloadable once by the owner who started it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    started_by = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(
        max_length=10,
        choices=[(status.value, status.value.capitalize()) for status in ExportStatus],
        default=ExportStatus.RUNNING,
    )
    # The job that builds it (custodia.jobs), when started through one.
    job_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    downloaded_at = models.DateTimeField(null=True, blank=True)
    # Rows per file of the archive, and its size and sha256 (of the zip, before encryption).
    rows = models.JSONField(default=dict)
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    # The age identity the stored file is encrypted to, sealed under the business's data key:
    # destroying that key makes the file unreadable too (storage.py).
    file_key = EncryptedTextField()

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "started_by", "created_at"], name="export_tenant_start"),
            models.Index(fields=["status", "expires_at"], name="export_status_expiry"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=[status.value for status in ExportStatus]),
                name="export_status_valid",
            )
        ]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.status})"
