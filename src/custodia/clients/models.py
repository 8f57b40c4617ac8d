"""Clients of a business, their home-access instructions, pets and household details, and staff
assignments."""

from __future__ import annotations

import re
import uuid

from django.db import models

from custodia.clients.limits import LIMITS
from custodia.crypto.fields import EncryptedBinaryField, EncryptedTextField
from custodia.tenancy.models import Business, Membership, TenantOwned


def email_key(email: str) -> str:
    """The form of an email used for equality search."""
    return email.strip().lower()


def phone_key(phone: str) -> str:
    """The form of a phone number used for equality search: digits only."""
    return re.sub(r"\D", "", phone)


def name_key(name: str) -> str:
    """The form of a name used for search (`Client.name_search`): lower case, single spaces."""
    return " ".join(name.lower().split())


# Characters after which a word of a name starts (clients/0008 `custodia_name_parts` reads it).
NAME_SEPARATORS = " -'\u2019.,()/&+_\""


def name_parts(key: str) -> set[str]:
    """The parts of a name's search form that a search finds by their beginning
    (`ClientNamePart`): the whole form, and its rest from each word start on, a word starting at
    a character that is not a separator right after one that is ("ashley o'neil-leeds":
    "ashley o'neil-leeds", "o'neil-leeds", "neil-leeds", "leeds"). The database cuts the same
    (clients/0008 `custodia_name_parts`, which maintains the table); this is its reference."""
    parts = {key} if key else set()
    for index in range(1, len(key)):
        if key[index] not in NAME_SEPARATORS and key[index - 1] in NAME_SEPARATORS:
            parts.add(key[index:])
    return parts


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


class ClientNamePart(TenantOwned):
    """A client's name from one of its word starts on (`name_parts`), so that a search finds a
    name by any of its words with a prefix lookup on an index that leads with tenant_id: "lee"
    finds "Kim Lee" and "Ashley Leeds". Derived data, written only by the database: a trigger on
    clients_client keeps it equal to the name's search form (clients/0008), in the transaction
    that writes the client (whatever writes it: an action, erasure, a bulk load).

    Not encrypted, like the name it is cut from (docs/keys.md, "What is not encrypted"): a
    trigram index would do the same job, but its operators are not leakproof, so under
    row-level security it would become a filter over every row of the business."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Both indexed only as the first columns of the indexes in Meta: an index of the tenant
    # alone would look cheaper to a planner with stale statistics, and find a whole business.
    tenant = models.ForeignKey(Business, on_delete=models.CASCADE, related_name="+", db_index=False)
    client = models.ForeignKey(
        Client, on_delete=models.CASCADE, related_name="name_parts", db_index=False
    )
    part = models.CharField(max_length=LIMITS["name"], editable=False)

    class Meta:
        indexes = [
            models.Index(
                fields=["tenant", "part"],
                name="clientnamepart_tenant_part",
                opclasses=["uuid_ops", "text_pattern_ops"],
                include=["client"],
            ),
            models.Index(fields=["tenant", "client"], name="clientnamepart_tenant_client"),
        ]

    def __str__(self) -> str:
        return f"name part of client {self.client_id}"


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


class Pet(TenantOwned):
    """A client's pet (docs/profiles.md). The name, species, breed, birthday and feeding are
    plain (lists show them); medication, the vet and the notes are sealed."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="pets")
    name = models.CharField(max_length=LIMITS["pet_name"])
    species = models.CharField(max_length=LIMITS["species"], blank=True, default="")
    breed = models.CharField(max_length=LIMITS["breed"], blank=True, default="")
    birthday = models.DateField(null=True, blank=True)
    feeding = models.TextField(blank=True, default="")
    medication = EncryptedTextField()
    vet_name = EncryptedTextField()
    vet_phone = EncryptedTextField()
    notes = EncryptedTextField()
    # The photo and its thumbnail (JPEG, re-encoded without metadata), sealed; NULL without one.
    # Lists never load them (clients/profiles.py defers them): each is served by its own read.
    photo = EncryptedBinaryField(null=True, default=None)
    photo_thumbnail = EncryptedBinaryField(null=True, default=None)
    # When the photo was set (plain): whether there is one, and what makes its address change.
    photo_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "client", "name"], name="pet_tenant_client")]

    def __str__(self) -> str:
        # An id, not the name (see Client.__str__).
        return f"pet {self.pk}"


class Household(TenantOwned):
    """Household details: keys held and parking (plain), Wi-Fi and the emergency contact
    (sealed, and shown to staff only around their own visits, like door codes)."""

    client = models.OneToOneField(
        Client, on_delete=models.CASCADE, primary_key=True, related_name="household"
    )
    keys_held = models.CharField(max_length=LIMITS["keys_held"], blank=True, default="")
    parking = models.TextField(blank=True, default="")
    wifi_name = EncryptedTextField()
    wifi_password = EncryptedTextField()
    emergency_contact = EncryptedTextField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "client"], name="household_tenant_client")]


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
