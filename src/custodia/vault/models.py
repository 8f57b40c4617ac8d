"""The vault's tables, in its own database (custodia_vault): cards, form sessions, one-time
references, charges, refunds, seen request nonces, and the sandbox gateway's operations.

No column holds a card number or a holder name in clear: both are sealed under the business's
vault data key (vault/keys.py). The security code is never stored at all.
"""

from __future__ import annotations

from django.db import models


class Card(models.Model):
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


class FormSession(models.Model):
    form_id = models.CharField(primary_key=True, max_length=64)
    business_id = models.UUIDField()
    return_url = models.CharField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True)


class Reference(models.Model):
    ref = models.CharField(primary_key=True, max_length=64)
    business_id = models.UUIDField()
    card = models.ForeignKey(Card, on_delete=models.CASCADE, related_name="+")
    duplicate_of = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    redeemed_at = models.DateTimeField(null=True)


class ChargeStatus(models.TextChoices):
    APPROVED = "approved"
    DECLINED = "declined"
    PENDING = "pending"
    # The gateway did not answer: the money may or may not have moved (retry with the same key).
    UNKNOWN = "unknown"


class Charge(models.Model):
    charge_id = models.CharField(primary_key=True, max_length=40)
    business_id = models.UUIDField()
    idempotency_key = models.CharField(max_length=255)
    # SHA-256 of the request body: the same key with another body is refused.
    request_digest = models.CharField(max_length=64)
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


class Refund(models.Model):
    refund_id = models.CharField(primary_key=True, max_length=40)
    business_id = models.UUIDField()
    idempotency_key = models.CharField(max_length=255)
    request_digest = models.CharField(max_length=64)
    charge = models.ForeignKey(Charge, on_delete=models.PROTECT, related_name="refunds")
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


class DestroyedBusiness(models.Model):
    """A business whose vault key was destroyed: every later request for it is refused."""

    business_id = models.UUIDField(primary_key=True)
    destroyed_at = models.DateTimeField(auto_now_add=True)


class SeenNonce(models.Model):
    """A signed request's unique id, kept until its timestamp leaves the 5-minute window."""

    nonce = models.CharField(primary_key=True, max_length=100)
    expires_at = models.DateTimeField(db_index=True)


class SandboxOperation(models.Model):
    """What the sandbox gateway did for one idempotency key (shared by every vault worker)."""

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
