"""Key lifecycle: rotate a business's data key (re-encrypting its rows online), rotate the KEK
(re-wrapping every data key), destroy retired keys and a deleted business's keys. Each is
recorded in the audit trail, on the owner connection (these run from `custodia keys`)."""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from custodia.core.audit import AuditAction, record
from custodia.crypto import keyring, keystore, rows
from custodia.crypto.access import values_per_version
from custodia.crypto.errors import CryptoError, KeyUnavailable, RotationInProgress
from custodia.crypto.rows import batches, reseal_to_primary, rewrite_batch, sealed_tables

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class RotationResult:
    business_id: uuid.UUID
    version: int
    retired: list[int]
    rows: int  # rows re-encrypted by this run
    seconds: float
    resumed: bool  # an interrupted rotation was finished rather than a new one started


def do_rotate_business_key(
    business_id: uuid.UUID, *, progress: Progress | None = None
) -> RotationResult:
    """Re-encrypt every sealed value of the business under a new data key version, online.

    A new version becomes primary at once, so new writes use it; then each table is rewritten in
    batches (crypto/rows.py), readers still opening old values with the previous key. If a
    previous rotation was interrupted (a `previous` version is still listed), this finishes it
    instead of starting another. Once no row names an old version, those become `retired`.
    One rotation per business at a time (an advisory lock); another one is refused.
    """
    with _rotation_lock(business_id):
        return _rotate(business_id, progress)


def _rotate(business_id: uuid.UUID, progress: Progress | None) -> RotationResult:
    if not settings.FIELD_ENCRYPTION:
        # The benchmark's plaintext baseline: a sweep would rewrite its values forever.
        raise ImproperlyConfigured("Key rotation needs FIELD_ENCRYPTION on.")
    started = time.monotonic()
    key_file = keystore.read(business_id)
    resumed = any(key.state == keystore.PREVIOUS for key in key_file.keys)
    if resumed:
        version = key_file.primary.version
    else:
        version = keystore.add_version(business_id, keyring.provider()).version
        record(
            AuditAction.KEY_ROTATE,
            tenant_id=business_id,
            target_type="data_key",
            target_id=version,
            detail={"phase": "started", "version": version},
            using=rows.USING,
        )
    keyring.keys_for(business_id, refresh=True)
    switched = time.monotonic()
    resealed = _reseal_all(business_id, progress)
    # A process that read the key file just before the switch may seal with the old version
    # for up to REFRESH_SECONDS more: sweep again once that is over, until nothing is left.
    while True:
        wait = keyring.REFRESH_SECONDS + 0.1 - (time.monotonic() - switched)
        if wait > 0:
            time.sleep(wait)
        swept = _reseal_all(business_id, progress)
        resealed += swept
        if swept == 0:
            break
        switched = time.monotonic()
    retired = keystore.retire_previous(business_id)
    seconds = time.monotonic() - started
    record(
        AuditAction.KEY_ROTATE,
        tenant_id=business_id,
        target_type="data_key",
        target_id=version,
        detail={
            "phase": "finished",
            "version": version,
            "retired": retired,
            "rows": resealed,
            "resumed": resumed,
        },
        using=rows.USING,
    )
    logger.info(
        "data key rotated tenant=%s version=%s rows=%s seconds=%.1f",
        business_id,
        version,
        resealed,
        seconds,
    )
    return RotationResult(uuid.UUID(str(business_id)), version, retired, resealed, seconds, resumed)


@contextmanager
def _rotation_lock(business_id: uuid.UUID) -> Iterator[None]:
    """A session-level advisory lock on the rotating connection, held across its batches."""
    name = f"custodia key rotation {business_id}"
    with connections[rows.USING].cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [name])
        (locked,) = cursor.fetchone()
    if not locked:
        raise RotationInProgress(f"A rotation of business {business_id} is already running.")
    try:
        yield
    finally:
        with connections[rows.USING].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [name])


def _reseal_all(business_id: uuid.UUID, progress: Progress | None) -> int:
    changed = 0
    for table in sealed_tables():
        seen = resealed = 0
        primary = keyring.keys_for(business_id).primary
        for keys in batches(rows.USING, business_id, table, not_under=primary):
            resealed += rewrite_batch(rows.USING, business_id, table, keys, reseal_to_primary)
            seen += len(keys)
            if progress is not None:
                progress(f"{table.table}: {seen} rows checked, {resealed} re-encrypted")
        changed += resealed
    return changed


def businesses_due(now: dt.datetime | None = None) -> list[uuid.UUID]:
    """Businesses whose primary data key is older than KEY_ROTATION_DAYS, or whose rotation was
    interrupted."""
    now = now or dt.datetime.now(dt.UTC)
    horizon = now - dt.timedelta(days=settings.KEY_ROTATION_DAYS)
    due = []
    for business in keystore.business_ids():
        key_file = keystore.read(business)
        interrupted = any(key.state == keystore.PREVIOUS for key in key_file.keys)
        if interrupted or dt.datetime.fromisoformat(key_file.primary.created_at) < horizon:
            due.append(business)
    return due


