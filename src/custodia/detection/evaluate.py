"""One round of detection: load what the rules read, run them (rules.py), raise the alerts.

- The platform rules run once over the platform chain's sign-in events of the last hour, read
  through `custodia_detection_sign_ins` (the app role cannot read other people's sign-ins).
- The business rules run business by business (`for_each_business`: the detection task's
  system actor inside that one business's row-level security), over the business's events of
  the last hour (exports: of the last day), the hourly history of the people active in it
  (bulk records and activity, four weeks), and the sign-ins of its owners, managers and staff.

Each round looks back over the rules' windows from its own time, and an alert is raised once per
rule and subject within its window (actions.py), so rounds every few minutes overlap without
alerting twice, and a round missed (a worker down) is caught up by the next one.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from django.db import transaction
from django.db.models import Count, IntegerField, Q, Sum, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, TruncHour
from django.utils import timezone

from custodia.audit.models import AuditEvent
from custodia.core.dbcontext import fetch_all_with_key
from custodia.core.permissions import Role
from custodia.detection.actions import do_raise_alert, raise_platform_alert
from custodia.detection.models import Alert
from custodia.detection.rules import (
    BULK_READS,
    EVENT_LOOKBACK,
    EXPORT_LOOKBACK,
    EXPORTS,
    HOURS_BASELINE,
    SIGN_IN_LOOKBACK,
    Bucket,
    Event,
    Scene,
    evaluate,
)
from custodia.jobs.registry import for_each_business
from custodia.tenancy.actors import SystemActor
from custodia.tenancy.models import Business, Membership

TASK = "detection"
SIGN_INS_SQL = (
    "SELECT id, occurred_at, actor_user_id, action, target_id, host(ip), kind"
    " FROM custodia_detection_sign_ins(%s, %s)"
)
# The records a bulk read returned: its `count`, else how many clients it named.
RECORDS_SQL = """CASE WHEN jsonb_typeof(detail->'count') = 'number'
    THEN least((detail->>'count')::numeric, 2147483647)::integer
    ELSE coalesce(cardinality(subject_ids), 0) END"""
# A bound on what one round holds in memory per business (a flood is alerted on long before).
MAX_EVENTS = 50_000
STAFF_SIDE = (Role.OWNER, Role.MANAGER, Role.STAFF)


def _records() -> RawSQL:
    return RawSQL(RECORDS_SQL, [], output_field=IntegerField())  # noqa: S611 (a constant)


def load_sign_ins(now: dt.datetime) -> list[Event]:
    """The platform chain's sign-in events (successes, failures, lockouts) of the last hour."""
    with transaction.atomic():
        rows = fetch_all_with_key(SIGN_INS_SQL, [now - SIGN_IN_LOOKBACK])
    return [
        Event(
            id=row[0],
            at=row[1],
            user_id=row[2],
            action=row[3],
            target_id=row[4] or "",
            ip=row[5],
            kind=row[6] or "",
        )
        for row in rows[-MAX_EVENTS:]
    ]


def detect_platform(now: dt.datetime) -> tuple[list[Event], list[uuid.UUID]]:
    """The platform rules' round: the sign-ins it read (for the business rounds) and the ids
    of the platform alerts it raised."""
    sign_ins = load_sign_ins(now)
    raised = []
    for finding in evaluate(Scene(now=now, sign_ins=sign_ins), platform=True):
        alert_id = raise_platform_alert(finding)
        if alert_id is not None:
            raised.append(alert_id)
    return sign_ins, raised


def business_scene(actor: SystemActor, now: dt.datetime, sign_ins: Sequence[Event]) -> Scene:
    """What the business rules see of the actor's business now."""
    tenant_id = actor.tenant_id
    trail = AuditEvent.objects.filter(tenant_id=tenant_id)
    recent = (
        trail.filter(
            Q(occurred_at__gt=now - EVENT_LOOKBACK)
            | Q(
                action__in=[str(action) for action in EXPORTS],
                occurred_at__gt=now - EXPORT_LOOKBACK,
            )
        )
        .filter(occurred_at__lte=now)
        .annotate(records=_records())
        .order_by("-id")
        .values_list(
            "id", "occurred_at", "actor_user_id", "action", "actor_role", "target_id", "records"
        )
    )
    events = [
        Event(
            id=row[0],
            at=row[1],
            user_id=row[2],
            action=row[3],
            role=row[4],
            target_id=row[5],
            records=row[6] if row[3] in BULK_READS else 0,
        )
        for row in recent[:MAX_EVENTS]
    ]
    people = {event.user_id for event in events if event.user_id is not None}
    history = (
        trail.filter(
            actor_user_id__in=people,
            occurred_at__gt=now - HOURS_BASELINE,
            occurred_at__lte=now - EVENT_LOOKBACK,
        )
        .annotate(hour=TruncHour("occurred_at", tzinfo=dt.UTC))
        .values("actor_user_id", "hour")
        .annotate(
            events=Count("id"),
            records=Coalesce(
                Sum(
                    _records(),
                    filter=Q(action__in=[str(action) for action in BULK_READS]),
                ),
                Value(0),
            ),
        )
    )
    buckets = (
        [
            Bucket(row["actor_user_id"], row["hour"], row["events"], row["records"])
            for row in history
        ]
        if people
        else []
    )
    members = frozenset(
        Membership.objects.filter(
            tenant_id=tenant_id, is_active=True, role__in=[str(role) for role in STAFF_SIDE]
        ).values_list("user_id", flat=True)
    )
    zone = Business.objects.filter(pk=tenant_id).values_list("time_zone", flat=True).first()
    return Scene(
        now=now,
        events=events,
        sign_ins=[event for event in sign_ins if event.user_id in members],
        history=buckets,
        time_zone=zone or "UTC",
        members=members,
    )


def detect_in_business(
    actor: SystemActor, *, now: dt.datetime, sign_ins: Sequence[Event]
) -> list[Alert]:
    """The business rules' round in the actor's business: the alerts it raised."""
    raised = []
    for finding in evaluate(business_scene(actor, now, sign_ins), platform=False):
        alert = do_raise_alert(finding, actor=actor)
        if alert is not None:
            raised.append(alert)
    return raised


def run_detection(now: dt.datetime | None = None) -> tuple[int, int]:
    """One whole round: the platform rules, then every business's; (businesses done, failed)."""
    now = now or timezone.now()
    sign_ins, _ = detect_platform(now)

    def work(actor: SystemActor) -> None:
        detect_in_business(actor, now=now, sign_ins=sign_ins)

    return for_each_business(TASK, work)
