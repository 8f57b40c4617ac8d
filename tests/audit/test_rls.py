"""Who may read and write the trail, as the database enforces it for the app role."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from custodia.core.actor import Actor
from custodia.core.audit import AuditAction, record
from custodia.core.dbcontext import set_db_context
from tests.acting import act
from tests.factories import TenantMatrix

pytestmark = pytest.mark.django_db


def visible(actor: Actor) -> set[tuple[str, object]]:
    """(action, client_id) of every event the actor's database context can read."""
    act(actor)
    with connection.cursor() as cursor:
        cursor.execute("SELECT action, client_id, tenant_id FROM audit_auditevent")
        rows = cursor.fetchall()
    assert {tenant for _action, _client, tenant in rows} <= {actor.tenant_id, None}
    return {(action, client) for action, client, _tenant in rows}


@pytest.fixture
def trail(matrix: TenantMatrix) -> TenantMatrix:
    a, b = matrix.a, matrix.b
    for actor, action, kwargs in (
        (a.staff, AuditAction.CLIENT_READ, {"target": a.client}),
        (a.manager, AuditAction.CLIENT_READ, {"target": a.other_client}),
        (a.manager, AuditAction.CLIENT_LIST, {"subject_ids": [a.client.pk, a.other_client.pk]}),
        (b.owner, AuditAction.CLIENT_READ, {"target": b.client}),
    ):
        act(actor)  # as in a request: the actor's own context
        record(action, actor=actor, **kwargs)
    return matrix


def test_an_owner_reads_their_business_trail_and_nothing_of_another(trail: TenantMatrix) -> None:
    seen = visible(trail.a.owner)
    assert (AuditAction.CLIENT_READ, trail.a.client.pk) in seen
    assert (AuditAction.CLIENT_READ, trail.a.other_client.pk) in seen
    assert (AuditAction.CLIENT_READ, trail.b.client.pk) not in seen
    assert (AuditAction.CLIENT_READ, trail.a.client.pk) not in visible(trail.b.owner)


@pytest.mark.parametrize("role", ["manager", "staff", "other_staff"])
def test_managers_and_staff_read_no_trail(trail: TenantMatrix, role: str) -> None:
    seen = visible(getattr(trail.a, role))
    assert {action for action, _client in seen} <= {
        # their own sign-in events (the platform chain) only
        action
        for action in AuditAction
        if action.startswith("auth.")
    }


def test_a_client_reads_only_events_about_their_own_record(trail: TenantMatrix) -> None:
    seen = visible(trail.a.client_login)
    assert (AuditAction.CLIENT_READ, trail.a.client.pk) in seen
    assert (AuditAction.CLIENT_LIST, None) in seen  # the bulk read that included them
    assert all(client in (trail.a.client.pk, None) for _action, client in seen)


def test_no_one_writes_into_another_business_chain(trail: TenantMatrix) -> None:
    with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
        act(trail.a.owner)
        record(AuditAction.CLIENT_READ, tenant_id=trail.b.owner.tenant_id, target=trail.b.client)


def test_sign_in_events_are_read_only_by_their_person(trail: TenantMatrix) -> None:
    a = trail.a
    record(AuditAction.LOGIN, user=a.staff.user)
    set_db_context(user_id=a.staff.user.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_auditevent WHERE tenant_id IS NULL")
        assert cursor.fetchone()[0] >= 1
    for other in (a.owner, a.manager, trail.b.owner):
        set_db_context(user_id=other.user.pk)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM audit_auditevent WHERE actor_user_id = %s",
                [a.staff.user.pk],
            )
            assert cursor.fetchone()[0] == 0


def test_the_app_role_cannot_touch_chain_heads_or_checkpoints(trail: TenantMatrix) -> None:
    act(trail.a.owner)
    for statement in (
        "SELECT * FROM audit_chain_head",
        "UPDATE audit_chain_head SET seq = 0",
        "INSERT INTO audit_checkpoint (tenant_id, made_at, reason, statement, signature, key_id)"
        " VALUES (custodia_tenant_id(), now(), 'x', '{}', '', '')",
        "SELECT nextval('audit_event_id_seq')",
        "TRUNCATE audit_auditevent",
    ):
        with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(statement)
