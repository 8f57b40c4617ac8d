"""What transparency keeps: a business's opt-in to its own page, the subprocessor list last
announced, and the outcome of each audit-chain verification (aggregates only)."""

from __future__ import annotations

from django.db import models

from custodia.tenancy.models import Membership, TenantOwned


class Publication(TenantOwned):
    """An owner published the business's own security page (`/b/<slug>/security/`).

    One row per business while published; unpublishing deletes it. Forced row-level security
    (transparency/0001): members read it, owners write it; the public page finds it only through
    `custodia_transparency_page(slug)`, which answers for a published, open business alone.
    """

    published_at = models.DateTimeField(auto_now_add=True)
    published_by = models.ForeignKey(
        Membership, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="transparency_publication_once")
        ]

    def __str__(self) -> str:
        return f"published page of {self.tenant_id}"


class SubprocessorList(models.Model):
    """The subprocessor list as it was last announced to owners (platform configuration: host
    names and purposes, no business's data)."""

    recorded_at = models.DateTimeField(auto_now_add=True)
    entries = models.JSONField()

    def __str__(self) -> str:
        return f"subprocessors at {self.recorded_at:%Y-%m-%d %H:%M}"


class ChainVerification(models.Model):
    """One run of `custodia audit verify` or of the daily checkpoint round: how many chains it
    checked and how many did not verify (counts only: no business is named)."""

    at = models.DateTimeField(auto_now_add=True)
    chains = models.PositiveIntegerField()
    broken = models.PositiveIntegerField()
    source = models.CharField(max_length=16)

    class Meta:
        indexes = [models.Index(fields=["at"], name="transparency_verification_at")]

    def __str__(self) -> str:
        return f"{self.source} at {self.at:%Y-%m-%d %H:%M}: {self.broken}/{self.chains} broken"
