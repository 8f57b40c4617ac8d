"""Businesses (the tenants), memberships and invitations."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from custodia.core.permissions import Role
from custodia.tenancy.zones import default_time_zone

# Seven days, Monday first, each "HH:MM-HH:MM" or empty (closed); tenancy/profile.py reads it.
_DAY = r"([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]"
OPENING_HOURS_PATTERN = rf"^(({_DAY})?,){{6}}({_DAY})?$"
ROLE_CHOICES = [(role.value, role.label) for role in Role]


def default_currency() -> str:
    """A new business's currency: CUSTODIA_DEFAULT_CURRENCY (checked at start-up)."""
    return str(settings.DEFAULT_CURRENCY)


class Business(models.Model):
    """A tenant. Every tenant-owned row points here through `tenant_id`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    access_window_before_hours = models.PositiveSmallIntegerField(default=24)
    access_window_after_hours = models.PositiveSmallIntegerField(default=12)
    # Account security policy (accounts/): sessions idle longer than this end; members of the
    # roles marked must have a second factor before they reach anything of the business.
    session_idle_minutes = models.PositiveSmallIntegerField(default=30, db_default=30)
    mfa_required_owners = models.BooleanField(default=False, db_default=False)
    mfa_required_managers = models.BooleanField(default=False, db_default=False)
    mfa_required_staff = models.BooleanField(default=False, db_default=False)
    # Money (payments/): amounts are integers in this currency's minor units (ISO 4217); a
    # cancelled visit that had used a pass credit gives it back when `credit_back_on_cancel`.
    currency = models.CharField(max_length=3, default=default_currency, db_default="USD")
    credit_back_on_cancel = models.BooleanField(default=True, db_default=True)
    # Times shown and entered for this business are in this IANA zone (tenancy/zones.py).
    time_zone = models.CharField(max_length=64, default=default_time_zone, db_default="UTC")
    # The business profile (tenancy/profile.py): opening hours, Monday first, as seven
    # comma-separated "HH:MM-HH:MM" (an empty entry is a closed day; "" is not set yet); the
    # client's visit reminder goes out this many hours before the visit (0: no reminder).
    opening_hours = models.CharField(max_length=90, default="", db_default="", blank=True)
    reminder_hours_before = models.PositiveSmallIntegerField(default=24, db_default=24)
    created_at = models.DateTimeField(auto_now_add=True)
    # Closing (tenancy/closing.py): closed, the business is read-only until `purge_after`, when
    # the daily purge deletes it; the database refuses every write meanwhile (tenancy/0007).
    # `purging` is set only inside the purge's (or deletion's) own transaction, the one change a
    # closed business's rows accept: their deletion.
    closed_at = models.DateTimeField(null=True, blank=True)
    purge_after = models.DateTimeField(null=True, blank=True)
    purging = models.BooleanField(default=False, db_default=False)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(closed_at__isnull=True, purge_after__isnull=True)
                | models.Q(closed_at__isnull=False, purge_after__isnull=False),
                name="business_closed_has_purge_date",
            ),
            models.CheckConstraint(
                condition=models.Q(access_window_before_hours__lte=168)
                & models.Q(access_window_after_hours__lte=168),
                name="business_access_window_bounded",
            ),
            models.CheckConstraint(
                condition=models.Q(currency__regex=r"^[A-Z]{3}$"), name="business_currency_code"
            ),
            models.CheckConstraint(
                condition=models.Q(session_idle_minutes__gte=5)
                & models.Q(session_idle_minutes__lte=120),
                name="business_session_idle_bounded",
            ),
            models.CheckConstraint(
                condition=models.Q(reminder_hours_before__lte=168),
                name="business_reminder_hours_bounded",
            ),
            models.CheckConstraint(
                condition=models.Q(opening_hours="")
                | models.Q(opening_hours__regex=OPENING_HOURS_PATTERN),
                name="business_opening_hours_shape",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class TenantOwned(models.Model):
    """Base for every tenant-owned table: `tenant_id NOT NULL`, guarded by RLS."""

    tenant = models.ForeignKey(Business, on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True


class Membership(TenantOwned):
    """A person's role in one business; one login may hold memberships in several."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=ROLE_CHOICES)
    # A client's portal login points at their client record; no other role has one.
    client = models.OneToOneField(
        "clients.Client",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="portal_membership",
    )
    is_active = models.BooleanField(default=True)
    # An owner's grant of card work (payments:card:*) to a manager; meaningless for other roles.
    cards_granted = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_one_per_business"),
            models.CheckConstraint(
                condition=models.Q(role=Role.CLIENT, client__isnull=False)
                | (~models.Q(role=Role.CLIENT) & models.Q(client__isnull=True)),
                name="membership_client_iff_client_role",
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=[role.value for role in Role]),
                name="membership_role_valid",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "role"], name="membership_tenant_role")]

    def __str__(self) -> str:
        return f"{self.role} of {self.tenant_id}"


class Invitation(TenantOwned):
    """A single-use, expiring invitation; the secret half is stored only as a digest."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=ROLE_CHOICES)
    client = models.ForeignKey(
        "clients.Client", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    invited_by = models.ForeignKey(
        Membership, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"], name="invitation_tenant_created")]

    def __str__(self) -> str:
        return f"invitation {self.prefix} ({self.role})"


class ClosedBusiness(models.Model):
    """What is kept of a closed business once it is purged: its id, dates and counts, no names.

    Written when the business closes, completed by the purge, and left behind by it; the id is
    not a foreign key (the business goes). Row-level security: only a context naming that
    business reads or writes its row (tenancy/0007).
    """

    business_id = models.UUIDField(primary_key=True)
    closed_at = models.DateTimeField()
    purge_after = models.DateTimeField()
    purged_at = models.DateTimeField(null=True, blank=True)
    keys_destroyed_at = models.DateTimeField(null=True, blank=True)
    clients = models.PositiveIntegerField(null=True, blank=True)
    visits = models.PositiveIntegerField(null=True, blank=True)
    members = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"closed business {self.business_id}"
