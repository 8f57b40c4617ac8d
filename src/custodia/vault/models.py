"""The vault's tables, in its own database (custodia_vault): cards, form sessions, one-time
references, charges, refunds, seen request nonces, and the sandbox gateway's operations.

No column holds a card number or a holder name in clear: both are sealed under the business's
vault data key (vault/keys.py). The security code is never stored at all.
"""

from __future__ import annotations

from typing import ClassVar

from django.db import models

# Each model names its manager (and the foreign key ids read): mypy's Django plugin knows the
# app's settings only, in which the vault is no installed app, so it does not add them itself.


class Card(models.Model):
    objects: ClassVar[models.Manager[Card]] = models.Manager()
    token = models.CharField(primary_key=True, max_length=40)
    business_id = models.UUIDField()
    brand = models.CharField(max_length=20)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    # HMAC-SHA256 of the number under the business's index key: equal within a business only.
    fingerprint = models.CharField(max_length=64)
    # Sealed (AES-256-GCM) number and holder name; NULL once the card is deleted.
    number_sealed = models.BinaryField(null=True)
    holder_sealed = models.BinaryField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True)

    class Meta:
        indexes = [models.Index(fields=["business_id", "fingerprint"])]

    def __str__(self) -> str:
        return f"card {self.token} ({self.brand} {self.last4})"


class FormSession(models.Model):
    objects: ClassVar[models.Manager[FormSession]] = models.Manager()
    form_id = models.CharField(primary_key=True, max_length=64)
    business_id = models.UUIDField()
    return_url = models.CharField(max_length=2000)
    # Failed tries (wrong details, declines): the form closes after a few (vault/actions.py).
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"form {self.form_id}"


class Reference(models.Model):
    objects: ClassVar[models.Manager[Reference]] = models.Manager()
    ref = models.CharField(primary_key=True, max_length=64)
    business_id = models.UUIDField()
    card = models.ForeignKey(Card, on_delete=models.CASCADE, related_name="+")
    duplicate_of = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    redeemed_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"reference of business {self.business_id}"


class ChargeStatus(models.TextChoices):
    APPROVED = "approved"
    DECLINED = "declined"
    PENDING = "pending"
    # The gateway did not answer: the money may or may not have moved (retry with the same key).
    UNKNOWN = "unknown"


class Charge(models.Model):
    objects: ClassVar[models.Manager[Charge]] = models.Manager()
    charge_id = models.CharField(primary_key=True, max_length=40)
    business_id = models.UUIDField()
    idempotency_key = models.CharField(max_length=255)
    # SHA-256 of the request body: the same key with another body is refused.
    request_digest = models.CharField(max_length=64)
    # The key the gateway knows the charge by (vault/idempotency.py): its webhooks name it.
    gateway_key = models.CharField(max_length=100, db_index=True)
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="+")
    amount = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=ChargeStatus.choices)
    decline_code = models.CharField(max_length=50, blank=True)
    message = models.CharField(max_length=300, blank=True)
    gateway_reference = models.CharField(max_length=100, blank=True)
    refunded = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["business_id", "idempotency_key"], name="vault_charge_one_per_key"
            )
        ]

    def __str__(self) -> str:
        return f"charge {self.charge_id} ({self.status})"


class Refund(models.Model):
    objects: ClassVar[models.Manager[Refund]] = models.Manager()
    refund_id = models.CharField(primary_key=True, max_length=40)
    business_id = models.UUIDField()
    idempotency_key = models.CharField(max_length=255)
    request_digest = models.CharField(max_length=64)
    charge = models.ForeignKey(Charge, on_delete=models.PROTECT, related_name="refunds")
    charge_id: str
    amount = models.PositiveBigIntegerField()
    status = models.CharField(max_length=10, choices=ChargeStatus.choices)
    decline_code = models.CharField(max_length=50, blank=True)
    message = models.CharField(max_length=300, blank=True)
    gateway_reference = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["business_id", "idempotency_key"], name="vault_refund_one_per_key"
            )
        ]

    def __str__(self) -> str:
        return f"refund {self.refund_id} ({self.status})"


class DestroyedBusiness(models.Model):
    """A business whose vault key was destroyed: every later request for it is refused."""

    objects: ClassVar[models.Manager[DestroyedBusiness]] = models.Manager()
    business_id = models.UUIDField(primary_key=True)
    destroyed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"destroyed business {self.business_id}"


class SeenNonce(models.Model):
    """A signed request's unique id, kept until its timestamp leaves the 5-minute window."""

    objects: ClassVar[models.Manager[SeenNonce]] = models.Manager()
    nonce = models.CharField(primary_key=True, max_length=100)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"nonce until {self.expires_at}"


class SandboxOperation(models.Model):
    """What the sandbox gateway did for one idempotency key (shared by every vault worker)."""

    objects: ClassVar[models.Manager[SandboxOperation]] = models.Manager()
    idempotency_key = models.CharField(primary_key=True, max_length=100)
    kind = models.CharField(max_length=10)  # verify, charge, refund
    outcome = models.CharField(max_length=10)
    reference = models.CharField(max_length=100)
    decline_code = models.CharField(max_length=50, blank=True)
    message = models.CharField(max_length=300, blank=True)
    amount = models.PositiveBigIntegerField(default=0)
    currency = models.CharField(max_length=3, blank=True)
    # Every call that named this key, repeats included: "charged once" is calls == 1 too.
    calls = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"sandbox {self.kind} {self.outcome}"
