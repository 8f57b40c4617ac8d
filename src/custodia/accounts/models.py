"""People who log in (one login per email across businesses) and their API tokens."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Lower

from custodia.tenancy.models import Membership, TenantOwned


class UserManager(BaseUserManager["User"]):
    def create_user(self, email: str, password: str | None = None, **fields: Any) -> User:
        """A user with a normalised email; without a password the account cannot log in."""
        user = self.model(email=normalize_email(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user


def normalize_email(email: str) -> str:
    """Emails are compared case-insensitively; we store them lower-cased."""
    return email.strip().lower()


class User(AbstractBaseUser):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(max_length=254)
    full_name = models.CharField(max_length=120, blank=True)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(auto_now_add=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_unique_ci")]

    def __str__(self) -> str:
        return self.full_name or self.email

    @property
    def display_name(self) -> str:
        return self.full_name or self.email


class ApiToken(TenantOwned):
    """A personal API token bound to one membership: public prefix + HMAC digest, shown once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    scopes = ArrayField(models.CharField(max_length=40))
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "user"], name="apitoken_tenant_user")]


class SecurityEventKind(models.TextChoices):
    """What happened to an account (shown in the person's security panel and emailed to them)."""

    LOGIN = "login", "Signed in"
    NEW_DEVICE_LOGIN = "login.new_device", "Signed in from a new device"
    PASSWORD_CHANGED = "password.changed", "Password changed"
    PASSWORD_RESET = "password.reset", "Password reset by email link"
    MFA_ADDED = "mfa.added", "Two-factor method added"
    MFA_REMOVED = "mfa.removed", "Two-factor method removed"
    EMAIL_CHANGED = "email.changed", "Email address changed"
    LOCKOUT = "login.lockout", "Sign-in paused after failed attempts"
    UNLOCKED = "login.unlocked", "Sign-in unlocked by email link"
    API_RATE_LIMITED = "api.rate_limited", "API requests refused: rate limit reached"


class SecurityEvent(models.Model):
    """One security-relevant event of a login: when, from where, with what; never a secret.

    Global like the login itself and allauth's per-user tables (email addresses, authenticators,
    user sessions): not under row-level security, which here isolates businesses (every guarded
    table is tenant-owned). Events are written before anyone is signed in (lockouts, resets,
    unlock links) and read only through `access.recent_security_events(user)`.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="security_events")
    kind = models.CharField(max_length=32, choices=SecurityEventKind.choices)
    at = models.DateTimeField()
    ip = models.GenericIPAddressField(null=True, blank=True)
    # A summary such as "Firefox 120 on Linux", never the raw header.
    user_agent = models.CharField(max_length=120, blank=True)
    # The browser family and network prefix a login came from (what "a new device" compares).
    device = models.CharField(max_length=160, blank=True)
    detail = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-at"], name="securityevent_user_at")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M}"


class LoginThrottle(models.Model):
    """Failed sign-ins for one login name, known account or not (so both are answered alike).

    `key` is an HMAC of the normalised email: the table names no address. After
    `LOGIN_LOCKOUT_THRESHOLD` consecutive failures, sign-in for that name pauses for a back-off
    that doubles with each pause in a series (capped, never permanent); the account's owner can
    lift it with the single-use link emailed to them. `generation` changes on every unlock and
    success, which voids earlier unlock links.
    """

    key = models.CharField(max_length=64, primary_key=True)
    failures = models.PositiveIntegerField(default=0)
    lockouts = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    generation = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.failures} failures, {self.lockouts} pauses"


class ApiRateLimit(models.Model):
    """How far ahead of its allowance one API token or session is (api/ratelimit.py).

    `key` is an HMAC of the presented token or session key: the table holds neither. `tat` is the
    theoretical arrival time of the generic cell rate algorithm: a request is allowed while
    `tat` stays within one minute of now, and each allowed request moves it on by a minute's
    share of the limit. `allowed` and `notify` are the last request's verdict (returned by the
    same statement that decides it); `noticed_until` spaces the security events of one caller's
    refusals a minute apart. UNLOGGED (see its migration): after a crash every caller starts afresh.
    """

    key = models.CharField(max_length=64, primary_key=True)
    tat = models.DateTimeField()
    allowed = models.BooleanField(default=True)
    notify = models.BooleanField(default=False)
    noticed_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"ahead until {self.tat:%H:%M:%S}"


class CalendarFeed(TenantOwned):
    """A member's iCalendar feed of their visits, at a secret URL (docs/visits.md).

    Stored as API tokens are: a public prefix to find the row and an HMAC digest of the secret
    (accounts/digests.py), the plain URL shown once. A membership has at most one live feed;
    a new one revokes the old. A revoked feed stays as a record of what was issued.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="calendar_feeds")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "membership"], name="calendarfeed_tenant_member")]
        constraints = [
            models.UniqueConstraint(
                fields=["membership"],
                condition=models.Q(revoked_at__isnull=True),
                name="calendarfeed_one_live_per_membership",
            )
        ]

    def __str__(self) -> str:
        return f"calendar feed {self.prefix}"
