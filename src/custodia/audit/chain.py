"""Checking the trail: recompute every hash chain, check signed checkpoints, sign new ones, purge.

Each business (and the platform, for sign-ins) has `LANES` chains. In a lane, event n has
hash_n = sha256(hash_{n-1} || body_n), hash_0 being 32 zero bytes, and body_n the canonical bytes
`BODY_SQL` of the row: PostgreSQL's binary encoding of a record of every column but the hash
(`record_send`: each column's type, length and bytes, so no two rows encode alike), the same
expression the insert trigger hashes (audit/migrations/0002). Binary, because the database
makes it several times faster than a text form, and verification is bounded by it.
A checkpoint is a statement of lane heads (seq, hash) signed with Ed25519 by a key kept outside
the database; verification starts a lane from a checkpoint when retention has purged its
beginning, and compares every checkpointed head with the events.

These run on the owner connection ("owner", the `custodia audit` commands): the app role may
neither read every business's trail nor delete from it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone
from psycopg import sql

from custodia.audit import keys
from custodia.core.audit import AuditAction, record

LANES = 8
ZERO_HASH = bytes(32)
USING = "owner"
# Must stay identical to the trigger's expression (with NEW for the row); a test compares them.
BODY_SQL = """record_send(ROW({row}.id, {row}.tenant_id, {row}.lane, {row}.seq, {row}.occurred_at,
    {row}.actor_user_id, {row}.actor_role, {row}.action, {row}.outcome,
    {row}.target_type, {row}.target_id, {row}.client_id, {row}.subject_ids,
    {row}.ip, {row}.user_agent, {row}.request_id, {row}.purpose, {row}.detail))"""


class ChainBroken(Exception):
    """The chain does not verify: no checkpoint is signed over it and nothing is purged."""


@dataclass(frozen=True)
class Problem:
    """The first thing wrong in one lane (or with a checkpoint)."""

    kind: str  # altered, inserted, deleted, reordered, checkpoint
    lane: int | None
    seq: int | None
    event_id: int | None
    message: str


@dataclass
class ChainReport:
    tenant_id: uuid.UUID | None
    events: int = 0
    checkpoints: int = 0
    heads: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def label(self) -> str:
        return "platform" if self.tenant_id is None else str(self.tenant_id)


# --- The signing key (audit/keys.py) ---------------------------------------------------------

key_id = keys.key_id


def signing_key(*, create: bool = True) -> Ed25519PrivateKey:
    """This host's current signing key, which also signs backup manifests and export archives
    (created on first use when `create`); ChainBroken when there is none or it does not fit."""
    path = settings.AUDIT_SIGNING_KEY_FILE
    if not create and not path.exists():
        raise ChainBroken(f"No audit signing key at {path}: the checkpoints cannot be checked.")
    try:
        return keys.signing_key()
    except keys.KeyProblem as exc:
        raise ChainBroken(str(exc)) from None


# --- Reading --------------------------------------------------------------------------------


def _raw_connection() -> Any:
    owner = connections[USING]
    owner.ensure_connection()
    return owner.connection


def _chain_filter(tenant_id: uuid.UUID | None) -> sql.Composable:
    if tenant_id is None:
        return sql.SQL("tenant_id IS NULL")
    return sql.SQL("tenant_id = {}").format(sql.Literal(str(tenant_id)))


def _execute(
    cursor: Any, template: str, tenant_id: uuid.UUID | None, params: Sequence[object] = ()
) -> None:
    """Run `template`, in which `{chain}` stands for "the rows of this chain"."""
    query = sql.SQL(template).format(chain=_chain_filter(tenant_id))
    cursor.execute(query.as_string(cursor.connection), list(params))


def _events(tenant_id: uuid.UUID | None) -> Iterator[tuple[int, int, int, bytes, bytes]]:
    """(lane, seq, id, hash, body) in chain order, streamed with binary COPY.

    Ordered by the chain index alone: adding the id would sort every row, bodies included.
    """
    query = sql.SQL(
        "COPY (SELECT e.lane, e.seq, e.id, e.hash, {body}"
        " FROM audit_auditevent e WHERE {chain} ORDER BY e.lane, e.seq)"
        " TO STDOUT (FORMAT BINARY)"
    ).format(body=sql.SQL(BODY_SQL.format(row="e")), chain=_chain_filter(tenant_id))
    with _raw_connection().cursor() as cursor, cursor.copy(query) as copy:
        copy.set_types(["int2", "int8", "int8", "bytea", "bytea"])
        yield from copy.rows()


def chains() -> list[uuid.UUID | None]:
    """Every chain with events or checkpoints: the platform's, then each business's."""
    with connections[USING].cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT tenant_id FROM audit_auditevent"
            " UNION SELECT DISTINCT tenant_id FROM audit_checkpoint"
        )
        found = {row[0] for row in cursor.fetchall()}
    businesses = sorted((t for t in found if t is not None), key=str)
    return [None, *businesses] if None in found else businesses


@dataclass(frozen=True)
class Anchor:
    """A lane head a valid checkpoint signed; `retention` when the purge made it."""

    digest: bytes
    retention: bool


def _checkpoints(
    tenant_id: uuid.UUID | None, report: ChainReport, logged_before: dt.datetime | None = None
) -> dict[int, dict[int, Anchor]]:
    """Signed heads by lane and seq, from every checkpoint whose signature holds.

    Checkpoints form a chain of their own (each statement names the digest of the one before),
    so one deleted from the middle is seen; the copy each one leaves outside the database
    (`checkpoint_log`) shows the newest ones deleted too.
    """
    anchors: dict[int, dict[int, Anchor]] = {}
    chain_name = None if tenant_id is None else str(tenant_id)
    with connections[USING].cursor() as cursor:
        _execute(
            cursor,
            "SELECT id, statement, signature, key_id FROM audit_checkpoint WHERE {chain}"
            " ORDER BY id",
            tenant_id,
        )
        rows = cursor.fetchall()
    ring = keys.key_ring() if rows else None
    previous = ""
    stored: set[tuple[str, str]] = set()
    for checkpoint_id, statement, signature, signed_by in rows:
        report.checkpoints += 1
        signature = bytes(signature)
        stored.add((statement, signature.hex()))
        digest = checkpoint_digest(statement, signature)
        why = _checkpoint_problem(ring, signed_by, statement, signature, chain_name, previous)
        previous = digest
        if why is not None:
            report.problems.append(
                Problem("checkpoint", None, None, None, f"Checkpoint {checkpoint_id}: {why}.")
            )
            continue
        body = json.loads(statement)
        retention = body.get("reason") == "retention"
        for lane, seq, hex_hash in body["heads"]:
            anchors.setdefault(lane, {})[seq] = Anchor(bytes.fromhex(hex_hash), retention)
    for entry in _logged_checkpoints(chain_name):
        if logged_before is not None and _made_at(entry) >= logged_before:
            continue  # a copy restored from a backup of that time cannot hold it
        if (entry["statement"], entry["signature"]) not in stored:
            report.problems.append(
                Problem(
                    "checkpoint",
                    None,
                    None,
                    None,
                    f"Checkpoint {entry['id']} is in the checkpoint log but not in the database:"
                    " it was deleted.",
                )
            )
    return anchors


def _checkpoint_problem(
    ring: keys.KeyRing | None,
    signed_by: str,
    statement: str,
    signature: bytes,
    chain_name: str | None,
    previous: str | None,
) -> str | None:
    """Why a checkpoint does not hold (its signature, its chain, its predecessor), or None.

    `previous` None: the predecessor is not checked (a checkpoint read outside the database)."""
    assert ring is not None  # noqa: S101 (rows exist, so the ring was loaded)
    try:
        body = json.loads(statement)
        made_at = dt.datetime.fromisoformat(body["made_at"])
        if not isinstance(body["heads"], list):
            raise TypeError("heads")
    except (ValueError, KeyError, TypeError):
        return "its statement is not a checkpoint statement"
    why = ring.problem(signed_by, statement, signature, made_at)
    if why is not None:
        return why
    if body.get("tenant") != chain_name:
        return "it belongs to another chain"
    if previous is not None and body.get("previous", "") != previous:
        return "the checkpoint before it is missing"
    return None


def checkpoint_digest(statement: str, signature: bytes) -> str:
    """What the next checkpoint of the chain names as its predecessor."""
    return hashlib.sha256(statement.encode() + signature).hexdigest()


def _made_at(entry: dict[str, Any]) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(json.loads(entry["statement"])["made_at"])
    except (KeyError, TypeError, ValueError):
        return dt.datetime.min.replace(tzinfo=dt.UTC)  # expected in every copy: checked


def _logged_checkpoints(chain_name: str | None) -> Iterator[dict[str, Any]]:
    path = settings.AUDIT_CHECKPOINT_LOG_FILE
    if not path.exists():
        return
    with path.open() as handle:
        for line in handle:
            entry = json.loads(line)
            if entry.get("chain") == chain_name:
                yield entry


def _log_checkpoint(
    chain_name: str | None, checkpoint_id: int, statement: str, signature: bytes
) -> None:
    """Append the checkpoint to the log beside the signing key (after the commit)."""
    path = settings.AUDIT_CHECKPOINT_LOG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(
        {
            "chain": chain_name,
            "id": checkpoint_id,
            "statement": statement,
            "signature": signature.hex(),
        }
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a") as handle:
        handle.write(line + "\n")


# --- Verifying ------------------------------------------------------------------------------


def verify_chain(
    tenant_id: uuid.UUID | None, *, logged_before: dt.datetime | None = None
) -> ChainReport:
    """Recompute one chain; the report lists the first problem of each lane, if any.

    `logged_before`: the database is a copy restored from a backup taken then (the restore
    drill), so checkpoints logged since are not expected in it."""
    report = ChainReport(tenant_id)
    # One snapshot for checkpoints and events (unless a caller's transaction already has one).
    snapshot = not connections[USING].in_atomic_block
    with transaction.atomic(using=USING):
        if snapshot:
            with connections[USING].cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try:
            anchors = _checkpoints(tenant_id, report, logged_before)
        except keys.KeyProblem as exc:
            report.problems.append(Problem("checkpoint", None, None, None, str(exc)))
            anchors = {}
        _verify_events(tenant_id, report, anchors)
    return report


def _verify_events(
    tenant_id: uuid.UUID | None, report: ChainReport, anchors: dict[int, dict[int, Anchor]]
) -> None:
    broken: set[int] = set()
    seen: set[int] = set()
    lane = -1
    prev = ZERO_HASH
    expected = 1
    last_id = 0
    lane_anchors: dict[int, Anchor] = {}
    sha256 = hashlib.sha256
    # An event whose hash does not match is judged on the next row: the same sequence number
    # again means an inserted event (in either order), else this one was altered.
    suspect: tuple[int, int, int] | None = None
    for row_lane, seq, event_id, stored, body in _events(tenant_id):
        report.events += 1
        if suspect is not None:
            _judge(report, broken, suspect, (row_lane, seq, event_id))
            suspect = None
        if row_lane != lane:
            if lane >= 0:
                _check_tail(report, lane, expected - 1, lane_anchors, broken)
            lane, last_id = row_lane, 0
            seen.add(lane)
            lane_anchors = anchors.get(lane, {})
            if not 0 <= lane < LANES:
                _fail(report, broken, "inserted", lane, seq, event_id, "no such lane exists")
                continue
            prev, expected = _lane_start(report, lane, seq, event_id, lane_anchors, broken)
        if lane in broken:
            continue
        if seq != expected:
            if seq < expected:
                what = f"an extra event with sequence number {seq}"
                _fail(report, broken, "inserted", lane, seq, event_id, what)
            else:
                what = f"events {expected} to {seq - 1} are missing"
                _fail(report, broken, "deleted", lane, expected, event_id, what)
            continue
        if event_id <= last_id:
            what = f"event {event_id} sits after event {last_id}"
            _fail(report, broken, "reordered", lane, seq, event_id, what)
            continue
        if sha256(prev + body).digest() != stored:
            suspect = (lane, seq, event_id)
            continue
        signed = lane_anchors.get(seq)
        if signed is not None and signed.digest != stored:
            what = "its hash differs from the signed checkpoint"
            _fail(report, broken, "altered", lane, seq, event_id, what)
            continue
        prev, expected, last_id = stored, seq + 1, event_id
        report.heads[lane] = (seq, stored)
    if suspect is not None:
        _judge(report, broken, suspect, None)
    if lane >= 0:
        _check_tail(report, lane, expected - 1, lane_anchors, broken)
    for empty_lane in sorted(set(anchors) - seen):
        _check_tail(report, empty_lane, 0, anchors[empty_lane], broken)


def _judge(
    report: ChainReport,
    broken: set[int],
    suspect: tuple[int, int, int],
    following: tuple[int, int, int] | None,
) -> None:
    lane, seq, event_id = suspect
    if following is not None and following[:2] == (lane, seq):
        _fail(
            report,
            broken,
            "inserted",
            lane,
            seq,
            following[2],
            f"two events with sequence number {seq}",
        )
    else:
        _fail(report, broken, "altered", lane, seq, event_id, "its content does not match its hash")


def _fail(
    report: ChainReport,
    broken: set[int],
    kind: str,
    lane: int,
    seq: int,
    event_id: int | None,
    what: str,
) -> None:
    broken.add(lane)
    where = f"lane {lane}, sequence {seq}" + (f", event {event_id}" if event_id else "")
    report.problems.append(
        Problem(kind, lane, seq, event_id, f"{kind.capitalize()} ({where}): {what}.")
    )


def _lane_start(
    report: ChainReport,
    lane: int,
    seq: int,
    event_id: int,
    anchors: dict[int, Anchor],
    broken: set[int],
) -> tuple[bytes, int]:
    """Where a lane's first remaining event continues from: the start, or the head a retention
    checkpoint signed just before the purge deleted what came before (no other checkpoint may
    vouch for missing events: a daily one signed them to keep them)."""
    if seq == 1:
        return ZERO_HASH, 1
    anchor = anchors.get(seq - 1)
    if anchor is not None and anchor.retention:
        report.heads[lane] = (seq - 1, anchor.digest)
        return anchor.digest, seq
    what = f"events before sequence {seq} are gone and no retention checkpoint vouches for them"
    _fail(report, broken, "deleted", lane, 1, event_id, what)
    return ZERO_HASH, seq


def _check_tail(
    report: ChainReport, lane: int, last_seq: int, anchors: dict[int, Anchor], broken: set[int]
) -> None:
    """Signed events past the lane's last one were deleted; a lane the purge emptied whole
    ends at its retention checkpoint (and continues from there)."""
    if lane in broken or not anchors:
        return
    signed_last = max(anchors)
    if signed_last <= last_seq:
        return
    if last_seq == 0 and anchors[signed_last].retention:
        report.heads[lane] = (signed_last, anchors[signed_last].digest)
        return
    what = f"a checkpoint signed events up to {signed_last}, the lane ends at {last_seq}"
    _fail(report, broken, "deleted", lane, last_seq + 1, None, what)


# --- Checkpoints and retention --------------------------------------------------------------


def make_checkpoint(
    tenant_id: uuid.UUID | None,
    *,
    reason: str = "manual",
    heads: dict[int, tuple[int, bytes]] | None = None,
) -> int | None:
    """Verify the chain, then sign its lane heads (or `heads`); the checkpoint's id, or None
    when the chain has no events. A broken chain is never signed (ChainBroken)."""
    if heads is None:
        report = verify_chain(tenant_id)
        if not report.ok:
            raise ChainBroken(f"Chain {report.label}: {report.problems[0].message}")
        heads = report.heads
    if not heads:
        return None
    made_at = timezone.now()
    chain_name = None if tenant_id is None else str(tenant_id)
    with connections[USING].cursor() as cursor:
        _execute(
            cursor,
            "SELECT statement, signature FROM audit_checkpoint WHERE {chain}"
            " ORDER BY id DESC LIMIT 1",
            tenant_id,
        )
        last = cursor.fetchone()
        statement = json.dumps(
            {
                "v": 1,
                "tenant": chain_name,
                "made_at": made_at.isoformat(),
                "reason": reason,
                "previous": checkpoint_digest(last[0], bytes(last[1])) if last else "",
                "heads": [
                    [lane, seq, digest.hex()] for lane, (seq, digest) in sorted(heads.items())
                ],
            },
            separators=(",", ":"),
            sort_keys=True,
        )
        signed_by, signature = _sign(statement, chain_name)
        cursor.execute(
            "INSERT INTO audit_checkpoint"
            " (tenant_id, made_at, reason, statement, signature, key_id)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            [tenant_id, made_at, reason, statement, signature, signed_by],
        )
        row = cursor.fetchone()
    checkpoint_id = int(row[0])
    transaction.on_commit(
        lambda: _log_checkpoint(chain_name, checkpoint_id, statement, signature), using=USING
    )
    return checkpoint_id


def _sign(statement: str, chain_name: str | None) -> tuple[str, bytes]:
    """Sign through the configured signer; a signature the ring does not verify is refused
    (a remote signer with a key this host does not know, or a key file not in the ring)."""
    try:
        signed_by, signature = keys.signer().sign(statement)
        why = _checkpoint_problem(
            keys.key_ring(), signed_by, statement, signature, chain_name, None
        )
    except keys.KeyProblem as exc:
        raise ChainBroken(str(exc)) from None
    if why is not None:
        raise ChainBroken(f"The signer's checkpoint does not verify: {why}.")
    return signed_by, signature


@dataclass(frozen=True)
class Purged:
    tenant_id: uuid.UUID | None
    events: int
    checkpoint_id: int | None


def purge_chain(tenant_id: uuid.UUID | None, *, now: dt.datetime | None = None) -> Purged:
    """Delete the events older than the retention period, after signing the heads they end at.

    Only a prefix of each lane goes, so verification continues from the new checkpoint. A chain
    that does not verify is left whole (ChainBroken): it is evidence. The purge is itself an
    event of the chain, in the same transaction.
    """
    cutoff = (now or timezone.now()) - dt.timedelta(days=settings.AUDIT_RETENTION_DAYS)
    with transaction.atomic(using=USING):
        report = verify_chain(tenant_id)
        if not report.ok:
            raise ChainBroken(f"Chain {report.label}: {report.problems[0].message}")
        with connections[USING].cursor() as cursor:
            _execute(
                cursor,
                "SELECT lane, coalesce(min(seq) FILTER (WHERE occurred_at >= %s) - 1, max(seq))"
                " FROM audit_auditevent WHERE {chain} GROUP BY lane",
                tenant_id,
                [cutoff],
            )
            ends = {lane: last for lane, last in cursor.fetchall() if last and last > 0}
            heads: dict[int, tuple[int, bytes]] = {}
            for lane, last in ends.items():
                _execute(
                    cursor,
                    "SELECT hash FROM audit_auditevent WHERE {chain} AND lane = %s AND seq = %s",
                    tenant_id,
                    [lane, last],
                )
                row = cursor.fetchone()
                if row is not None:
                    heads[lane] = (last, bytes(row[0]))
            if not heads:
                return Purged(tenant_id, 0, None)
            checkpoint_id = make_checkpoint(tenant_id, reason="retention", heads=heads)
            cursor.execute(
                "SELECT set_config('custodia.audit_purge_before', %s, true)", [cutoff.isoformat()]
            )
            deleted = 0
            for lane, (last, _digest) in heads.items():
                _execute(
                    cursor,
                    "DELETE FROM audit_auditevent WHERE {chain} AND lane = %s AND seq <= %s",
                    tenant_id,
                    [lane, last],
                )
                deleted += cursor.rowcount
        record(
            AuditAction.AUDIT_PURGE,
            tenant_id=tenant_id,
            detail={"events": deleted, "checkpoint": checkpoint_id, "before": cutoff.isoformat()},
            using=USING,
        )
    return Purged(tenant_id, deleted, checkpoint_id)
