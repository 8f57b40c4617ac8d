"""The outbox of visit emails and each member's choices of them (scheduling/notices.py), under
the business's row-level security like every tenant table, closed businesses refusing writes."""

import uuid

import django.db.models.deletion
from django.db import migrations, models

import custodia.scheduling.models
from custodia.core.rls import IN_TENANT, closed_guard, guard_table, same_tenant

MANAGER_HERE = f"{IN_TENANT} AND custodia_is_manager()"
# Any member's action may add an event (no recipient yet) to the outbox; only managers and the
# worker's system actor (an owner's reach) read it, expand it into recipients and mark it sent.
NOTICE_INSERT = f"""{IN_TENANT} AND (custodia_is_manager()
    OR (recipient_id IS NULL AND status = 'new'))"""
# A member reads and writes their own choices; managers (and the worker) read everyone's.
OWN_CHOICE = f"{IN_TENANT} AND membership_id = custodia_membership_id()"
CHOICE_SELECT = f"""{IN_TENANT} AND (membership_id = custodia_membership_id()
    OR custodia_is_manager())"""
TABLES = ("scheduling_notice", "scheduling_noticechoice")


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0007_photos")]

    operations = [
        migrations.CreateModel(
            name="NoticeChoice",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("reminders", models.BooleanField(default=True)),
                ("changes", models.BooleanField(default=True)),
                ("reports", models.BooleanField(default=True)),
                ("requests", models.BooleanField(default=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "membership",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenancy.membership",
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenancy.business",
                    ),
                ),
            ],
            options={
                "abstract": False,
            },
        ),
        migrations.CreateModel(
            name="Notice",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("requested", "Requested"),
                            ("confirmed", "Confirmed"),
                            ("changed", "Changed"),
                            ("cancelled", "Cancelled"),
                            ("reminder", "Reminder"),
                            ("report", "Report"),
                        ],
                        max_length=10,
                    ),
                ),
                ("version", models.BigIntegerField(default=0)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("new", "New"),
                            ("expanded", "Expanded"),
                            ("due", "Due"),
                            ("sent", "Sent"),
                            ("skipped", "Skipped"),
                        ],
                        default=custodia.scheduling.models.NoticeStatus["NEW"],
                        max_length=10,
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("done_at", models.DateTimeField(blank=True, null=True)),
                (
                    "recipient",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenancy.membership",
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenancy.business",
                    ),
                ),
                (
                    "visit",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="scheduling.visit",
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["tenant", "status"], name="notice_tenant_status")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("tenant", "visit", "kind", "version", "recipient"),
                        name="notice_once",
                        nulls_distinct=False,
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            (
                                "kind__in",
                                [
                                    "requested",
                                    "confirmed",
                                    "changed",
                                    "cancelled",
                                    "reminder",
                                    "report",
                                ],
                            )
                        ),
                        name="notice_kind_valid",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("status__in", ["new", "expanded", "due", "sent", "skipped"])
                        ),
                        name="notice_status_valid",
                    ),
                ],
            },
        ),
        guard_table(
            "scheduling_notice",
            select=MANAGER_HERE,
            insert=NOTICE_INSERT,
            update=MANAGER_HERE,
            delete=MANAGER_HERE,
        ),
        guard_table(
            "scheduling_noticechoice",
            select=CHOICE_SELECT,
            insert=OWN_CHOICE,
            update=OWN_CHOICE,
            delete=MANAGER_HERE,
        ),
        # The database deletes a visit's notices with it (see Notice.visit).
        same_tenant("scheduling_notice", "visit_id", "scheduling_visit", cascade=True),
        same_tenant("scheduling_notice", "recipient_id", "tenancy_membership"),
        same_tenant("scheduling_noticechoice", "membership_id", "tenancy_membership"),
        *(closed_guard(table) for table in TABLES),
    ]
