"""Wallet passes: a client's punch pass or membership as an Apple Wallet pass (and a Google
Wallet object), and the devices that registered for its updates (docs/wallet.md).

A `WalletPass` shows exactly one of a client pass or a client membership (its source), and is
made the first time the client downloads it. Its serial number is random
and says nothing (not the pass's id); its authentication token is derived from the serial under
a key of its own (`wallet/tokens.py`) and stored only as a digest, by which a device's request
finds it. `updated_at` is the pass's update tag: it moves whenever what the pass shows changes.
"""

from __future__ import annotations

import uuid

from django.db import models

from custodia.clients.models import Client
from custodia.payments.models import ClientMembership, ClientPass
from custodia.tenancy.models import TenantOwned

SERIAL_LENGTH = 32
DIGEST_LENGTH = 64
# Apple's device library identifiers and push tokens are hex or similar; bounded all the same.
DEVICE_ID_LENGTH = 128
PUSH_TOKEN_LENGTH = 200


class WalletPass(TenantOwned):
    """A client pass or membership as issued to wallets: its opaque serial, token digest and
    update tag."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # What it shows: exactly one of the two (the check constraint `walletpass_one_source`).
    client_pass = models.OneToOneField(
        ClientPass, null=True, blank=True, on_delete=models.CASCADE, related_name="wallet_pass"
    )
    membership = models.OneToOneField(
        ClientMembership,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="wallet_pass",
    )
    # The pass's client, kept here for row-level security (wallet/migrations/0002_rls.py).
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+")
    serial_number = models.CharField(max_length=SERIAL_LENGTH, unique=True)
    auth_digest = models.CharField(max_length=DIGEST_LENGTH, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["tenant", "updated_at"], name="walletpass_tenant_updated")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(client_pass__isnull=False, membership__isnull=True)
                | models.Q(client_pass__isnull=True, membership__isnull=False),
                name="walletpass_one_source",
            )
        ]

    def __str__(self) -> str:
        return f"wallet pass {self.pk}"


class WalletRegistration(TenantOwned):
    """A device that asked for a pass's updates (Apple's PassKit web service)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    wallet_pass = models.ForeignKey(
        WalletPass, on_delete=models.CASCADE, related_name="registrations"
    )
    # The pass's client again: the policies of this table never read wallet passes, whose own
    # policy reads this table (a device's list of its passes).
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+")
    device_library_id = models.CharField(max_length=DEVICE_ID_LENGTH)
    push_token = models.CharField(max_length=PUSH_TOKEN_LENGTH)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "device_library_id"], name="walletreg_tenant_device")
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["wallet_pass", "device_library_id"], name="walletreg_one_per_device"
            )
        ]

    def __str__(self) -> str:
        return f"wallet registration {self.pk}"
