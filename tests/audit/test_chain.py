"""The chain in the database: hashes the verifier recomputes, append-only, tampering caught."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import uuid
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections, transaction
from django.db.utils import DatabaseError

from custodia.audit import chain
from custodia.core.audit import AuditAction, record
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


def _age(tenant: uuid.UUID, days: int) -> None:
    """Move a whole chain `days` into the past and rehash it, as if it had been written then
    (setting up an honest old trail: the trigger only ever stamps the present)."""
    _tamper(
        "UPDATE audit_auditevent SET occurred_at = occurred_at - make_interval(days => %s)"
        " WHERE tenant_id = %s",
        [days, tenant],
    )
    with connections[OWNER].cursor() as cursor:
        cursor.execute(
            f"SELECT e.id, e.lane, {chain.BODY_SQL.format(row='e')}"
            " FROM audit_auditevent e WHERE e.tenant_id = %s ORDER BY e.lane, e.seq",
            [tenant],
        )
        rows = cursor.fetchall()
    heads: dict[int, bytes] = {}
    for event_id, lane, body in rows:
        digest = hashlib.sha256(heads.get(lane, chain.ZERO_HASH) + bytes(body)).digest()
        heads[lane] = digest
        _tamper("UPDATE audit_auditevent SET hash = %s WHERE id = %s", [digest, event_id])
    for lane, digest in heads.items():
        _owner_sql(
            "UPDATE audit_chain_head SET hash = %s WHERE chain = %s AND lane = %s",
            [digest, tenant, lane],
        )


def test_purge_past_retention_keeps_verification_green() -> None:
    tenant = uuid.uuid4()
    _events(tenant, 20)
    _age(tenant, 400)
    assert chain.verify_chain(tenant).ok
    purged = chain.purge_chain(tenant)
    assert purged.events == 20
    report = chain.verify_chain(tenant)
    assert report.ok, report.problems
    # The purge recorded itself; its lane went on from the purged head.
    assert [event["action"] for event in owner_events(tenant)] == ["audit.purge"]
    _events(tenant, 5)
    assert chain.make_checkpoint(tenant) is not None
    report = chain.verify_chain(tenant)
    assert report.ok, report.problems
    assert report.events == 6


def test_a_lane_purged_whole_stays_green_and_can_be_signed_again() -> None:
    tenant = uuid.uuid4()
    _events(tenant, 3)
    _age(tenant, 400)
    chain.purge_chain(tenant)
    # Every lane is now empty but for the purge's own event; sign and verify again and again.
    for _round in range(2):
        assert chain.make_checkpoint(tenant) is not None
        report = chain.verify_chain(tenant)
        assert report.ok, report.problems


def test_a_purge_that_is_not_a_purge_is_refused() -> None:
    """The delete exception is for events past the shortest retention, whatever the session
    claims its cutoff is."""
    tenant = uuid.uuid4()
    _events(tenant, 2)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(using=OWNER):
        _owner_sql("SELECT set_config('custodia.audit_purge_before', '3000-01-01', true)")
        _owner_sql("DELETE FROM audit_auditevent WHERE tenant_id = %s", [tenant])


def test_events_deleted_up_to_a_daily_checkpoint_are_caught() -> None:
    """Only a retention checkpoint vouches for a missing beginning: a daily one signed the
    events to keep them."""
    tenant = uuid.uuid4()
    _events(tenant, 10)
    chain.make_checkpoint(tenant, reason="daily")
    _events(tenant, 5)
    signed = {event["id"] for event in owner_events(tenant)[:10]}
    _tamper("DELETE FROM audit_auditevent WHERE id = ANY(%s)", [list(signed)])
    report = chain.verify_chain(tenant)
    assert not report.ok
    assert {problem.kind for problem in report.problems} == {"deleted"}


def test_a_forged_lane_is_caught() -> None:
    tenant = uuid.uuid4()
    _events(tenant, 2)
    _tamper("UPDATE audit_auditevent SET lane = 42 WHERE tenant_id = %s", [tenant])
    report = chain.verify_chain(tenant)
    assert any("no such lane" in problem.message for problem in report.problems)


def test_deleted_checkpoints_are_caught(
    settings: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    settings.AUDIT_CHECKPOINT_LOG_FILE = tmp_path / "checkpoints.jsonl"
    tenant = uuid.uuid4()
    _events(tenant, 3)
    made = []
    for _round in range(3):
        with django_capture_on_commit_callbacks(using=OWNER, execute=True):
            made.append(chain.make_checkpoint(tenant))
        _events(tenant, 1)
    assert chain.verify_chain(tenant).ok
    _owner_sql("ALTER TABLE audit_checkpoint DISABLE TRIGGER audit_checkpoint_append_only")
    # The middle one: the next names it as its predecessor.
    _owner_sql("DELETE FROM audit_checkpoint WHERE id = %s", [made[1]])
    messages = [problem.message for problem in chain.verify_chain(tenant).problems]
    assert f"Checkpoint {made[2]}: the checkpoint before it is missing." in messages
    assert any(f"Checkpoint {made[1]} is in the checkpoint log" in m for m in messages)
    # The newest: only the log outside the database remembers it.
    _owner_sql("DELETE FROM audit_checkpoint WHERE id = %s", [made[2]])
    messages = [problem.message for problem in chain.verify_chain(tenant).problems]
    assert any(f"Checkpoint {made[2]} is in the checkpoint log" in m for m in messages)


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


# --- Claims of docs/audit.md that only an attack shows ---------------------------------------


def _event_count(tenant: uuid.UUID) -> int:
    with connections[OWNER].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_auditevent WHERE tenant_id = %s", [tenant])
        return int(cursor.fetchone()[0])


def test_a_chain_that_does_not_verify_is_never_purged() -> None:
    tenant = uuid.uuid4()
    _events(tenant, 6)
    _age(tenant, 400)
    _tamper(
        "UPDATE audit_auditevent SET outcome = 'denied' WHERE id = "
        "(SELECT min(id) FROM audit_auditevent WHERE tenant_id = %s)",
        [tenant],
    )
    with pytest.raises(chain.ChainBroken):
        chain.purge_chain(tenant)
    # Evidence kept whole: every event, no retention checkpoint, no purge event.
    assert _event_count(tenant) == 6
    assert [event["action"] for event in owner_events(tenant)] == ["client.read"] * 6
    # The command says so and fails, rather than skipping the chain quietly.
    with pytest.raises(CommandError, match="kept whole"):
        call_command("audit", "purge", stdout=StringIO(), stderr=StringIO())
    assert _event_count(tenant) == 6


def test_verify_never_creates_a_signing_key(settings: Any, tmp_path: Path) -> None:
    settings.AUDIT_CHECKPOINT_LOG_FILE = tmp_path / "checkpoints.jsonl"
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "signer.pem"
    tenant = uuid.uuid4()
    _events(tenant, 2)
    chain.make_checkpoint(tenant)
    assert settings.AUDIT_SIGNING_KEY_FILE.exists()  # signing made it (0600)
    # A host without the key: verifying says the checkpoints cannot be checked, and makes none.
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "elsewhere" / "absent.pem"
    report = chain.verify_chain(tenant)
    assert not report.ok
    assert any("No audit signing key" in problem.message for problem in report.problems)
    out = StringIO()
    with pytest.raises(CommandError, match="does not verify"):
        call_command("audit", "verify", stdout=out, stderr=StringIO())
    assert "cannot be checked" in out.getvalue()
    assert not settings.AUDIT_SIGNING_KEY_FILE.exists()
    assert not settings.AUDIT_SIGNING_KEY_FILE.parent.exists()


def test_checkpoints_signed_by_another_key_are_reported(settings: Any, tmp_path: Path) -> None:
    settings.AUDIT_CHECKPOINT_LOG_FILE = tmp_path / "checkpoints.jsonl"
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "first.pem"
    tenant = uuid.uuid4()
    _events(tenant, 2)
    made = chain.make_checkpoint(tenant)
    first = chain.key_id(chain.signing_key().public_key())
    # The key was replaced without a rotation (or an attacker re-signed the trail with a key
    # of their own): the old key is in no ring.
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "second.pem"
    chain.signing_key()
    messages = [problem.message for problem in chain.verify_chain(tenant).problems]
    assert f"Checkpoint {made}: it was signed by a key the key ring does not hold ({first})." in (
        messages
    )


@pytest.mark.parametrize(
    "statement",
    [
        "TRUNCATE audit_auditevent",
        "TRUNCATE audit_checkpoint",
        "UPDATE audit_checkpoint SET reason = 'manual'",
        "DELETE FROM audit_checkpoint",
    ],
)
def test_the_owner_can_neither_truncate_nor_change_checkpoints(statement: str) -> None:
    tenant = uuid.uuid4()
    _events(tenant, 2)
    chain.make_checkpoint(tenant)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(using=OWNER):
        _owner_sql(statement)
    assert _event_count(tenant) == 2
    assert chain.verify_chain(tenant).checkpoints == 1


def test_the_signing_key_is_created_private(settings: Any, tmp_path: Path) -> None:
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "secrets" / "signer.pem"
    previous = os.umask(0)  # the mode must not depend on the operator's umask
    try:
        chain.signing_key()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(settings.AUDIT_SIGNING_KEY_FILE.stat().st_mode) == 0o600
