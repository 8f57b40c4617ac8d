"""Clients of a business, their home-access instructions, and staff assignments."""

from __future__ import annotations

import re
import uuid

from django.db import models

from custodia.clients.limits import LIMITS
from custodia.crypto.fields import EncryptedTextField
from custodia.tenancy.models import Membership, TenantOwned


def email_key(email: str) -> str:
    """The form of an email used for equality search."""
    return email.strip().lower()


def phone_key(phone: str) -> str:
    """The form of a phone number used for equality search: digits only."""
    return re.sub(r"\D", "", phone)


def name_key(name: str) -> str:
    """The form of a name used for prefix search."""
    return " ".join(name.lower().split())


class Client(TenantOwned):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The name is not encrypted: lists are ordered by it and searched by its prefix
    # (docs/keys.md, "What is not encrypted"). Everything else about the client is.
    name = models.CharField(max_length=LIMITS["name"])
    email = EncryptedTextField()
    phone = EncryptedTextField()
    address = EncryptedTextField()
    notes = EncryptedTextField()
    # Search keys, maintained by the actions that write the fields above: the name's prefix
    # form, and keyed blind indexes of the email and phone (equality only; crypto/keyring.py).
    name_search = models.CharField(max_length=LIMITS["name"], editable=False)
    email_search = models.BinaryField(null=True, editable=False)
    phone_search = models.BinaryField(null=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Set when the client's personal data was erased (clients/erasure.py); the record stays, as
    # an anonymous row the visits' statistics still count.
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "name_search"], name="client_tenant_name"),
            models.Index(
                fields=["tenant", "name_search"],
                name="client_tenant_name_prefix",
                opclasses=["uuid_ops", "text_pattern_ops"],
            ),
            models.Index(fields=["tenant", "email_search"], name="client_tenant_email"),
            models.Index(fields=["tenant", "phone_search"], name="client_tenant_phone"),
        ]

    def __str__(self) -> str:
        # An id, not the name: reprs end up in error messages and logged tracebacks (pydantic
        # puts its input's repr in its errors). Pages show `client.name` explicitly.
        return f"client {self.pk}"


class HomeAccess(TenantOwned):
    """Door and alarm codes: staff see them only around their own visits (RLS enforces it)."""

    client = models.OneToOneField(
        Client, on_delete=models.CASCADE, primary_key=True, related_name="home_access"
    )
    instructions = EncryptedTextField()
    door_code = EncryptedTextField()
    alarm_code = EncryptedTextField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "client"], name="homeaccess_tenant_client")]


class Assignment(TenantOwned):
    """A manager's decision that a staff member serves a client."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="assignments")
    staff = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="assignments")
    assigned_by = models.ForeignKey(
        Membership, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "client", "staff"], name="assignment_unique")
        ]
        indexes = [
            models.Index(fields=["tenant", "staff", "client"], name="assignment_tenant_staff")
        ]


class ErasureRequest(TenantOwned):
    """A client's request, from the portal, that the business erase their personal data; a
    manager or owner confirms it (clients/erasure.py). Ids and times only."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="erasure_requests")
    requested_at = models.DateTimeField(auto_now_add=True)
    erased_at = models.DateTimeField(null=True, blank=True)
    erased_by = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "client"],
                condition=models.Q(erased_at__isnull=True),
                name="erasure_one_pending_per_client",
            )
        ]
        indexes = [models.Index(fields=["tenant", "requested_at"], name="erasure_tenant_requested")]
