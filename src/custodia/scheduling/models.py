"""Services a business sells and the visits its staff make."""

from __future__ import annotations

import uuid
from enum import StrEnum

from django.db import models

from custodia.clients.models import Client
from custodia.crypto.fields import EncryptedTextField
from custodia.tenancy.models import Membership, TenantOwned


class VisitStatus(StrEnum):
    REQUESTED = "requested"
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Service(TenantOwned):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    duration_minutes = models.PositiveIntegerField()
    price_cents = models.PositiveIntegerField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "name"], name="service_tenant_name")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(duration_minutes__gte=5) & models.Q(duration_minutes__lte=1440),
                name="service_duration_bounded",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Visit(TenantOwned):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="visits")
    staff = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="visits"
    )
    service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.SET_NULL, related_name="visits"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    status = models.CharField(
        max_length=10,
        choices=[(status.value, status.value.capitalize()) for status in VisitStatus],
        default=VisitStatus.SCHEDULED,
    )
    request_note = EncryptedTextField()
    report = EncryptedTextField()
    # A visit of a repeating series (scheduling/series.py): the visits made together share the
    # id, and each keeps the rule they were made from, in words and as RFC 5545.
    series_id = models.UUIDField(null=True, blank=True, editable=False)
    series_rule = models.CharField(
        max_length=300, blank=True, default="", db_default="", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="visit_ends_after_start"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=[status.value for status in VisitStatus]),
                name="visit_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "starts_at"], name="visit_tenant_starts"),
            models.Index(fields=["tenant", "series_id", "starts_at"], name="visit_tenant_series"),
            models.Index(fields=["tenant", "staff", "starts_at"], name="visit_tenant_staff_starts"),
            models.Index(
                fields=["tenant", "client", "starts_at"], name="visit_tenant_client_starts"
            ),
        ]
