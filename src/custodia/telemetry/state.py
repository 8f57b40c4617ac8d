"""Gauges of the platform's state, computed when /metrics is scraped.

The database is read as the app role for procrastinate's tables and the sign-in pauses, as the
owner role for the audit checkpoints (what `audit verify` reads). The slow ones (the backup store
lists and checks every manifest, the keystore is one file per business) are kept for
SLOW_SECONDS in each process. Every value is a count or an age: no label names a business.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from django.conf import settings
from django.db import connections
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from custodia.accounts import throttle
from custodia.crypto import keystore
from custodia.crypto.errors import KeyUnavailable
from custodia.lifecycle import backups, pgbackrest
from custodia.lifecycle.backups import BackupError

logger = logging.getLogger(__name__)

SLOW_SECONDS = 60.0
JOB_STATES = ("todo", "doing", "failed")
# NaN is Prometheus's "no value": no backup, no drill, no checkpoint, no worker yet.
NOTHING = float("nan")
T = TypeVar("T")


def _age(at: dt.datetime | None, now: dt.datetime) -> float:
    return NOTHING if at is None else max(0.0, (now - at).total_seconds())


def job_counts() -> dict[str, int]:
    """procrastinate's jobs waiting, running and failed (successful ones are deleted)."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT status::text, count(*) FROM procrastinate_jobs"
            " WHERE status IN ('todo', 'doing', 'failed') GROUP BY status"
        )
        found = {status: int(count) for status, count in cursor.fetchall()}
    return {state: found.get(state, 0) for state in JOB_STATES}


def last_worker_heartbeat() -> dt.datetime | None:
    """The newest heartbeat of any running job worker (procrastinate_workers)."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT max(last_heartbeat) FROM procrastinate_workers")
        row = cursor.fetchone()
    return row[0] if row else None


def locked_sign_ins() -> int:
    """Accounts (or codes) whose sign-in is paused right now (accounts/throttle.py)."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {throttle.TABLE}"  # noqa: S608 (a model's table)
            " WHERE locked_until > statement_timestamp()"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def oldest_chain_verification() -> dt.datetime | None:
    """The newest signed checkpoint of the chain verified longest ago: a checkpoint is signed
    only over a chain that verified (audit/chain.py: make_checkpoint)."""
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT min(newest) FROM (SELECT max(made_at) AS newest FROM audit_checkpoint"
            " GROUP BY tenant_id) AS chains"
        )
        row = cursor.fetchone()
    return row[0] if row else None


def newest_backup() -> dt.datetime | None:
    """When the newest sound database backup was made, by the configured engine."""
    if settings.BACKUP_ENGINE == "pgbackrest":
        listed = pgbackrest.list_backups(pgbackrest.Setup.from_settings())
        sound = [item for item in listed if item.problem is None]
        if not sound:
            return None
        return dt.datetime.fromtimestamp(int(sound[-1].info["timestamp"]["stop"]), dt.UTC)
    try:
        return backups.database_store().newest().created_at
    except BackupError:
        return None


@dataclass(frozen=True)
class KeyAges:
    oldest: dt.datetime | None
    overdue: int


def data_key_ages(now: dt.datetime) -> KeyAges:
    """The oldest primary data key in the keystore, and how many are past KEY_ROTATION_DAYS."""
    limit = now - dt.timedelta(days=settings.KEY_ROTATION_DAYS)
    created = []
    for business in keystore.business_ids():
        try:
            created.append(dt.datetime.fromisoformat(keystore.read(business).primary.created_at))
        except (KeyUnavailable, StopIteration, ValueError):
            continue
    return KeyAges(min(created, default=None), sum(1 for at in created if at < limit))


@dataclass(frozen=True)
class Slow:
    backup: dt.datetime | None
    drill: dt.datetime | None
    drill_ok: float
    keys: KeyAges


_slow: tuple[float, Slow] | None = None
_slow_lock = threading.Lock()


def _guarded(what: str, read: Callable[[], T], fallback: T) -> tuple[T, bool]:
    try:
        return read(), True
    except Exception as exc:  # noqa: BLE001 (a metric that cannot be read is absent, not a 500)
        logger.warning("metrics: %s could not be read (%s)", what, type(exc).__name__)
        return fallback, False


def slow_state(now: dt.datetime) -> Slow:
    """The backup, drill and key gauges, read at most once per SLOW_SECONDS per process."""
    global _slow
    with _slow_lock:
        if _slow is not None and time.monotonic() - _slow[0] < SLOW_SECONDS:
            return _slow[1]
        backup, _ = _guarded("the newest backup", newest_backup, None)
        drill, _ = _guarded("the restore drill log", backups.latest_drill, None)
        keys, _ = _guarded("the keystore", lambda: data_key_ages(now), KeyAges(None, 0))
        drill_ok = NOTHING if drill is None else float(drill.ok)
        state = Slow(backup, drill.at if drill else None, drill_ok, keys)
        _slow = (time.monotonic(), state)
        return state


def forget_slow_state() -> None:
    """Read the slow gauges afresh at the next scrape (tests, after changing what they read)."""
    global _slow
    with _slow_lock:
        _slow = None


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class PlatformState(Collector):
    """Every state gauge, computed at collection time."""

    def collect(self) -> Iterator[Metric]:
        now = dt.datetime.now(dt.UTC)
        empty: dict[str, int] = {}
        jobs, _ = _guarded("the job queue", job_counts, empty)
        queue = GaugeMetricFamily(
            "custodia_jobs", "Background jobs by state (todo, doing, failed).", labels=["state"]
        )
        for state in JOB_STATES:
            queue.add_metric([state], jobs.get(state, NOTHING))
        yield queue
        heartbeat, _ = _guarded("the worker heartbeats", last_worker_heartbeat, None)
        yield _gauge(
            "custodia_worker_heartbeat_age_seconds",
            "Seconds since the newest heartbeat of any job worker.",
            _age(heartbeat, now),
        )
        locked, known = _guarded("the sign-in pauses", locked_sign_ins, 0)
        yield _gauge(
            "custodia_sign_in_paused",
            "Accounts whose sign-in is paused after repeated failures, now.",
            locked if known else NOTHING,
        )
        verified, _ = _guarded("the audit checkpoints", oldest_chain_verification, None)
        yield _gauge(
            "custodia_audit_verification_age_seconds",
            "Seconds since the audit chain verified longest ago was last verified and signed.",
            _age(verified, now),
        )
        slow = slow_state(now)
        yield _gauge(
            "custodia_backup_age_seconds",
            "Seconds since the newest sound database backup was made.",
            _age(slow.backup, now),
        )
        yield _gauge(
            "custodia_restore_drill_age_seconds",
            "Seconds since the newest restore drill ran.",
            _age(slow.drill, now),
        )
        yield _gauge(
            "custodia_restore_drill_ok",
            "1 if the newest restore drill passed, 0 if it failed.",
            slow.drill_ok,
        )
        yield _gauge(
            "custodia_data_key_oldest_age_seconds",
            "Seconds since the oldest primary business data key was made.",
            _age(slow.keys.oldest, now),
        )
        yield _gauge(
            "custodia_data_keys_rotation_overdue",
            "Business data keys older than CUSTODIA_KEY_ROTATION_DAYS.",
            slow.keys.overdue,
        )
