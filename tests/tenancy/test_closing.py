"""Closing a business: who may close and reopen it, and the purge after its grace period.

The attacks: another business's owner, a manager, staff, a client, an API token and a stale
step-up each try to close or reopen; the purge must delete exactly the businesses due, leave
nothing of them in any table (but the anonymous counts and the id-only audit trail), and destroy
their keys.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import ProgrammingError, connection, transaction
from django.http import Http404

from custodia.accounts.stepup import StepUpRequired
from custodia.clients.models import Client
from custodia.core.actor import Actor
from custodia.core.dbcontext import set_db_context
from custodia.crypto import keystore
from custodia.crypto.errors import KeyUnavailable
from custodia.crypto.keyring import keys_for
from custodia.tenancy.actions import do_delete_business
from custodia.tenancy.closing import (
    do_close_business,
    do_purge_closed_businesses,
    do_reopen_business,
    grace_period,
)
from custodia.tenancy.models import Business, ClosedBusiness
from custodia.tenancy.zones import zone_for
from tests.acting import act
from tests.audit.support import chain_events
from tests.factories import TenantMatrix, stale
from tests.web.support import snapshot

pytestmark = pytest.mark.django_db(databases=["default", "owner"])

# Tables that may name a purged business afterwards, and why: the audit trail keeps id-only events
# for its retention period (docs/audit.md), its checkpoints sign those chains, and the anonymous
# record of the closure is what the purge leaves on purpose. The context store describes live
# transactions only.
KEPT_AFTER_PURGE = {
    "audit_auditevent",
    "audit_checkpoint",
    "audit_chain_head",
    "tenancy_closedbusiness",
    "custodia_db_context",
}


def business_of(actor: Actor) -> Business:
    act(actor)
    return Business.objects.get(pk=actor.tenant_id)


def close(actor: Actor) -> Business:
    business = business_of(actor)
    return do_close_business(business, actor=actor, confirm_name=business.name)


def rows_naming(business_id: Any, user_id: Any = None) -> dict[str, int]:
    """Every table the app role may read, in the business's own owner context (the widest view
    of its rows row-level security allows), and how many rows name the business in any uuid,
    text or array column. Tables the role may not read at all are skipped."""
    found: dict[str, int] = {}
    with transaction.atomic():
        set_db_context(tenant_id=business_id, user_id=user_id, role="owner")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = 'public' AND data_type IN ('uuid', 'text',"
                " 'character varying', 'jsonb', 'ARRAY')"
            )
            columns = cursor.fetchall()
        for table, column, kind in columns:
            if kind == "uuid":
                condition, value = f'"{column}" = %s::uuid', str(business_id)
            elif kind == "ARRAY":
                condition, value = f'%s = ANY("{column}"::text[])', str(business_id)
            else:
                condition, value = f'"{column}"::text LIKE %s', f"%{business_id}%"
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(f'SELECT count(*) FROM "{table}" WHERE {condition}', [value])  # noqa: S608
                    count = cursor.fetchone()[0]
            except ProgrammingError:
                continue  # not readable by the app role at all
            if count:
                found[f"{table}.{column}"] = count
    return found


def test_an_owner_closes_the_business_and_it_is_purged_after_the_grace_period(
    matrix: TenantMatrix,
) -> None:
    a, b = matrix.a, matrix.b
    business = close(a.owner)
    assert business.closed_at is not None
    assert business.purge_after == business.closed_at + grace_period()
    assert grace_period() == dt.timedelta(days=30)
    # Recorded, with the purge date and no name.
    event = chain_events(a.owner)[-1]
    assert event["action"] == "business.close"
    assert json.loads(event["detail"]) == {"purge_after": business.purge_after.isoformat()}

    # Not due yet: the purge the day before leaves it alone.
    assert do_purge_closed_businesses(business.purge_after - dt.timedelta(days=1)) == []
    act(a.owner)
    assert Business.objects.filter(pk=business.pk).exists()
    assert keystore.path_for(business.pk).exists()

    # The search finds the business's rows while they exist (so its silence below means
    # something).
    before = rows_naming(business.pk, a.owner.user.pk)
    for column in (
        "clients_client.tenant_id",
        "scheduling_visit.tenant_id",
        "tenancy_membership.tenant_id",
        "tenancy_business.id",
    ):
        assert before.get(column), (column, before)
    act(b.owner)
    before_b = snapshot(matrix)["b"]
    assert do_purge_closed_businesses(business.purge_after) == [business.pk]

    # Nothing of the business is left in any table but those kept on purpose.
    left = rows_naming(business.pk, a.owner.user.pk)
    assert {name.split(".")[0] for name in left} <= KEPT_AFTER_PURGE, left
    assert "tenancy_closedbusiness.business_id" in left
    # The record kept holds ids, dates and counts: nothing else.
    set_db_context(tenant_id=business.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM tenancy_closedbusiness WHERE business_id = %s", [business.pk])
        names = [column.name for column in cursor.description]
        row = dict(zip(names, cursor.fetchone(), strict=True))
    assert set(names) == {
        "business_id",
        "closed_at",
        "purge_after",
        "purged_at",
        "keys_destroyed_at",
        "clients",
        "visits",
        "members",
    }
    assert (row["clients"], row["visits"], row["members"]) == (2, 1, 5)
    assert row["purged_at"] == business.purge_after and row["keys_destroyed_at"] is not None
    # The keys are gone.
    assert not keystore.path_for(business.pk).exists()
    with pytest.raises(KeyUnavailable):
        keys_for(business.pk, refresh=True)
    # The purge is on record, named as the purge, with the counts.
    [purge] = [e for e in chain_events(a.owner) if e["action"] == "business.purge"]
    assert (
        purge["request_id"] == "task-closed-business-purge" and "grace period" in purge["purpose"]
    )
    assert purge["actor_user_id"] is None and purge["actor_role"] == "owner"
    assert json.loads(purge["detail"]) == {"clients": 2, "visits": 1, "members": 5}
    # The audit trail kept for the business holds no name of it, of its people or clients.
    trail = json.dumps(chain_events(a.owner), default=str)
    for secret in ("Alpha", a.client.email, a.owner.user.email, "Miso"):
        assert secret not in trail
    # The other business is untouched.
    assert snapshot(matrix)["b"] == before_b
    act(b.owner)
    assert Client.objects.get(pk=b.client.pk).email == b.client.email
    # A second run finds nothing more to do.
    assert do_purge_closed_businesses(business.purge_after + dt.timedelta(days=1)) == []


def test_the_purge_deletes_exactly_the_businesses_due(matrix: TenantMatrix, settings: Any) -> None:
    a, b = matrix.a, matrix.b
    closed_a = close(a.owner)
    # Another install's setting, as good as a later closing: Bravo's grace ends ten days after.
    settings.CLOSED_BUSINESS_GRACE_DAYS = 40
    closed_b = close(b.owner)
    assert closed_b.purge_after - closed_a.purge_after >= dt.timedelta(days=10)
    assert do_purge_closed_businesses(closed_a.purge_after) == [closed_a.pk]
    assert do_purge_closed_businesses(closed_b.purge_after - dt.timedelta(seconds=1)) == []
    act(b.owner)
    assert Business.objects.filter(pk=closed_b.pk).exists()
    assert keystore.path_for(closed_b.pk).exists()
    assert do_purge_closed_businesses(closed_b.purge_after) == [closed_b.pk]
    assert not keystore.path_for(closed_b.pk).exists()


def test_a_reopened_business_is_not_purged(matrix: TenantMatrix) -> None:
    a = matrix.a
    business = close(a.owner)
    due = business.purge_after
    do_reopen_business(business, actor=a.owner)
    act(a.owner)
    fresh = Business.objects.get(pk=business.pk)
    assert fresh.closed_at is None and fresh.purge_after is None
    assert not ClosedBusiness.objects.filter(business_id=business.pk).exists()
    assert [e["action"] for e in chain_events(a.owner)][-2:] == [
        "business.close",
        "business.reopen",
    ]
    assert do_purge_closed_businesses(due + dt.timedelta(days=1)) == []
    act(a.owner)
    assert Business.objects.filter(pk=business.pk).exists()
    # And it takes writes again.
    Client.objects.filter(pk=a.client.pk).update(name="Renamed")


@pytest.mark.parametrize("role", ["manager", "staff", "other_staff", "client_login"])
def test_lesser_roles_may_neither_close_nor_reopen(matrix: TenantMatrix, role: str) -> None:
    a = matrix.a
    business = business_of(a.owner)
    member = getattr(a, role)
    act(member)
    with pytest.raises(PermissionDenied):
        do_close_business(business, actor=member, confirm_name=business.name)
    act(a.owner)
    close(a.owner)
    act(member)
    with pytest.raises(PermissionDenied):
        do_reopen_business(business, actor=member)
    act(a.owner)
    assert Business.objects.get(pk=business.pk).closed_at is not None


def test_another_business_owner_cannot_close_or_reopen_it(matrix: TenantMatrix) -> None:
    a, b = matrix.a, matrix.b
    business = business_of(a.owner)
    act(b.owner)
    with pytest.raises(Http404):
        do_close_business(business, actor=b.owner, confirm_name=business.name)
    close(a.owner)
    act(b.owner)
    with pytest.raises(Http404):
        do_reopen_business(business, actor=b.owner)
    act(a.owner)
    assert Business.objects.get(pk=business.pk).closed_at is not None


def test_closing_and_reopening_need_a_fresh_step_up_and_the_name(matrix: TenantMatrix) -> None:
    a = matrix.a
    business = business_of(a.owner)
    with pytest.raises(StepUpRequired):
        do_close_business(business, actor=stale(a.owner), confirm_name=business.name)
    token_actor = Actor(a.owner.user, a.owner.membership)  # what a bearer token makes
    act(token_actor)
    with pytest.raises(StepUpRequired):
        do_close_business(business, actor=token_actor, confirm_name=business.name)
    act(a.owner)
    with pytest.raises(ValidationError) as refused:
        do_close_business(business, actor=a.owner, confirm_name=business.slug)
    assert "confirm" in refused.value.message_dict
    assert Business.objects.get(pk=business.pk).closed_at is None
    close(a.owner)
    with pytest.raises(StepUpRequired):
        do_reopen_business(business, actor=stale(a.owner))
    act(token_actor)
    with pytest.raises(StepUpRequired):
        do_reopen_business(business, actor=token_actor)
    act(a.owner)
    assert Business.objects.get(pk=business.pk).closed_at is not None
    with pytest.raises(ValidationError):
        close(a.owner)  # already closed


def test_delete_now_still_works_while_closed(
    matrix: TenantMatrix, django_capture_on_commit_callbacks: Any
) -> None:
    a = matrix.a
    business = close(a.owner)
    with django_capture_on_commit_callbacks(execute=True):
        do_delete_business(business, actor=a.owner, confirm_slug=business.slug)
    act(matrix.b.owner)
    left = rows_naming(business.pk)
    assert {name.split(".")[0] for name in left} <= KEPT_AFTER_PURGE - {"tenancy_closedbusiness"}
    assert not keystore.path_for(business.pk).exists()
    assert do_purge_closed_businesses(business.purge_after) == []


def test_purged_keys_left_behind_are_destroyed_by_the_next_run(matrix: TenantMatrix) -> None:
    """What a purge killed between its committed deletion and the key destruction leaves: the
    next run destroys the keys."""
    a = matrix.a
    business = close(a.owner)
    keep = keystore.path_for(business.pk).read_bytes()
    do_purge_closed_businesses(business.purge_after)
    # Put the state back as if the process had died before destroying them.
    keystore.path_for(business.pk).write_bytes(keep)
    set_db_context(tenant_id=business.pk)
    ClosedBusiness.objects.filter(business_id=business.pk).update(keys_destroyed_at=None)
    assert do_purge_closed_businesses(business.purge_after) == []
    assert not keystore.path_for(business.pk).exists()


def test_the_purge_is_a_rule_of_the_daily_retention_task(matrix: TenantMatrix) -> None:
    """One scheduler, one policy: the `retention` periodic task (daily and at worker start)
    enforces the rule `closed-businesses`, which is the purge."""
    from custodia.jobs.registry import periodic_tasks
    from custodia.lifecycle import retention

    [task] = [task for task in periodic_tasks() if task.name == "retention"]
    assert task.run_at_start and len(task.cron.split()) == 5
    [rule] = [rule for rule in retention.policy() if rule.key == "closed-businesses"]
    assert rule.kept.startswith("30 days after closing")
    business = close(matrix.a.owner)
    assert retention.enforce(business.purge_after - dt.timedelta(seconds=1), only={rule.key}) == [
        retention.Outcome(rule.key, 0)
    ]
    later = business.purge_after + dt.timedelta(days=1)
    assert retention.enforce(later, only={rule.key}) == [retention.Outcome(rule.key, 1)]
    act(matrix.b.owner)
    assert not keystore.path_for(business.pk).exists()
    set_db_context(tenant_id=business.pk)
    assert ClosedBusiness.objects.get(business_id=business.pk).purged_at == later


def test_owners_and_managers_are_told_of_closing_and_reopening(matrix: TenantMatrix) -> None:
    from django.core import mail

    a = matrix.a
    mail.outbox.clear()
    business = close(a.owner)
    [notice] = mail.outbox
    assert notice.to == sorted([a.owner.user.email, a.manager.user.email])
    assert notice.subject == "Alpha was closed"
    purge = business.purge_after.astimezone(zone_for(business))  # in the business's zone
    assert f"{purge:%a} {purge.day} {purge:%b %Y, %H:%M} ({business.time_zone})" in notice.body
    assert "/app/business/delete/" in notice.body
    for secret in (a.client.name, a.client.email, a.staff.user.email):
        assert secret not in notice.body
    do_reopen_business(business, actor=a.owner)
    assert [m.subject for m in mail.outbox] == ["Alpha was closed", "Alpha was reopened"]
