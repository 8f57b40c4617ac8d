"""Services a business sells and the visits its staff make."""

from __future__ import annotations

import uuid
from enum import StrEnum

from django.db import models

from custodia.clients.models import Client
from custodia.crypto.fields import EncryptedBinaryField, EncryptedTextField
from custodia.scheduling.images import THUMBNAIL_DIMENSION
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
    # Set by the assigned staff member on arrival and departure (do_check_in_visit).
    checked_in_at = models.DateTimeField(null=True, blank=True)
    checked_out_at = models.DateTimeField(null=True, blank=True)
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


class NoticeKind(StrEnum):
    """The emails about a visit (scheduling/notices.py says who gets each, and when)."""

    REQUESTED = "requested"
    CONFIRMED = "confirmed"
    CHANGED = "changed"
    CANCELLED = "cancelled"
    REMINDER = "reminder"
    REPORT = "report"


class NoticeStatus(StrEnum):
    # An event the action wrote, not yet turned into one row per recipient.
    NEW = "new"
    # An event turned into its recipients' rows.
    EXPANDED = "expanded"
    # A recipient's message waiting for the worker; then sent, or skipped (opted out, no
    # address, the visit changed meanwhile).
    DUE = "due"
    SENT = "sent"
    SKIPPED = "skipped"


class Notice(TenantOwned):
    """The outbox of visit emails: one row per (visit, kind, recipient, version).

    An action writes the event (no recipient yet: a client may not even list the managers it
    goes to); the worker, as the business's system actor, writes a row per recipient and sends
    each once (scheduling/outbox.py). The unique key makes a second write of the same event or
    recipient a no-op, however often a job runs.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Deleted with its visit by the database's own foreign key (ON DELETE CASCADE, migration
    # 0008), not by Django: a Django cascade would stop Django deleting visits in one fast
    # statement, and a business's purge would then set the staff of its visits to NULL before
    # deleting them, an update its closed-business guard refuses.
    visit = models.ForeignKey(
        Visit, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    kind = models.CharField(
        max_length=10, choices=[(kind.value, kind.value.capitalize()) for kind in NoticeKind]
    )
    recipient = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # What makes a second event of a kind a new one: the visit's change time for changes, its
    # start (epoch seconds) for reminders, 0 for kinds sent once per visit.
    version = models.BigIntegerField(default=0)
    status = models.CharField(
        max_length=10,
        choices=[(status.value, status.value.capitalize()) for status in NoticeStatus],
        default=NoticeStatus.NEW,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "visit", "kind", "version", "recipient"],
                name="notice_once",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=[kind.value for kind in NoticeKind]),
                name="notice_kind_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=[status.value for status in NoticeStatus]),
                name="notice_status_valid",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "status"], name="notice_tenant_status")]


class NoticeChoice(TenantOwned):
    """What one member chose not to receive; no row means everything they may receive."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    membership = models.OneToOneField(Membership, on_delete=models.CASCADE, related_name="+")
    # A client's: reminders the day before, changes and cancellations, reports written.
    reminders = models.BooleanField(default=True)
    changes = models.BooleanField(default=True)
    reports = models.BooleanField(default=True)
    # An owner's or manager's: a client requested a visit.
    requests = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)


class VisitPhoto(TenantOwned):
    """A photo staff took at a visit (scheduling/photos.py): re-encoded without metadata, sealed
    with the business's key with its thumbnail, deleted with the visit (and so with the client)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Deleted with its visit by the database (ON DELETE CASCADE, migration 0009), as Notice.visit
    # is and for the same reason.
    visit = models.ForeignKey(
        Visit, on_delete=models.DO_NOTHING, db_constraint=False, related_name="photos"
    )
    image = EncryptedBinaryField()
    thumbnail = EncryptedBinaryField()
    content_type = models.CharField(max_length=40)
    size = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_by = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "visit", "created_at"], name="visitphoto_tenant_visit"),
        ]

    @property
    def thumbnail_width(self) -> int:
        """The thumbnail's width (the image scaled to fit THUMBNAIL_DIMENSION, never enlarged)."""
        return self._thumbnail_size()[0]

    @property
    def thumbnail_height(self) -> int:
        return self._thumbnail_size()[1]

    def _thumbnail_size(self) -> tuple[int, int]:
        scale = min(1.0, THUMBNAIL_DIMENSION / max(self.width, self.height, 1))
        return max(1, round(self.width * scale)), max(1, round(self.height * scale))
