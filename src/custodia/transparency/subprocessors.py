"""The subprocessor list, computed from this installation's configuration, and its change
notices to owners (docs/transparency.md).

Each entry says what is used (a host name, never a credential, bucket key or DSN secret), what
for and which categories of data reach it. `announce_changes` (the daily periodic task,
transparency/tasks.py) compares the list with the one last recorded: on a change it emails every
active owner once, saying what changed, and records the new list, in one transaction on the
operator's connection, so a run that fails to send records nothing and the next run tries again.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import get_connection, send_mail
from django.db import transaction

from custodia.core.actor import Actor
from custodia.core.permissions import Role
from custodia.jobs.registry import for_each_business
from custodia.tenancy.models import Membership
from custodia.transparency.models import SubprocessorList

logger = logging.getLogger(__name__)

USING = "owner"
THIS_SERVER = "this installation's own servers (no third party)"


@dataclass(frozen=True)
class Subprocessor:
    key: str
    service: str
    where: str
    purpose: str
    data: str
    third_party: bool


def _host(url: str) -> str:
    return urlsplit(url).hostname or ""


def sentry_dsn() -> str:
    """The Sentry DSN: the CUSTODIA_SENTRY_DSN setting when the installation has one, else the
    environment variable itself (the setting is another change's; until it lands, the same
    variable is read here)."""
    return str(getattr(settings, "SENTRY_DSN", None) or os.environ.get("CUSTODIA_SENTRY_DSN", ""))


def current() -> list[Subprocessor]:
    """Every service that processes this installation's data, from the configuration."""
    found = []
    if settings.EMAIL_HOST:
        found.append(
            Subprocessor(
                "smtp",
                "Email delivery (SMTP relay)",
                settings.EMAIL_HOST,
                "Sends account and business email: sign-in codes, invitations, visit notices,"
                " receipts, security notices",
                "Recipients' names and email addresses, the messages' contents (never card"
                " numbers, passwords or door codes)",
                True,
            )
        )
    else:
        found.append(
            Subprocessor(
                "smtp",
                "Email (written to local files: no mail provider configured)",
                THIS_SERVER,
                "Keeps outgoing email in files for development",
                "Recipients' names and email addresses, the messages' contents",
                False,
            )
        )
    if settings.KEK_PROVIDER == "aws-kms":
        where = _host(settings.KMS_ENDPOINT_URL) or (
            f"kms.{settings.KMS_REGION}.amazonaws.com" if settings.KMS_REGION else "AWS KMS"
        )
        found.append(
            Subprocessor(
                "kms",
                "Key management (AWS Key Management Service)",
                where,
                "Wraps and unwraps each business's data keys with the master key",
                "Wrapped data keys only (no customer data)",
                True,
            )
        )
    else:
        source = "a key file" if settings.KEK_PROVIDER == "file" else "the environment"
        found.append(
            Subprocessor(
                "kms",
                f"Key management (master key from {source})",
                THIS_SERVER,
                "Wraps and unwraps each business's data keys with the master key",
                "Wrapped data keys only (no customer data)",
                False,
            )
        )
    if settings.VAULT_GATEWAY == "stripe":
        found.append(
            Subprocessor(
                "payments",
                "Card payments (Stripe)",
                _host(settings.STRIPE_API_BASE) or "api.stripe.com",
                "Authorises, captures and refunds card payments for the card vault",
                "Card numbers and expiry (from the vault only), amounts, currency",
                True,
            )
        )
    else:
        found.append(
            Subprocessor(
                "payments",
                f"Card payments ({settings.VAULT_GATEWAY} gateway inside the card vault)",
                THIS_SERVER,
                "Simulates card payments: no money moves",
                "Test card numbers, amounts",
                False,
            )
        )
    if settings.BACKUP_S3_BUCKET:
        where = _host(settings.BACKUP_S3_ENDPOINT_URL) or (
            f"s3.{settings.BACKUP_S3_REGION}.amazonaws.com"
            if settings.BACKUP_S3_REGION
            else "Amazon S3"
        )
        found.append(
            Subprocessor(
                "backups",
                "Backup storage (S3-compatible object storage)",
                where,
                "Stores encrypted database and key-store backups",
                "Every record, encrypted before upload (the storage cannot read it)",
                True,
            )
        )
    else:
        found.append(
            Subprocessor(
                "backups",
                "Backup storage (a directory)",
                THIS_SERVER,
                "Stores encrypted database and key-store backups",
                "Every record, encrypted",
                False,
            )
        )
    dsn = sentry_dsn()
    if dsn:
        found.append(
            Subprocessor(
                "errors",
                "Error reports (Sentry)",
                _host(dsn) or "Sentry",
                "Receives reports of software errors",
                "Technical details of errors, with customer data removed before sending",
                True,
            )
        )
    return found


def _described(entries: list[dict[str, object]]) -> dict[str, str]:
    return {str(entry["key"]): f"{entry['service']} at {entry['where']}" for entry in entries}


def changes(before: list[dict[str, object]], after: list[dict[str, object]]) -> list[str]:
    """What changed between two recorded lists, one line each (empty: nothing)."""
    old, new = _described(before), _described(after)
    lines = []
    for key in sorted(old.keys() | new.keys()):
        if key not in old:
            lines.append(f"Added: {new[key]}")
        elif key not in new:
            lines.append(f"Removed: {old[key]}")
        elif old[key] != new[key]:
            lines.append(f"Changed: {old[key]} -> {new[key]}")
    return lines


def active_owner_emails() -> list[str]:
    """The email address of every active owner of every business, each address once."""
    addresses: set[str] = set()

    def collect(actor: Actor) -> None:
        owners = Membership.objects.filter(
            tenant_id=actor.tenant_id, role=Role.OWNER, is_active=True, user__is_active=True
        ).values_list("user__email", flat=True)
        addresses.update(address.lower() for address in owners if address)

    for_each_business("subprocessor-notices", collect)
    return sorted(addresses)


def announce_changes() -> int:
    """Compare the list with the one last recorded; on a change, email every active owner
    once and record the new list. Returns how many owners were emailed. The first run records
    the list without a notice (there is nothing it changed from)."""
    entries = [asdict(entry) for entry in current()]
    with transaction.atomic(using=USING):
        last = SubprocessorList.objects.using(USING).select_for_update().order_by("-id").first()
        if last is not None and last.entries == entries:
            return 0
        SubprocessorList.objects.using(USING).create(entries=entries)
        if last is None:
            return 0
        lines = changes(last.entries, entries)
        recipients = active_owner_emails()
        body = (
            "The services that process data for this Custodia installation have changed:\n\n"
            + "\n".join(f"- {line}" for line in lines)
            + f"\n\nThe full list: {settings.PUBLIC_URL}/security/subprocessors/\n"
        )
        connection = get_connection()
        for address in recipients:
            send_mail(
                "[Custodia] Subprocessor list changed",
                body,
                settings.DEFAULT_FROM_EMAIL,
                [address],
                connection=connection,
            )
    logger.info("subprocessor list changed: %d owners told", len(recipients))
    return len(recipients)
