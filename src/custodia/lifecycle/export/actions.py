"""Writes for exports: start one, build it (the job's body), hand it out once, let it expire.

Starting and downloading are audit events (bulk reads, purpose "export"); the rows read while
building record themselves (access.py). The other owners of the business are told by email
that an export was started, without any customer data in it.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from custodia.accounts import adapter as mail
from custodia.accounts.links import public_url
from custodia.accounts.stepup import ServerConsole, require_step_up
from custodia.clients.models import Client
from custodia.core.actor import Actor, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.permissions import Permission, Role
from custodia.lifecycle.export import access, storage
from custodia.lifecycle.export.archive import Built, ExportError, Progress, write_archive
from custodia.lifecycle.export.models import Export, ExportStatus
from custodia.tenancy.models import Membership
from custodia.tenancy.zones import zone_for

logger = logging.getLogger(__name__)

# One export at a time per owner: a second start while one is being built is refused.
RUNNING_FOR_AT_MOST = dt.timedelta(hours=2)


class ExportGone(Exception):
    """The export was downloaded already, expired or failed: its file no longer exists."""

    def __init__(self, export: Export) -> None:
        self.export = export
        super().__init__(gone_message(export))


def gone_message(export: Export) -> str:
    if export.status == ExportStatus.DOWNLOADED:
        return "This export was downloaded already; its file is deleted. Start a new export."
    if export.status == ExportStatus.FAILED:
        return "This export failed; nothing was stored. Start a new export."
    return "This export expired unused; its file is deleted. Start a new export."


def _door(actor: Actor) -> str:
    if actor.scopes is not None:
        return "token"
    if isinstance(actor.authentication, ServerConsole):
        return "console"
    return "session"


def do_start_export(*, actor: Actor) -> Export:
    """An owner starts a whole-business export: a fresh step-up in a session (the console has
    it), or an API token that names the export scope (docs/export.md, "Tokens and step-up")."""
    require_active(actor)
    actor.require(Permission.BUSINESS_EXPORT)
    if actor.role != Role.OWNER:
        raise PermissionDenied("Only an owner can export the business's data.")
    if actor.scopes is None:
        require_step_up(actor)
    now = timezone.now()
    with transaction.atomic():
        # Two starts at once (a double click, two tabs) take turns here, so the second sees the
        # first's export and is refused.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                [f"export-start:{actor.membership.pk}"],
            )
        running = access.list_own_exports(actor).filter(
            status=ExportStatus.RUNNING, created_at__gt=now - RUNNING_FOR_AT_MOST
        )
        if running.exists():
            raise ValidationError(
                "An export you started is still being made; wait for it to finish."
            )
        export = Export.objects.create(
            tenant_id=actor.tenant_id,
            started_by=actor.membership,
            expires_at=now + dt.timedelta(hours=settings.EXPORT_TTL_HOURS),
            file_key=storage.new_file_key(),
        )
        record(
            AuditAction.EXPORT_START,
            actor=actor,
            target=export,
            purpose=access.PURPOSE,
            detail={"kind": "business", "via": _door(actor)},
        )
        _tell_other_owners(actor, export)
    logger.info("export started tenant=%s export=%s", actor.tenant_id, export.pk)
    return export


def _tell_other_owners(actor: Actor, export: Export) -> None:
    """A notice to each other active owner: who started it and until when it can be fetched."""
    owners = (
        Membership.objects.filter(tenant_id=actor.tenant_id, role=Role.OWNER, is_active=True)
        .exclude(user_id=actor.user.pk)
        .select_related("user")
    )
    business = actor.business
    for owner in owners:
        with timezone.override(zone_for(business)):  # a console's actor sets no zone
            body = render_to_string(
                "export/email/started.txt",
                {
                    "business": business,
                    "starter": actor.user,
                    "export": export,
                    "hours": settings.EXPORT_TTL_HOURS,
                    "audit_url": public_url(reverse("audit_list")),
                },
            )
        message = EmailMessage(
            f"An export of {business.name}'s data was started",
            body,
            settings.DEFAULT_FROM_EMAIL,
            [owner.user.email],
        )
        if isinstance(actor.authentication, ServerConsole):
            # A command ends right after its commit: a background sender would die with it.
            transaction.on_commit(functools.partial(mail.send_quietly, message))
        else:
            mail.send_after_commit(message)


def do_build_export(export_id: object, *, actor: Actor, progress: Progress | None = None) -> Export:
    """Build the export the actor started (the job's body, acting as the starter's membership):
    the archive, encrypted into the store; the export is then ready, or failed (nothing kept)."""
    require_active(actor)
    export = access.access_export_by_id(actor, export_id)
    if export.status != ExportStatus.RUNNING:
        raise ExportError(f"Export {export.pk} is {export.status}, not being made.")
    try:
        with transaction.atomic(), storage.scratch_file() as plain:
            built = write_business_archive(actor, plain, progress=progress)
            digest = _sha256(plain)
            storage.store(export, plain)
            export.status = ExportStatus.READY
            export.finished_at = timezone.now()
            export.rows = built.rows
            export.size = plain.seek(0, 2)
            export.sha256 = digest
            export.save(update_fields=["status", "finished_at", "rows", "size", "sha256"])
    except Exception as exc:
        # Ids and the error's kind only: a message may quote a value.
        logger.error(
            "export failed tenant=%s export=%s (%s)", actor.tenant_id, export.pk, type(exc).__name__
        )
        storage.delete_stored(export)
        export.status = ExportStatus.FAILED
        export.finished_at = timezone.now()
        export.save(update_fields=["status", "finished_at"])
    return export


def write_business_archive(actor: Actor, out: IO[bytes], *, progress: Progress | None) -> Built:
    """The whole business's archive into `out` (the reads record themselves)."""
    business = actor.business
    return write_archive(
        out,
        title=f"Export of {business.name}",
        about={"kind": "business", "business_id": str(business.pk), "business": business.slug},
        sources=access.business_sources(actor),
        progress=progress,
    )


