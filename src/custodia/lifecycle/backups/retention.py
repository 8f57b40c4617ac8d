"""Retention: which backups to delete, by their signed dates, and the prune that deletes them.

Nothing older than the retention days survives; within it, optional tiers thin the backups out:
every backup younger than `daily_days`, then the newest of each ISO week for `weekly_weeks`
weeks and the newest of each calendar month (UTC) for `monthly_months` months, counting the
current week or month as the first. With no tier set, every backup within the retention days is
kept. A backup whose manifest does not verify is never deleted (nor counted as any week's or
month's newest): its date cannot be trusted, so it is kept and reported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings

from custodia.lifecycle.backups.store import Backup, Store


@dataclass(frozen=True)
class Policy:
    """How long backups are kept (days), and the optional tiers within that."""

    days: int
    daily_days: int = 0
    weekly_weeks: int = 0
    monthly_months: int = 0

    @property
    def tiered(self) -> bool:
        return bool(self.daily_days or self.weekly_weeks or self.monthly_months)

    def tiers(self) -> str:
        """The tiers in words ("" when none is set)."""
        tiers = []
        if self.daily_days:
            tiers.append(f"every backup {self.daily_days} days")
        if self.weekly_weeks:
            tiers.append(f"the newest of each week {self.weekly_weeks} weeks")
        if self.monthly_months:
            tiers.append(f"the newest of each month {self.monthly_months} months")
        return ", ".join(tiers)

    def describe(self) -> str:
        return f"{self.days} days" + (f" ({self.tiers()})" if self.tiered else "")


def database_policy() -> Policy:
    """The database backups' retention (CUSTODIA_BACKUP_RETENTION_DAYS and the tiers)."""
    return Policy(
        settings.BACKUP_RETENTION_DAYS,
        settings.BACKUP_KEEP_DAILY_DAYS,
        settings.BACKUP_KEEP_WEEKLY_WEEKS,
        settings.BACKUP_KEEP_MONTHLY_MONTHS,
    )


def keystore_policy() -> Policy:
    """The keystore backups' retention: short, no tiers (docs/keys.md)."""
    return Policy(settings.KEYSTORE_BACKUP_RETENTION_DAYS)


def _month_index(moment: dt.datetime) -> int:
    return moment.year * 12 + moment.month - 1


def due(backups: Sequence[Backup], policy: Policy, now: dt.datetime) -> set[str]:
    """The ids of the backups `policy` deletes at `now`."""
    trusted = [
        (backup, created.astimezone(dt.UTC))
        for backup in backups
        if backup.problem is None and (created := backup.created_at) is not None
    ]
    now = now.astimezone(dt.UTC)
    cutoff = now - dt.timedelta(days=policy.days)
    newest_of_week: dict[tuple[int, int], tuple[dt.datetime, str]] = {}
    newest_of_month: dict[int, tuple[dt.datetime, str]] = {}
    for backup, created in trusted:
        week = created.isocalendar()[:2]
        month = _month_index(created)
        newest_of_week[week] = max(
            newest_of_week.get(week, (created, backup.id)), (created, backup.id)
        )
        newest_of_month[month] = max(
            newest_of_month.get(month, (created, backup.id)), (created, backup.id)
        )
    this_week = dt.date.fromisocalendar(*now.isocalendar()[:2], 1)
    deleted = set()
    for backup, created in trusted:
        if created < cutoff:
            deleted.add(backup.id)
            continue
        if not policy.tiered or now - created < dt.timedelta(days=policy.daily_days):
            continue
        week_start = dt.date.fromisocalendar(*created.isocalendar()[:2], 1)
        weeks_back = (this_week - week_start).days // 7
        if weeks_back < policy.weekly_weeks and newest_of_week[created.isocalendar()[:2]][1] == (
            backup.id
        ):
            continue
        months_back = _month_index(now) - _month_index(created)
        if months_back < policy.monthly_months and newest_of_month[_month_index(created)][1] == (
            backup.id
        ):
            continue
        deleted.add(backup.id)
    return deleted


@dataclass(frozen=True)
class PruneResult:
    deleted: list[Backup]
    kept: list[Backup]
    unsure: list[Backup]  # manifests that cannot be trusted: their date is unknown


def prune(
    store: Store,
    policy: Policy | None = None,
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
) -> PruneResult:
    """Delete what `policy` (default: the database backups') says is due, and nothing else."""
    policy = policy or database_policy()
    now = now or dt.datetime.now(dt.UTC)
    deleted, kept, unsure = [], [], []
    with store.locked():
        found = store.backups()
        going = due(found, policy, now)
        for backup in found:
            if backup.problem is not None or backup.created_at is None:
                unsure.append(backup)
            elif backup.id in going:
                if not dry_run:
                    store.delete(backup)
                deleted.append(backup)
            else:
                kept.append(backup)
    return PruneResult(deleted, kept, unsure)