def do_destroy_expired_keys(
    now: dt.datetime | None = None, *, progress: Progress | None = None
) -> dict[uuid.UUID, list[int]]:
    """Destroy retired data keys past RETIRED_KEY_RETENTION_DAYS (backups older than that are
    gone too); returns what was destroyed, by business.

    A version is destroyed only when no stored value names it. One can, if a process sealed a
    value with it just before it learnt of the rotation and committed after the rotation's last
    sweep: such values are re-encrypted under the primary key first.
    """
    now = now or dt.datetime.now(dt.UTC)
    horizon = now - dt.timedelta(days=settings.RETIRED_KEY_RETENTION_DAYS)
    destroyed: dict[uuid.UUID, list[int]] = {}
    for business in keystore.business_ids():
        expired = [
            key.version
            for key in keystore.read(business).keys
            if key.state == keystore.RETIRED
            and key.retired_at is not None
            and dt.datetime.fromisoformat(key.retired_at) < horizon
        ]
        if not expired:
            continue
        in_use = values_per_version(business)
        if any(in_use.get(version) for version in expired):
            try:
                with _rotation_lock(business):
                    keyring.keys_for(business, refresh=True)
                    _reseal_all(business, progress)
            except (RotationInProgress, CryptoError) as exc:
                # Kept for now; the next round tries again. The other businesses go on.
                logger.error("retired keys of tenant=%s kept: %s", business, exc)
                continue
            in_use = values_per_version(business)
        expired = [version for version in expired if not in_use.get(version)]
        if expired:
            keystore.destroy_versions(business, expired)
            destroyed[business] = expired
            record(
                AuditAction.KEY_DESTROY,
                tenant_id=business,
                target_type="data_key",
                detail={"versions": expired, "reason": "retention"},
                using=rows.USING,
            )
    return destroyed


def do_rotate_kek(*, progress: Progress | None = None) -> int:
    """Re-wrap every business's keys under the provider's primary KEK; returns keys re-wrapped.

    With the file provider, first add a new KEK to its keyring (`custodia keys rotate-kek`
    does), then run this; an interrupted run is finished by running it again.
    """
    kek = keyring.provider(refresh=True)
    total = 0
    businesses = keystore.business_ids()
    for number, business in enumerate(businesses, start=1):
        try:
            total += keystore.rewrap(business, kek)
        except KeyUnavailable:  # destroyed since the directory was listed
            pass
        if progress is not None and (number % 100 == 0 or number == len(businesses)):
            progress(f"{number}/{len(businesses)} businesses, {total} keys re-wrapped")
    record(
        AuditAction.KEK_ROTATE,
        target_type="kek",
        target_id=kek.primary_id,
        detail={"provider": kek.name, "businesses": len(businesses), "rewrapped": total},
        using=rows.USING,
    )
    return total


def do_destroy_business_keys(
    business_id: uuid.UUID, *, reason: str, using: str | None = None, user: Any = None
) -> bool:
    """Destroy all of a business's keys (crypto-shredding): its data can never be read again, from
    the database or any backup, once keystore backups older than this have expired. Recorded on the
    platform chain (as `user`'s, when a person deleted the business), through `using` (the owner
    connection unless told)."""
    destroyed = keystore.destroy(business_id)
    keyring.forget(business_id)
    record(
        AuditAction.KEY_DESTROY,
        target_type="business",
        target_id=business_id,
        user=user,
        detail={"reason": reason, "existed": destroyed},
        using=using or rows.USING,
    )
    logger.info("business keys destroyed tenant=%s existed=%s", business_id, destroyed)
    return destroyed


def do_restore_business_keys(
    files: dict[str, bytes], *, source: str, using: str | None = None
) -> tuple[list[str], list[str]]:
    """Put key files from a keystore backup (`source`: its id) back into the keystore, each only
    where its business has none: a file that exists may be newer (a rotation since) and is never
    overwritten. Each restored file is recorded on the platform chain. Returns (restored, kept).

    A restored business that is not in the database is an orphan to `keys maintain`, which
    destroys it after an hour: restore the business's rows first (docs/backups.md)."""
    restored, kept = [], []
    with keystore.locked():
        for business, content in sorted(files.items()):
            path = keystore.path_for(business)
            if path.exists():
                kept.append(business)
                continue
            keystore.replace_file(path, content)
            restored.append(business)
    for business in restored:
        keyring.forget(uuid.UUID(business))
        record(
            AuditAction.KEY_RESTORE,
            target_type="business",
            target_id=business,
            detail={"backup": source},
            using=using or rows.USING,
        )
        logger.info("business keys restored tenant=%s backup=%s", business, source)
    return restored, kept


ORPHAN_GRACE_SECONDS = 60 * 60
ORPHAN_LIMIT = 3


def do_destroy_orphan_keys() -> list[uuid.UUID]:
    """Destroy key files whose business no longer exists (its deletion committed but the key
    destruction after it failed). Files younger than an hour are left: a business being
    created has its keys before its row commits.

    Refuses when many files look orphaned at once: that is a wrong or empty database (or a
    missing policy), not deleted businesses, and destroying them would shred live data.
    """
    existing = set(rows.business_ids(rows.USING))
    now = time.time()
    kept = keystore.business_ids()
    orphans = [
        business
        for business in kept
        if business not in existing
        and now - keystore.path_for(business).stat().st_mtime >= ORPHAN_GRACE_SECONDS
    ]
    if len(orphans) > max(ORPHAN_LIMIT, len(kept) // 10):
        raise KeyUnavailable(
            f"{len(orphans)} of {len(kept)} key files have no business in this database: "
            "refusing to destroy them. Is this the right database?"
        )
    for business in orphans:
        do_destroy_business_keys(business, reason="orphan key file (business gone)")
    return orphans
