"""Chain heads an owner keeps, and checking a trail against them (`audit verify --against`).

Every signed checkpoint states each lane's head (sequence number and hash) of one chain. An owner
downloads them (the audit page) and receives each week's in the security digest; kept outside
the platform, they pin the trail: whoever later rewrites a business's events, re-chains them
and signs new checkpoints, even with the database and the signing key, changes the hash at a
sequence an owner kept. `verify_against` says where.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone

from custodia.audit import keys
from custodia.audit.chain import USING, checkpoint_digest
from custodia.audit.models import Checkpoint

FORMAT = "custodia-audit-heads"
VERSION = 1


class HeadsFileError(ValueError):
    """The file is not a heads file this version can read (the message says why)."""


def checkpoint_entry(checkpoint: Checkpoint) -> dict[str, Any]:
    """One checkpoint as an owner keeps it: the signed statement, its signature and key, and
    its heads spelled out."""
    statement = json.loads(checkpoint.statement)
    signature = bytes(checkpoint.signature)
    return {
        "checkpoint": checkpoint.id,
        "chain": statement.get("tenant"),
        "made_at": statement.get("made_at"),
        "reason": statement.get("reason"),
        "digest": checkpoint_digest(checkpoint.statement, signature),
        "key_id": checkpoint.key_id,
        "signature": signature.hex(),
        "statement": checkpoint.statement,
        "heads": [
            {"lane": lane, "seq": seq, "hash": digest}
            for lane, seq, digest in statement.get("heads", [])
        ],
    }


def heads_document(tenant_id: uuid.UUID, checkpoints: Iterable[Checkpoint]) -> dict[str, Any]:
    """The file an owner keeps: every given checkpoint of the business's chain, oldest first."""
    return {
        "format": FORMAT,
        "v": VERSION,
        "chain": str(tenant_id),
        "exported_at": timezone.now().isoformat(),
        "checkpoints": [checkpoint_entry(checkpoint) for checkpoint in checkpoints],
    }


@dataclass(frozen=True)
class Kept:
    """One checkpoint of a kept file, as read (not yet checked)."""

    number: int  # its position in the file, from 1
    checkpoint: object
    statement: str
    signature: bytes
    key_id: str


