"""The audit trail: append-only events, hash-chained per business, with signed checkpoints.

Rows are written only by `core.audit.record` (a plain INSERT); the database fills in the id,
time, lane, sequence number and hash (trigger `custodia_audit_chain`, audit/migrations/0001) and
refuses UPDATE and DELETE. docs/audit.md explains the chain.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models


class AuditEvent(models.Model):
    """One thing someone did, or was refused: who, as what, to what, when, from where."""

    id = models.BigIntegerField(primary_key=True)
    # NULL: the platform chain (sign-ins and other events of a login, not of one business).
    tenant_id = models.UUIDField(null=True)
    # A business's trail is a few independent chains ("lanes"), so concurrent requests of one
    # business do not queue behind one lock; each lane is strictly ordered by `seq`.
    lane = models.SmallIntegerField()
    seq = models.BigIntegerField()
    occurred_at = models.DateTimeField()
    actor_user_id = models.UUIDField(null=True)
    actor_role = models.CharField(max_length=16, blank=True)
    action = models.CharField(max_length=64)
    outcome = models.CharField(max_length=16)
    target_type = models.CharField(max_length=32, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    # The client record concerned, for single reads and writes; bulk reads list theirs in
    # `subject_ids`. Plain ids, no foreign keys: the trail outlives the records it names.
    client_id = models.UUIDField(null=True)
    subject_ids = ArrayField(models.UUIDField(), null=True)
    ip = models.GenericIPAddressField(null=True)
    user_agent = models.CharField(max_length=200, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    purpose = models.CharField(max_length=200, blank=True)
    # Field names, counts, the refused path: never a value of a customer field.
    detail = models.JSONField(default=dict)
    hash = models.BinaryField()

    class Meta:
        indexes = [
            models.Index(fields=["tenant_id", "lane", "seq"], name="audit_chain_order"),
            models.Index(fields=["tenant_id", "id"], name="audit_tenant_id"),
            models.Index(fields=["tenant_id", "client_id", "id"], name="audit_tenant_client"),
            models.Index(fields=["tenant_id", "actor_user_id", "id"], name="audit_tenant_actor"),
            # The owner's filter by action: a rare action (a role change) over a year's trail
            # would otherwise read the whole trail back to front.
            models.Index(fields=["tenant_id", "action", "id"], name="audit_tenant_action"),
            GinIndex(fields=["subject_ids"], name="audit_subjects"),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_user_id} at {self.occurred_at:%Y-%m-%d %H:%M:%S}"


class Checkpoint(models.Model):
    """A signed statement of a chain's lane heads at one moment (Ed25519, key outside the DB).

    `statement` is the exact JSON that was signed; verification reads the heads from it, never
    from other columns.
    """

    id = models.BigAutoField(primary_key=True)
    tenant_id = models.UUIDField(null=True)
    made_at = models.DateTimeField()
    reason = models.CharField(max_length=16)
    statement = models.TextField()
    signature = models.BinaryField()
    key_id = models.CharField(max_length=64)

    class Meta:
        indexes = [models.Index(fields=["tenant_id", "id"], name="audit_checkpoint_tenant")]

    def __str__(self) -> str:
        return f"checkpoint {self.id} ({self.reason}) at {self.made_at:%Y-%m-%d %H:%M}"


class DigestSent(models.Model):
    """A weekly security digest mailed to one owner: at most one per owner, business and week
    (the unique key), however often the task runs or its worker restarts."""

    id = models.BigAutoField(primary_key=True)
    tenant_id = models.UUIDField()
    user_id = models.UUIDField()
    week = models.DateField()  # the Monday the digest's week starts
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant_id", "user_id", "week"], name="audit_digest_once_a_week"
            )
        ]

    def __str__(self) -> str:
        return f"digest of week {self.week:%Y-%m-%d} to {self.user_id}"
