"""Retention (lifecycle/backups/retention.py): given backups at many dates, a prune deletes
exactly what is due, nothing older than the retention survives, nothing the tiers keep is
deleted, and a backup whose manifest does not verify is never deleted on a guess: in a local
directory and on S3 (moto's server) alike.

The backups here are a signed manifest and a one-byte payload each, made at chosen dates: the
prune reads manifests only (test_backups.py prunes real backups too).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from custodia.lifecycle import backups
from custodia.lifecycle.backups import Backup, Policy, Store
from custodia.lifecycle.backups.logical import new_backup_id
from custodia.lifecycle.backups.store import FORMAT

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)  # a Friday, ISO week 49
FIRST = dt.date(2025, 10, 31)  # a backup every day at 03:00 from here to NOW: 400 backups


def fake_backup(store: Store, created: dt.datetime) -> Backup:
    """A complete backup as far as retention can tell: payload and signed manifest."""
    backup_id = new_backup_id(created)
    payload = f"{backup_id}{store.payload_suffix}"
    store.write(payload, lambda handle: handle.write(b"x"))
    manifest = {
        "format": store.manifest_format,
        "id": backup_id,
        "engine": "logical",
        "created_at": created.isoformat(),
        "dump": {"file": payload, "sha256": "", "size": 1},
    }
    store.write(
        f"{backup_id}.manifest.json",
        lambda handle: handle.write(backups.sign_manifest(manifest)),
    )
    return Backup(backup_id, store, manifest)


def daily_backups(store: Store) -> dict[dt.date, Backup]:
    made = {}
    day = FIRST
    with store.locked():
        while day <= NOW.date():
            created = dt.datetime.combine(day, dt.time(3), tzinfo=dt.UTC)
            made[day] = fake_backup(store, created)
            day += dt.timedelta(days=1)
    return made


def dates(found: list[Backup], made: dict[dt.date, Backup]) -> set[dt.date]:
    by_id = {backup.id: day for day, backup in made.items()}
    return {by_id[backup.id] for backup in found}


def tamper(backup: Backup) -> None:
    """Edit the manifest's date (as one would to make a backup look due)."""
    content = json.loads(backup.store.read_bytes(backup.manifest_name))
    content["manifest"]["created_at"] = "2020-01-01T00:00:00+00:00"
    backup.store.write(backup.manifest_name, lambda h: h.write(json.dumps(content).encode()))


@pytest.fixture(params=["directory", "s3"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "directory":
        return backups.LocalStore(tmp_path / "backups")
    request.getfixturevalue("s3")
    return backups.database_store()


D = dt.date
DAILY = {D(2026, 11, 28) + dt.timedelta(days=n) for n in range(7)}  # younger than 7 days
WEEKLY = {D(2026, 10, 18), D(2026, 10, 25), D(2026, 11, 1), D(2026, 11, 8), D(2026, 11, 15),
          D(2026, 11, 22)}  # fmt: skip  # the Sundays ending ISO weeks 42 to 47 (48, 49: daily)
# The last day of each month of 2026 but December and November (whose newest are daily ones).
MONTHLY = {D(2026, month + 1, 1) - dt.timedelta(days=1) for month in range(1, 11)}


@pytest.mark.django_db
def test_tiers_keep_exactly_the_daily_weekly_and_monthly_backups(any_store: Store) -> None:
    made = daily_backups(any_store)
    policy = Policy(days=365, daily_days=7, weekly_weeks=8, monthly_months=12)

    dry = backups.prune(any_store, policy, now=NOW, dry_run=True)
    assert len(any_store.backups()) == len(made) == 400, "a dry run deletes nothing"
    result = backups.prune(any_store, policy, now=NOW)
    assert [b.id for b in dry.deleted] == [b.id for b in result.deleted]

    kept = DAILY | WEEKLY | MONTHLY
    assert len(kept) == 23
    assert dates(any_store.backups(), made) == kept
    assert dates(result.kept, made) == kept
    assert dates(result.deleted, made) == set(made) - kept
    assert result.unsure == []
    # Deleted means gone: neither manifest nor payload is left.
    names = set(any_store.objects())
    for backup in result.deleted:
        assert backup.manifest_name not in names and backup.payload_name not in names


@pytest.mark.django_db
def test_no_tier_keeps_anything_beyond_the_retention_days(tmp_path: Path) -> None:
    store = backups.LocalStore(tmp_path / "backups")
    made = daily_backups(store)
    # Monthly for two years, but retention is 365 days: October and November 2025 go.
    policy = Policy(days=365, daily_days=7, weekly_weeks=8, monthly_months=24)
    backups.prune(store, policy, now=NOW)
    assert dates(store.backups(), made) == DAILY | WEEKLY | MONTHLY | {D(2025, 12, 31)}
    oldest = min(backup.created_at for backup in store.backups() if backup.created_at)
    assert NOW - oldest <= dt.timedelta(days=365)


@pytest.mark.django_db
def test_without_tiers_every_backup_of_the_retention_days_is_kept(tmp_path: Path) -> None:
    store = backups.LocalStore(tmp_path / "backups")
    made = daily_backups(store)
    result = backups.prune(store, Policy(days=365), now=NOW)
    # 2025-12-04 03:00 is 365 days and 9 hours old; 2025-12-05 03:00, 364 days and 9 hours.
    assert dates(result.deleted, made) == {day for day in made if day <= D(2025, 12, 4)}
    assert min(dates(store.backups(), made)) == D(2025, 12, 5)
    assert len(store.backups()) == 365


@pytest.mark.django_db
def test_a_tampered_manifest_is_never_deleted_nor_counted_as_the_newest(tmp_path: Path) -> None:
    store = backups.LocalStore(tmp_path / "backups")
    made = daily_backups(store)
    tamper(made[D(2026, 10, 31)])  # October's newest: its date can no longer be trusted
    tamper(made[D(2025, 11, 2)])  # an old one: looks due, but only by a date nobody signed
    policy = Policy(days=365, daily_days=7, weekly_weeks=8, monthly_months=12)
    result = backups.prune(store, policy, now=NOW)
    assert {b.id for b in result.unsure} == {made[D(2026, 10, 31)].id, made[D(2025, 11, 2)].id}
    left = {b.id for b in store.backups()}
    assert made[D(2026, 10, 31)].id in left and made[D(2025, 11, 2)].id in left
    # October's newest trusted backup is now the 30th.
    kept = dates([b for b in store.backups() if b.problem is None], made)
    assert kept == (DAILY | WEEKLY | MONTHLY | {D(2026, 10, 30)}) - {D(2026, 10, 31)}


@pytest.mark.django_db
def test_the_keystore_policy_is_its_own_short_retention(settings: Any) -> None:
    settings.KEYSTORE_BACKUP_RETENTION_DAYS = 30
    settings.BACKUP_KEEP_DAILY_DAYS = 7  # the database's tiers do not apply to the keystore
    assert backups.retention.keystore_policy() == Policy(days=30)
    assert backups.retention.database_policy().daily_days == 7
    assert FORMAT != backups.keystore_store().manifest_format