def _sha256(handle: IO[bytes]) -> str:
    handle.seek(0)
    digest = hashlib.sha256()
    while chunk := handle.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Download:
    export: Export
    file: IO[bytes]
    size: int

    @property
    def filename(self) -> str:
        day = self.export.created_at.strftime("%Y%m%d")
        return f"{self.export.tenant.slug}-export-{day}.zip"


def settle(export: Export, *, actor: Actor) -> Export:
    """An export past its time is marked expired and its file deleted (lazily, when looked at;
    `storage.sweep` deletes files no one looks at). So is one that holds a client erased since
    it was started (lifecycle/erasure.py): their data is not handed out after their erasure."""
    require_active(actor)
    if export.status == ExportStatus.READY and (
        export.expires_at <= timezone.now() or _erasure_since(export)
    ):
        Export.objects.filter(pk=export.pk, status=ExportStatus.READY).update(
            status=ExportStatus.EXPIRED
        )
        export.status = ExportStatus.EXPIRED
        storage.delete_stored(export)
    return export


def _erasure_since(export: Export) -> bool:
    return Client.objects.filter(
        tenant_id=export.tenant_id, erased_at__gte=export.created_at
    ).exists()


def do_download_export(export_id: object, *, actor: Actor) -> Download:
    """The export's archive, once, to the owner who started it, in their browser session with a
    fresh step-up; afterwards (and after expiry) ExportGone, and the file is deleted."""
    require_active(actor)
    export = access.access_export_by_id(actor, export_id)
    if actor.authentication is None:
        raise PermissionDenied(
            "An export is downloaded only in the browser session of the owner who started it."
        )
    settle(export, actor=actor)
    if export.status != ExportStatus.READY:
        raise ExportGone(export)
    require_step_up(actor)
    try:
        handle = storage.open_decrypted(export)
    except ExportError:
        # Its file is missing or does not decrypt (altered on disk): nothing to hand out, ever.
        logger.error("export file unreadable tenant=%s export=%s", actor.tenant_id, export.pk)
        Export.objects.filter(pk=export.pk).update(status=ExportStatus.FAILED)
        export.status = ExportStatus.FAILED
        storage.delete_stored(export)
        raise ExportGone(export) from None
    now = timezone.now()
    claimed = Export.objects.filter(
        pk=export.pk, status=ExportStatus.READY, downloaded_at__isnull=True, expires_at__gt=now
    ).update(status=ExportStatus.DOWNLOADED, downloaded_at=now)
    if not claimed:
        handle.close()
        export.refresh_from_db(fields=["status", "downloaded_at"])
        raise ExportGone(export)
    export.status, export.downloaded_at = ExportStatus.DOWNLOADED, now
    record(
        AuditAction.EXPORT_DOWNLOAD,
        actor=actor,
        target=export,
        purpose=access.PURPOSE,
        detail={"count": sum(export.rows.values()), "rows": export.rows, "size": export.size},
    )
    # Single use: the stored file goes once the download is committed.
    transaction.on_commit(lambda: storage.delete_stored(export))
    return Download(export, handle, export.size)


def do_export_to_file(*, actor: Actor, out: IO[bytes], progress: Progress | None = None) -> Built:
    """An operator's export at the console: started (audited, owners told) and written straight
    to `out`, never stored; it counts as downloaded."""
    export = do_start_export(actor=actor)
    built = write_business_archive(actor, out, progress=progress)
    now = timezone.now()
    export.status, export.finished_at, export.downloaded_at = ExportStatus.DOWNLOADED, now, now
    export.rows = built.rows
    export.save(update_fields=["status", "finished_at", "downloaded_at", "rows"])
    record(
        AuditAction.EXPORT_DOWNLOAD,
        actor=actor,
        target=export,
        purpose=access.PURPOSE,
        detail={"count": sum(built.rows.values()), "rows": built.rows, "via": "console"},
    )
    return built


def own_data_archive(actor: Actor) -> IO[bytes]:
    """A client's own data, built at once into an anonymous temporary file (at position 0)."""
    sources = access.own_data_sources(actor)
    handle = storage.scratch_file()
    try:
        write_archive(
            handle,
            title=f"Your data with {actor.business.name}",
            about={
                "kind": "client",
                "business_id": str(actor.tenant_id),
                "client_id": str(actor.membership.client_id),
            },
            sources=sources,
        )
    except BaseException:
        handle.close()
        raise
    handle.seek(0)
    return handle
