"""`custodia audit verify --against FILE`: heads an owner kept catch a trail that was rewritten,
re-chained and re-signed by someone holding the database and the signing key, which the plain
`verify` cannot see."""

from __future__ import annotations

import hashlib
import json
import uuid
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from custodia.audit import chain
from custodia.audit.heads import heads_document
from custodia.audit.models import Checkpoint
from tests.audit.test_chain import _events, _owner_sql, _tamper

pytestmark = pytest.mark.django_db(databases=["default", "owner"])
OWNER = chain.USING


@pytest.fixture(autouse=True)
def own_keys(settings: Any, tmp_path: Path) -> Path:
    """This test's signing key, key ring and checkpoint log (never the shared var/)."""
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "keys" / "signer.pem"
    settings.AUDIT_CHECKPOINT_LOG_FILE = tmp_path / "keys" / "checkpoints.jsonl"
    settings.AUDIT_KEY_RING_FILE = None
    return tmp_path


def kept_heads(tenant: uuid.UUID, path: Path) -> Path:
    """The owner's download: every checkpoint of the chain, written to `path`."""
    checkpoints = Checkpoint.objects.using(OWNER).filter(tenant_id=tenant).order_by("id")
    path.write_text(json.dumps(heads_document(tenant, checkpoints)))
    return path


def verify_against(path: Path, *extra: str) -> str:
    out = StringIO()
    try:
        call_command("audit", "verify", "--against", str(path), *extra, stdout=out)
    finally:
        print(out.getvalue())
    return out.getvalue()


def plain_verify(tenant: uuid.UUID) -> None:
    report = chain.verify_chain(tenant)
    assert report.ok, report.problems


def _rows(tenant: uuid.UUID) -> list[tuple[int, int, int]]:
    with connections[OWNER].cursor() as cursor:
        cursor.execute(
            "SELECT id, lane, seq FROM audit_auditevent WHERE tenant_id = %s ORDER BY lane, seq",
            [tenant],
        )
        return cursor.fetchall()


