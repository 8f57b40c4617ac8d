"""One retention policy: what Custodia keeps, for how long, and the daily run that deletes it.

`policy()` is the table: owners read it on their retention page, everyone on `/security/`, and
`enforce()` (run daily by the scheduler, or `custodia retention run`) carries it out, one rule at
a time, so a rule that fails (a broken audit chain, an unreachable backup store) is reported and
never stops the others. Each rule deletes only what is past its time: nothing newer.

Maintenance runs on the owner connection (`audit.chain.USING`), as the audit purge always has:
the tables below are either platform-wide (sessions, sign-in counters, security events: no
business context exists for them) or reached through policies written for that role.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.management.base import CommandError
from django.db import DatabaseError, transaction

from custodia.accounts.models import LoginThrottle, SecurityEvent
from custodia.audit import chain
from custodia.cache.backend import purge_expired_entries
from custodia.core.actor import Actor
from custodia.jobs.actions import do_forget_finished_jobs, forget_finished_queue_entries
from custodia.jobs.registry import for_each_business
from custodia.lifecycle import backups
from custodia.lifecycle.export import storage as export_storage
from custodia.tenancy.actions import do_erase_spent_invitation_addresses
from custodia.tenancy.closing import do_purge_closed_businesses
from custodia.webhooks.attempts import do_forget_old_deliveries

logger = logging.getLogger(__name__)

USING = chain.USING
SECURITY_EVENT_DAYS = 365
JOB_DAYS = 30
DEV_MAIL_DAYS = 14
DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Rule:
    """One kind of record: what it is, how long it is kept, and what deletes it when."""

    key: str
    what: str
    kept: str
    enforce: Callable[[dt.datetime], int]


@dataclass(frozen=True)
class Outcome:
    key: str
    removed: int
    error: str | None = None


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


# --- What each rule deletes (each returns how many records went) ------------------------------


def _audit_events(now: dt.datetime) -> int:
    removed, broken = 0, 0
    for tenant_id in chain.chains():
        try:
            removed += chain.purge_chain(tenant_id, now=now).events
        except chain.ChainBroken:
            broken += 1  # kept whole: evidence is never deleted on a chain that does not verify
    if broken:
        raise CommandError(
            f"{broken} audit chain(s) do not verify and were kept whole ({removed} events purged"
            " from the others); run `custodia audit verify`"
        )
    return removed


def _backups(now: dt.datetime) -> int:
    result = backups.prune(backups.database_store(), now=now)
    if result.unsure:
        logger.warning(
            "retention: %d backup(s) with an unverifiable manifest kept", len(result.unsure)
        )
    return len(result.deleted)


def _keystore_backups(now: dt.datetime) -> int:
    policy = backups.retention.keystore_policy()
    result = backups.prune(backups.keystore_store(), policy, now=now)
    if result.unsure:
        logger.warning(
            "retention: %d keystore backup(s) with an unverifiable manifest kept",
            len(result.unsure),
        )
    return len(result.deleted)


def _exports(now: dt.datetime) -> int:
    # A file past its time is useless whatever its row says (lifecycle/export/storage.py); an
    # export looked at after its expiry is marked expired and its file deleted there and then.
    return export_storage.sweep(now)


def _sessions(now: dt.datetime) -> int:
    with transaction.atomic(using=USING):
        expired, _ = Session.objects.using(USING).filter(expire_date__lte=now).delete()
        # The session list's row of a session that has ended (signed out, expired, revoked).
        live = Session.objects.using(USING).values("session_key")
        listed, _ = UserSession.objects.using(USING).exclude(session_key__in=live).delete()
    return expired + listed


def _login_throttles(now: dt.datetime) -> int:
    # A day without failures ends a series (LOGIN_LOCKOUT_FORGET_SECONDS): past that, and not
    # paused now, a counter decides nothing and only says that someone tried a name.
    forget = now - dt.timedelta(seconds=settings.LOGIN_LOCKOUT_FORGET_SECONDS)
    stale = LoginThrottle.objects.using(USING).filter(last_failure_at__lte=forget)
    deleted, _ = stale.exclude(locked_until__gt=now).delete()
    return deleted


def _security_events(now: dt.datetime) -> int:
    cutoff = now - dt.timedelta(days=SECURITY_EVENT_DAYS)
    deleted, _ = SecurityEvent.objects.using(USING).filter(at__lte=cutoff).delete()
    return deleted


def _invitation_addresses(now: dt.datetime) -> int:
    return do_erase_spent_invitation_addresses(using=USING)


def _cache_entries(now: dt.datetime) -> int:
    return purge_expired_entries()


def _closed_businesses(now: dt.datetime) -> int:
    # As the purge's system actor inside each business (tenancy/closing.py), not the owner
    # connection: its rows are deleted under that business's own row-level security.
    return len(do_purge_closed_businesses(now))


def _jobs(now: dt.datetime) -> int:
    before = now - dt.timedelta(days=JOB_DAYS)
    removed = 0

    def forget(actor: Actor) -> None:
        nonlocal removed
        removed += do_forget_finished_jobs(before, actor=actor)

    _, failed = for_each_business("retention", forget)
    forget_finished_queue_entries(before)
    if failed:
        raise CommandError(f"finished jobs of {failed} business(es) could not be deleted")
    return removed


def _webhook_deliveries(now: dt.datetime) -> int:
    before = now - dt.timedelta(days=settings.WEBHOOKS_DELIVERY_RETENTION_DAYS)
    removed = 0

    def forget(actor: Actor) -> None:
        nonlocal removed
        removed += do_forget_old_deliveries(before, actor=actor)

    _, failed = for_each_business("retention", forget)
    if failed:
        raise CommandError(f"webhook deliveries of {failed} business(es) could not be deleted")
    return removed


def _development_mail(now: dt.datetime) -> int:
    if settings.EMAIL_BACKEND != "django.core.mail.backends.filebased.EmailBackend":
        return 0
    directory = Path(settings.EMAIL_FILE_PATH)
    if not directory.is_dir():
        return 0
    cutoff = (now - dt.timedelta(days=DEV_MAIL_DAYS)).timestamp()
    removed = 0
    for path in directory.iterdir():
        if path.is_file() and path.stat().st_mtime <= cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


# --- The table --------------------------------------------------------------------------------


def policy() -> list[Rule]:
    """The retention policy with this installation's settings, in the order it is enforced."""
    session_days = settings.SESSION_COOKIE_AGE // 86400
    forget_hours = settings.LOGIN_LOCKOUT_FORGET_SECONDS // 3600
    return [
        Rule(
            "audit",
            "Audit trail events (reads and changes of customer data, sign-ins, settings)",
            f"{_days(settings.AUDIT_RETENTION_DAYS)}, then deleted after a signed checkpoint;"
            " never on a chain that does not verify",
            _audit_events,
        ),
        Rule(
            "backups",
            "Encrypted database backups",
            f"{_days(settings.BACKUP_RETENTION_DAYS)}, then deleted"
            + (
                f" (within that, {backups.retention.database_policy().tiers()})"
                if backups.retention.database_policy().tiered
                else ""
            )
            + "; never one whose signed manifest does not verify",
            _backups,
        ),
        Rule(
            "keystore-backups",
            "Backups of the keystore (the wrapped data keys of every business)",
            f"{_days(settings.KEYSTORE_BACKUP_RETENTION_DAYS)}, then deleted: the data of a"
            " deleted business is unreadable everywhere, backups included,"
            f" {_days(backups.unreadable_everywhere_days())} after deletion",
            _keystore_backups,
        ),
        Rule(
            "exports",
            "Whole-business exports waiting for their one download (kept encrypted)",
            f"until downloaded once, or {settings.EXPORT_TTL_HOURS} hours, then deleted",
            _exports,
        ),
        Rule(
            "sessions",
            "Sign-in sessions and their entries in the session list",
            f"until they end (signed out, revoked, idle, or at most {_days(session_days)}),"
            " then deleted",
            _sessions,
        ),
        Rule(
            "login-throttles",
            "Failed sign-in counters (kept under a keyed hash of the email address)",
            f"{forget_hours} hours after the last failed attempt, unless sign-in is paused",
            _login_throttles,
        ),
        Rule(
            "security-events",
            "Account security events (sign-ins, password and two-factor changes, pauses)",
            f"{_days(SECURITY_EVENT_DAYS)}, then deleted",
            _security_events,
        ),
        Rule(
            "invitation-addresses",
            "Email addresses of invitations",
            f"until accepted, revoked or expired (at most {settings.INVITATION_TTL_HOURS} hours),"
            " then erased",
            _invitation_addresses,
        ),
        Rule(
            "closed-businesses",
            "Businesses their owners closed (read-only meanwhile; an owner can reopen them)",
            f"{_days(settings.CLOSED_BUSINESS_GRACE_DAYS)} after closing, then every record"
            " deleted and the encryption keys destroyed; only anonymous counts are kept",
            _closed_businesses,
        ),
        Rule(
            "jobs",
            "Background jobs' status pages (what ran, progress, a safe error message)",
            f"{_days(JOB_DAYS)} after the job finished, then deleted with its queue entry",
            _jobs,
        ),
        Rule(
            "webhook-deliveries",
            "Webhook delivery log entries (event id and type, attempts, HTTP status; no secret)",
            f"{_days(settings.WEBHOOKS_DELIVERY_RETENTION_DAYS)} after the event, then deleted",
            _webhook_deliveries,
        ),
        Rule(
            "cache",
            "Rate-limit counters and one-time code markers",
            "until their lifetime ends (minutes to hours), then deleted",
            _cache_entries,
        ),
        Rule(
            "development-mail",
            "Mail written to files in development (no mail server configured)",
            f"{_days(DEV_MAIL_DAYS)}, then deleted",
            _development_mail,
        ),
    ]


def enforce(now: dt.datetime | None = None, *, only: set[str] | None = None) -> list[Outcome]:
    """Apply every rule (or those named in `only`); a rule that fails is reported, not fatal."""
    now = now or dt.datetime.now(dt.UTC)
    outcomes = []
    for rule in policy():
        if only is not None and rule.key not in only:
            continue
        try:
            removed = rule.enforce(now)
        except (CommandError, backups.BackupError) as exc:
            outcomes.append(Outcome(rule.key, 0, str(exc)))
        except DatabaseError as exc:
            outcomes.append(Outcome(rule.key, 0, f"database unavailable ({type(exc).__name__})"))
        else:
            outcomes.append(Outcome(rule.key, removed))
    for outcome in outcomes:
        if outcome.error:
            logger.error("retention %s: %s", outcome.key, outcome.error)
        elif outcome.removed:
            logger.info("retention %s: removed %d", outcome.key, outcome.removed)
    return outcomes
