"""The figures of the security pages, computed from the live system (docs/transparency.md).

Platform figures (`platform_figures`) cover every business at once and name none: the newest
data-key rotation and how many businesses are overdue for one, the newest backup, the newest
restore drill, the last audit-chain verification, and the share of owners, managers and staff
with a second factor. A business's figures (`business_figures`) are the same for that business
alone, for its own published page. What costs the most (every key file, the backup store's
manifests, the member counts) is kept briefly in this process (`CACHE_SECONDS`): the pages are
public, and a burst of requests must not become a burst of keystore, backup-store and database
reads.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django.conf import settings
from django.db import connection

from custodia.crypto import keystore
from custodia.crypto.actions import businesses_due
from custodia.crypto.errors import CryptoError, KeyUnavailable
from custodia.lifecycle import backups
from custodia.transparency.verification import Verification, latest_verification

CACHE_SECONDS = 60
ROLES = ("owner", "manager", "staff")
ROLE_LABELS = {"owner": "Owners", "manager": "Managers", "staff": "Staff"}
T = TypeVar("T")


@dataclass(frozen=True)
class MfaShare:
    """Active members of one role and how many of them have a second factor."""

    role: str
    members: int
    with_factor: int

    @property
    def label(self) -> str:
        return ROLE_LABELS[self.role]

    @property
    def percent(self) -> int | None:
        """Whole percent with a factor (None when the role has no members)."""
        return round(100 * self.with_factor / self.members) if self.members else None


@dataclass(frozen=True)
class KeyFigures:
    """Data keys: the newest rotation, the oldest key in use, how many are overdue."""

    businesses: int
    last_rotation: dt.datetime | None
    oldest_primary: dt.datetime | None
    overdue: int
    rotation_days: int
    problem: str | None = None


@dataclass(frozen=True)
class BackupFigures:
    """The newest sound backup of the database store, and how many backups it holds."""

    newest: dt.datetime | None
    count: int
    unsound: int
    problem: str | None = None


@dataclass(frozen=True)
class Figures:
    keys: KeyFigures
    backup: BackupFigures
    drill: backups.DrillStatus | None
    verification: Verification | None
    mfa: list[MfaShare]
    computed_at: dt.datetime


_cache: dict[object, tuple[float, object]] = {}
_cache_lock = threading.Lock()


def cached(key: object, compute: Callable[[], T]) -> T:
    """`compute()`'s value, kept for CACHE_SECONDS in this process."""
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]  # type: ignore[return-value]
    value = compute()
    with _cache_lock:
        # Expired entries go as new ones come: one per published business at most, briefly.
        for stale in [k for k, (at, _) in _cache.items() if now - at >= CACHE_SECONDS]:
            del _cache[stale]
        _cache[key] = (now, value)
    return value


def forget_cached() -> None:
    """Drop every kept figure (the tests, which change what is measured and look again)."""
    with _cache_lock:
        _cache.clear()


# --- Keys ---------------------------------------------------------------------------------------


def _key_figures(business_ids: list[uuid.UUID]) -> KeyFigures:
    rotation_days = settings.KEY_ROTATION_DAYS
    rotations: list[dt.datetime] = []
    primaries: list[dt.datetime] = []
    try:
        for business in business_ids:
            try:
                key_file = keystore.read(business)
            except KeyUnavailable:
                continue  # a business being made or purged: `custodia keys status` reports it
            created = dt.datetime.fromisoformat(key_file.primary.created_at)
            primaries.append(created)
            if key_file.primary.version > 1:
                rotations.append(created)
        wanted = set(business_ids)
        overdue = sum(1 for business in businesses_due() if business in wanted)
    except (CryptoError, OSError, ValueError, StopIteration) as exc:
        return KeyFigures(
            len(business_ids), None, None, 0, rotation_days, f"unreadable ({type(exc).__name__})"
        )
    return KeyFigures(
        len(business_ids),
        max(rotations, default=None),
        min(primaries, default=None),
        overdue,
        rotation_days,
    )


# --- Backups ------------------------------------------------------------------------------------


def _backup_figures() -> BackupFigures:
    try:
        found = backups.database_store().backups()
    except backups.BackupError as exc:
        # The store's own message names its bucket or directory: never on a public page.
        return BackupFigures(None, 0, 0, f"unreadable ({type(exc).__name__})")
    sound = [backup for backup in found if backup.problem is None]
    newest = max((b.created_at for b in sound if b.created_at is not None), default=None)
    return BackupFigures(newest, len(sound), len(found) - len(sound))


# --- Members with a second factor ---------------------------------------------------------------


def mfa_shares(business_id: uuid.UUID | None) -> list[MfaShare]:
    """Owners, managers and staff with a factor: of every open business (None), or of one whose
    page is published (custodia_transparency_mfa, transparency/0002; zeros otherwise)."""
    counts = dict.fromkeys(ROLES, (0, 0))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT member_role, members, with_factor FROM custodia_transparency_mfa(%s)",
            [business_id],
        )
        for role, members, with_factor in cursor.fetchall():
            counts[role] = (int(members), int(with_factor))
    return [MfaShare(role, *counts[role]) for role in ROLES]


# --- Together -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Costly:
    keys: KeyFigures
    backup: BackupFigures
    mfa: list[MfaShare]
    computed_at: dt.datetime


def _costly(business_id: uuid.UUID | None) -> _Costly:
    ids = keystore.business_ids() if business_id is None else [business_id]
    return _Costly(
        keys=_key_figures(ids),
        backup=_backup_figures(),
        mfa=mfa_shares(business_id),
        computed_at=dt.datetime.now(dt.UTC),
    )


def _figures(costly: _Costly) -> Figures:
    # The drill log (a short signed file) and the newest verification (one indexed row) are
    # read on every request: a failed drill or check shows at once.
    return Figures(
        keys=costly.keys,
        backup=costly.backup,
        drill=backups.latest_drill(),
        verification=latest_verification(),
        mfa=costly.mfa,
        computed_at=costly.computed_at,
    )


def platform_figures() -> Figures:
    """The figures of the whole installation (no business named); the key store, backup
    store and member counts are kept CACHE_SECONDS."""
    return _figures(cached(("platform",), lambda: _costly(None)))


def business_figures(business_id: uuid.UUID) -> Figures:
    """The figures of one business with a published page, kept like the platform's."""
    return _figures(cached(("business", business_id), lambda: _costly(business_id)))