def parse_heads(text: str) -> tuple[uuid.UUID, list[Kept]]:
    """The chain and checkpoints of a heads file; HeadsFileError naming what is wrong."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HeadsFileError(f"it is not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise HeadsFileError(f'it is not a heads file (no "format": "{FORMAT}")')
    if document.get("v") != VERSION:
        raise HeadsFileError(f"version {document.get('v')!r} is not one this version reads")
    try:
        chain = uuid.UUID(str(document.get("chain")))
    except ValueError:
        raise HeadsFileError('its "chain" is not a business id') from None
    entries = document.get("checkpoints")
    if not isinstance(entries, list) or not entries:
        raise HeadsFileError("it holds no checkpoints")
    kept = []
    for number, entry in enumerate(entries, start=1):
        try:
            kept.append(
                Kept(
                    number,
                    entry.get("checkpoint"),
                    str(entry["statement"]),
                    bytes.fromhex(str(entry["signature"])),
                    str(entry["key_id"]),
                )
            )
        except (AttributeError, KeyError, ValueError):
            raise HeadsFileError(
                f"checkpoint {number} of the file lacks a statement, signature or key_id"
            ) from None
    return chain, kept


@dataclass(frozen=True)
class Comparison:
    """What a kept file says about the trail: problems (empty: it matches) and notes."""

    heads: int
    checkpoints: int
    problems: list[str]
    notes: list[str]


@dataclass(frozen=True)
class _Head:
    lane: int
    seq: int
    digest: bytes
    checkpoint: object
    made_at: dt.datetime


def _signed_heads(chain: uuid.UUID, kept: list[Kept], problems: list[str]) -> list[_Head]:
    """The heads of every kept checkpoint whose signature a ring key verifies."""
    ring = keys.key_ring()
    heads: list[_Head] = []
    for entry in kept:
        name = f"Checkpoint {entry.checkpoint} (entry {entry.number} of the file)"
        try:
            body = json.loads(entry.statement)
            made_at = dt.datetime.fromisoformat(body["made_at"])
            lanes = [(int(lane), int(seq), bytes.fromhex(h)) for lane, seq, h in body["heads"]]
        except (ValueError, KeyError, TypeError):
            problems.append(f"{name}: its statement is not a checkpoint statement.")
            continue
        why = ring.problem(entry.key_id, entry.statement, entry.signature, made_at)
        if why is None and body.get("tenant") != str(chain):
            why = "it belongs to another chain"
        if why is not None:
            problems.append(f"{name}: {why}.")
            continue
        heads.extend(
            _Head(lane, seq, digest, entry.checkpoint, made_at) for lane, seq, digest in lanes
        )
    return heads


def verify_against(chain: uuid.UUID, kept: list[Kept]) -> Comparison:
    """Check that every kept head is a point of the current chain: the same sequence number in
    the same lane has the same hash. Per lane, the first head that differs is reported.

    A kept head before a lane's first remaining event is compared with nothing when retention
    may have deleted it (the checkpoint is older than the retention period), and is a problem
    otherwise (events younger than that were deleted)."""
    problems: list[str] = []
    notes: list[str] = []
    heads = _signed_heads(chain, kept, problems)
    found = _trail_hashes(chain, {(head.lane, head.seq) for head in heads})
    bounds = _lane_bounds(chain)
    retention_start = timezone.now() - dt.timedelta(days=settings.AUDIT_RETENTION_DAYS)
    broken: set[int] = set()
    for head in sorted(heads, key=lambda head: (head.lane, head.seq)):
        if head.lane in broken:
            continue
        where = f"Lane {head.lane}, sequence {head.seq} (checkpoint {head.checkpoint})"
        first, last = bounds.get(head.lane, (None, None))
        stored = found.get((head.lane, head.seq))
        if stored is not None:
            if stored != head.digest:
                broken.add(head.lane)
                problems.append(
                    f"{where}: the trail's hash {stored.hex()[:16]}… differs from the kept head"
                    f" {head.digest.hex()[:16]}…: the trail was rewritten from there or before."
                )
            continue
        if first is not None and head.seq < first and head.made_at < retention_start:
            notes.append(f"{where}: purged by retention, not compared.")
            continue
        broken.add(head.lane)
        ends = "has no events" if last is None else f"runs from {first} to {last}"
        problems.append(f"{where}: the trail has no such event (the lane {ends}): deleted.")
    return Comparison(len(heads), len(kept), problems, notes)


def _trail_hashes(chain: uuid.UUID, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    if not wanted:
        return {}
    lanes = [lane for lane, _seq in sorted(wanted)]
    seqs = [seq for _lane, seq in sorted(wanted)]
    with connections[USING].cursor() as cursor:
        cursor.execute(
            "SELECT e.lane, e.seq, e.hash FROM audit_auditevent e"
            " JOIN unnest(%s::smallint[], %s::bigint[]) AS k(lane, seq)"
            " ON e.lane = k.lane AND e.seq = k.seq WHERE e.tenant_id = %s",
            [lanes, seqs, chain],
        )
        return {(lane, seq): bytes(digest) for lane, seq, digest in cursor.fetchall()}


def _lane_bounds(chain: uuid.UUID) -> dict[int, tuple[int, int]]:
    with connections[USING].cursor() as cursor:
        cursor.execute(
            "SELECT lane, min(seq), max(seq) FROM audit_auditevent WHERE tenant_id = %s"
            " GROUP BY lane",
            [chain],
        )
        return {lane: (first, last) for lane, first, last in cursor.fetchall()}
