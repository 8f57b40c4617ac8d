"""Running detection rounds in a test: the platform round, then each business's round as the
detection task's system actor (what `for_each_business` does, without listing the businesses on
the operator's connection, which cannot see a test's uncommitted businesses)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from custodia.core.actor import acting_as
from custodia.detection.access import list_platform_alerts
from custodia.detection.evaluate import TASK, detect_in_business, detect_platform
from custodia.detection.models import Alert
from custodia.tenancy.actors import system_actor
from tests.factories import TenantMatrix


def detect_round(matrix: TenantMatrix, now: dt.datetime | None = None) -> None:
    """One detection round over the platform chain and both businesses of the matrix."""
    now = now or timezone.now()
    sign_ins, _ = detect_platform(now)
    for business in (matrix.a, matrix.b):
        actor = system_actor(business.owner.tenant_id, task=TASK)
        with transaction.atomic(), acting_as(actor):
            detect_in_business(actor, now=now, sign_ins=sign_ins)


def business_alerts(matrix: TenantMatrix) -> dict[str, set[tuple[str, str]]]:
    """{"a": {(rule, subject), ...}, "b": ...}: every business alert, read as each owner's system
    actor would (row-level security)."""
    found: dict[str, set[tuple[str, str]]] = {}
    for name, business in (("a", matrix.a), ("b", matrix.b)):
        actor = system_actor(business.owner.tenant_id, task="test-read")
        with transaction.atomic(), acting_as(actor):
            found[name] = set(Alert.objects.values_list("rule", "subject"))
    return found


def platform_alerts() -> set[tuple[str, str]]:
    return {(alert.rule, alert.subject) for alert in list_platform_alerts()}


def person(actor_user_id: object) -> str:
    return f"person {actor_user_id}"


def rules_of(pairs: Iterable[tuple[str, str]]) -> set[str]:
    return {rule for rule, _ in pairs}
