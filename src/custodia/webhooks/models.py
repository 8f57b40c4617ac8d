"""A business's webhook endpoints and the outbox of their deliveries (docs/webhooks.md).

Both tables are the owners' alone under row-level security (migrations/0002_rls.py). A delivery
row is written in the transaction of the action that caused its event (events.py), through a
database function that finds the subscribed endpoints for any member's action without letting
that member read them.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from django.contrib.postgres.fields import ArrayField
from django.db import models

from custodia.crypto.fields import EncryptedTextField
from custodia.tenancy.models import TenantOwned

URL_LENGTH = 2000
DESCRIPTION_LENGTH = 200
ERROR_LENGTH = 120


class EventType(StrEnum):
    """What an endpoint can subscribe to; a new kind of event is one member here and one
    `emit_event` call in the action that causes it."""

    VISIT_CREATED = "visit.created"
    VISIT_CHANGED = "visit.changed"
    VISIT_CANCELLED = "visit.cancelled"
    VISIT_COMPLETED = "visit.completed"
    VISIT_DELETED = "visit.deleted"
    INVOICE_ISSUED = "invoice.issued"
    INVOICE_PAID = "invoice.paid"
    INVOICE_VOIDED = "invoice.voided"
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_REFUNDED = "payment.refunded"
    PASS_SOLD = "pass.sold"  # noqa: S105
    PASS_VOIDED = "pass.voided"  # noqa: S105
    PASS_CREDIT_USED = "pass.credit_used"  # noqa: S105
    PASS_CREDIT_RETURNED = "pass.credit_returned"  # noqa: S105
    PASS_EXPIRED = "pass.expired"  # noqa: S105
    MEMBERSHIP_STARTED = "membership.started"
    MEMBERSHIP_CANCELLED = "membership.cancelled"
    MEMBERSHIP_CREDIT_USED = "membership.credit_used"
    MEMBERSHIP_CREDIT_RETURNED = "membership.credit_returned"
    MEMBERSHIP_RENEWED = "membership.renewed"
    MEMBERSHIP_REACTIVATED = "membership.reactivated"
    # Sent by the test button only; no endpoint subscribes to it.
    TEST = "webhook.test"


SUBSCRIBABLE = [event for event in EventType if event != EventType.TEST]


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class Endpoint(TenantOwned):
    """Where a business's events go, signed with a secret only its owners saw (once)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    url = models.CharField(max_length=URL_LENGTH)
    description = models.CharField(max_length=DESCRIPTION_LENGTH, blank=True)
    event_types = ArrayField(models.CharField(max_length=40), default=list)
    is_active = models.BooleanField(default=True)
    # `whsec_` + base64 of 32 random bytes (the Standard Webhooks format), sealed.
    secret = EncryptedTextField()
    # The secret before the last rotation: it signs too until `previous_expires_at`, then is
    # erased (tasks.py).
    previous_secret = EncryptedTextField()
    previous_expires_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Set when the endpoint was switched off for failing; an owner turns it on again.
    disabled_for_failures_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"], name="webhook_endpoint_tenant")]

    def __str__(self) -> str:
        return f"webhook endpoint {self.pk}"


class Delivery(TenantOwned):
    """One event for one endpoint: the outbox row, then the log of its attempts' outcome.

    The payload holds ids and non-sensitive fields only (events.py); the response's body is
    never kept, only its status code.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    # The event's id: the `webhook-id` header, the same on every attempt and every endpoint.
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=40)
    payload = models.JSONField()
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    # When a worker may next try it. An attempt under way pushes it past its timeout first, so a
    # worker killed mid-attempt leaves the row pending and due again soon after (tasks.py).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # From a fixed list (delivery.py): never a response's text or an exception's.
    error = models.CharField(max_length=ERROR_LENGTH, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "endpoint", "created_at"], name="webhook_delivery_log"),
            models.Index(fields=["tenant", "status", "next_attempt_at"], name="webhook_due"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=[status.value for status in DeliveryStatus]),
                name="webhook_delivery_status_valid",
            )
        ]

    def __str__(self) -> str:
        return f"webhook delivery {self.pk} ({self.status})"