def rewrite_and_resign(tenant: uuid.UUID, victim_seq: int) -> int:
    """What an operator holding the database owner role and the signing key can do: change an
    event, recompute the hashes from there on, move the chain head, drop the old checkpoints
    (and their log outside the database), and sign a fresh checkpoint. Returns the lane."""
    rows = _rows(tenant)
    lanes = {lane for _id, lane, _seq in rows}
    assert len(lanes) == 1  # one connection's events share a lane
    (lane,) = lanes
    victim = next(event_id for event_id, _lane, seq in rows if seq == victim_seq)
    _tamper("UPDATE audit_auditevent SET outcome = 'denied', detail = '{}' WHERE id = %s", [victim])
    previous = bytes(32)
    body_sql = chain.BODY_SQL.format(row="e")
    _owner_sql("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
    with connections[OWNER].cursor() as cursor:
        for event_id, _lane, _seq in rows:
            cursor.execute(f"SELECT {body_sql} FROM audit_auditevent e WHERE id = %s", [event_id])  # noqa: S608
            body = bytes(cursor.fetchone()[0])
            digest = hashlib.sha256(previous + body).digest()
            cursor.execute(
                "UPDATE audit_auditevent SET hash = %s WHERE id = %s", [digest, event_id]
            )
            previous = digest
        cursor.execute(
            "UPDATE audit_chain_head SET hash = %s WHERE chain = %s AND lane = %s",
            [previous, tenant, lane],
        )
    _owner_sql("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only")
    _owner_sql("ALTER TABLE audit_checkpoint DISABLE TRIGGER audit_checkpoint_append_only")
    _owner_sql("DELETE FROM audit_checkpoint WHERE tenant_id = %s", [tenant])
    _owner_sql("ALTER TABLE audit_checkpoint ENABLE TRIGGER audit_checkpoint_append_only")
    settings.AUDIT_CHECKPOINT_LOG_FILE.write_text("")
    assert chain.make_checkpoint(tenant) is not None
    return lane


def test_an_honest_trail_matches_the_heads_kept(tmp_path: Path) -> None:
    tenant = uuid.uuid4()
    _events(tenant, 4)
    chain.make_checkpoint(tenant)
    _events(tenant, 3)
    chain.make_checkpoint(tenant)
    kept = kept_heads(tenant, tmp_path / "heads.json")
    _events(tenant, 2)  # the trail goes on after the owner's download
    chain.make_checkpoint(tenant)
    out = verify_against(kept)
    assert "MATCHES" in out and "of 2 checkpoints are points of the current chain" in out


def test_a_rewritten_and_resigned_trail_passes_verify_but_not_the_kept_heads(
    tmp_path: Path,
) -> None:
    tenant = uuid.uuid4()
    _events(tenant, 6)
    chain.make_checkpoint(tenant)
    kept = kept_heads(tenant, tmp_path / "heads.json")
    lane = rewrite_and_resign(tenant, victim_seq=3)
    # The platform's own check sees nothing: the chain is consistent and freshly signed.
    plain_verify(tenant)
    call_command("audit", "verify", stdout=StringIO())
    with pytest.raises(CommandError) as caught:
        verify_against(kept)
    message = str(caught.value)
    # The kept head is the lane's last event (6), where the rewritten hashes first meet it.
    assert f"Lane {lane}, sequence 6" in message
    assert "the trail was rewritten from there or before" in message


def test_the_first_mismatching_sequence_is_named(tmp_path: Path) -> None:
    tenant = uuid.uuid4()
    _events(tenant, 2)
    chain.make_checkpoint(tenant)
    _events(tenant, 2)
    chain.make_checkpoint(tenant)
    _events(tenant, 2)
    chain.make_checkpoint(tenant)
    kept = kept_heads(tenant, tmp_path / "heads.json")
    lane = rewrite_and_resign(tenant, victim_seq=3)
    plain_verify(tenant)
    with pytest.raises(CommandError, match=f"Lane {lane}, sequence 4 "):
        verify_against(kept)


def test_a_deleted_tail_is_caught(tmp_path: Path) -> None:
    tenant = uuid.uuid4()
    _events(tenant, 5)
    chain.make_checkpoint(tenant)
    kept = kept_heads(tenant, tmp_path / "heads.json")
    (_id, lane, _seq) = _rows(tenant)[0]
    _tamper("DELETE FROM audit_auditevent WHERE tenant_id = %s AND seq > 3", [tenant])
    with pytest.raises(CommandError, match=f"Lane {lane}, sequence 5 .*no such event"):
        verify_against(kept)


def test_a_forged_signature_in_the_file_fails(tmp_path: Path) -> None:
    tenant = uuid.uuid4()
    _events(tenant, 3)
    chain.make_checkpoint(tenant)
    path = kept_heads(tenant, tmp_path / "heads.json")
    document = json.loads(path.read_text())
    entry = document["checkpoints"][0]
    # Someone hands the owner heads of their own making, under the platform's key id.
    statement = json.loads(entry["statement"])
    statement["heads"][0][2] = "00" * 32
    entry["statement"] = json.dumps(statement, separators=(",", ":"), sort_keys=True)
    path.write_text(json.dumps(document))
    with pytest.raises(CommandError, match="its signature does not verify"):
        verify_against(path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "Cannot read"),
        ("{not json", "it is not JSON"),
        ('{"format": "csv"}', "it is not a heads file"),
        ('{"format": "custodia-audit-heads", "v": 9}', "version 9"),
        ('{"format": "custodia-audit-heads", "v": 1, "chain": "x"}', "not a business id"),
        (
            '{"format": "custodia-audit-heads", "v": 1, "chain": "%s", "checkpoints": []}',
            "holds no checkpoints",
        ),
        (
            '{"format": "custodia-audit-heads", "v": 1, "chain": "%s", "checkpoints": [{}]}',
            "checkpoint 1 of the file lacks",
        ),
        (
            '{"format": "custodia-audit-heads", "v": 1, "chain": "%s", "checkpoints":'
            ' [{"statement": "x", "signature": "zz", "key_id": "k"}]}',
            "checkpoint 1 of the file lacks",
        ),
    ],
)
def test_a_bad_file_is_a_clear_error(tmp_path: Path, content: str | None, problem: str) -> None:
    path = tmp_path / "heads.json"
    if content is not None:
        path.write_text(content.replace("%s", str(uuid.uuid4())))
    with pytest.raises(CommandError, match=problem):
        verify_against(path)
