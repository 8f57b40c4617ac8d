"""The chain in the database: hashes the verifier recomputes, append-only, tampering caught."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from django.db import connections, transaction
from django.db.utils import DatabaseError

from custodia.audit import chain
from custodia.audit.actions import record
from custodia.audit.events import AuditAction
from tests.audit.conftest import owner_events

pytestmark = pytest.mark.django_db(databases=["default", "owner"])
OWNER = chain.USING


def _events(tenant: uuid.UUID, count: int) -> None:
    for number in range(count):
        record(
            AuditAction.CLIENT_READ,
            tenant_id=tenant,
            target_type="client",
            target_id=uuid.uuid4(),
            client_id=uuid.uuid4(),
            detail={"n": number, "text": 'é ✓ "quoted" \\ back'},
            using=OWNER,
        )


def _owner_sql(statement: str, params: list[object] | None = None) -> None:
    with connections[OWNER].cursor() as cursor:
        cursor.execute(statement, params or [])


def _tamper(statement: str, params: list[object]) -> None:
    """What a database owner can do: switch the guard off and change rows."""
    _owner_sql("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
    _owner_sql(statement, params)
    _owner_sql("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only")


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_trigger_hashes_the_same_body_as_the_verifier() -> None:
    with connections[OWNER].cursor() as cursor:
        cursor.execute("SELECT pg_get_functiondef('custodia_audit_chain'::regproc)")
        definition = cursor.fetchone()[0]
    assert _normalised(chain.BODY_SQL.format(row="NEW")) in _normalised(definition)


def test_untouched_chain_verifies() -> None:
    tenant = uuid.uuid4()
    _events(tenant, 30)
    report = chain.verify_chain(tenant)
    assert report.ok, report.problems
    assert report.events == 30
    assert sum(seq for seq, _hash in report.heads.values()) == 30


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("UPDATE audit_auditevent SET detail = '{\"n\": 99}' WHERE id = %s", "altered"),
        ("UPDATE audit_auditevent SET actor_role = 'owner' WHERE id = %s", "altered"),
        ("DELETE FROM audit_auditevent WHERE id = %s", "deleted"),
        (
            "INSERT INTO audit_auditevent SELECT id + 1000000, tenant_id, lane, seq, occurred_at,"
            " actor_user_id, actor_role, action, outcome, target_type, target_id, client_id,"
            " subject_ids, ip, user_agent, request_id, purpose, '{}', hash"
            " FROM audit_auditevent WHERE id = %s",
            "inserted",
        ),
        ("UPDATE audit_auditevent SET id = -id WHERE id = %s", "reordered"),
    ],
)
def test_tampering_is_caught(statement: str, kind: str) -> None:
    tenant = uuid.uuid4()
    _events(tenant, 12)
    victim = owner_events(tenant)[5]
    if statement.startswith("INSERT"):
        _owner_sql("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_chain")
        _tamper(statement, [victim["id"]])
        _owner_sql("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_chain")
    else:
        _tamper(statement, [victim["id"]])
    report = chain.verify_chain(tenant)
    assert not report.ok
    first = report.problems[0]
    assert first.kind == kind, first
    assert first.lane == victim["lane"]


def test_app_role_may_not_update_or_delete_events() -> None:
    tenant = uuid.uuid4()
    _events(tenant, 1)
    for statement in ("UPDATE audit_auditevent SET outcome = 'x'", "DELETE FROM audit_auditevent"):
        with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
            with connections["default"].cursor() as cursor:
                cursor.execute(statement)


def test_owner_is_refused_by_the_trigger() -> None:
    tenant = uuid.uuid4()
    _events(tenant, 1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(using=OWNER):
        _owner_sql("UPDATE audit_auditevent SET outcome = 'x' WHERE tenant_id = %s", [tenant])


def test_checkpoint_then_purge_keeps_verification_green() -> None:
    tenant = uuid.uuid4()
    _events(tenant, 20)
    assert chain.make_checkpoint(tenant) is not None
    # Age the first half by a year and a day, as the retention purge will find them.
    old = owner_events(tenant)[:10]
    _tamper(
        "UPDATE audit_auditevent SET occurred_at = occurred_at - interval '366 days'"
        " WHERE id = ANY(%s)",
        [[event["id"] for event in old]],
    )
    # The ageing was itself an edit: the chain sees it, so a purge refuses to run...
    with pytest.raises(chain.ChainBroken):
        chain.purge_chain(tenant)
    # ...so age a fresh chain the honest way, by purging as of a year from now.
    tenant = uuid.uuid4()
    _events(tenant, 20)
    chain.make_checkpoint(tenant)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=366)
    purged = chain.purge_chain(tenant, now=later)
    assert purged.events == 20
    _events(tenant, 5)
    report = chain.verify_chain(tenant)
    assert report.ok, report.problems
    assert report.events == 5


def test_a_forged_checkpoint_is_caught() -> None:
    tenant = uuid.uuid4()
    _events(tenant, 3)
    checkpoint = chain.make_checkpoint(tenant)
    _owner_sql("ALTER TABLE audit_checkpoint DISABLE TRIGGER audit_checkpoint_append_only")
    _owner_sql(
        "UPDATE audit_checkpoint SET statement = replace(statement, '\"v\":1', '\"v\":2')"
        " WHERE id = %s",
        [checkpoint],
    )
    report = chain.verify_chain(tenant)
    assert [problem.kind for problem in report.problems] == ["checkpoint"]
