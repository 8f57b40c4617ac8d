"""`custodia audit`: verify the trail (also against heads an owner kept), sign checkpoints, purge
past retention, run daily, rotate the signing key, serve as a remote signer."""

from __future__ import annotations

import argparse
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from custodia.audit import chain, heads, keys
from custodia.audit.signer import signer_server
from custodia.core.audit import AuditAction, record
from custodia.core.dbcontext import forget_ended_backends
from custodia.detection.actions import raise_platform_alert
from custodia.detection.rules import Finding
from custodia.ops.maintenance import run_round
from custodia.tenancy.access import business_id_by_slug, business_slugs
from custodia.transparency.verification import record_verification

logger = logging.getLogger(__name__)


def business_chains(slug: str | None) -> list[uuid.UUID | None]:
    """The chain of one business (by slug), or every chain with events or checkpoints."""
    if slug is None:
        return chain.chains()
    business = business_id_by_slug(slug, chain.USING)
    if business is None:
        raise CommandError(f"No business with the slug {slug!r}.")
    return [business]


def chain_names() -> dict[uuid.UUID, str]:
    return business_slugs(chain.USING)


def _record_maintenance(
    action: AuditAction, tenant_id: uuid.UUID | None, detail: dict[str, Any]
) -> None:
    """The trail's own maintenance is an event of the chain it touched (by the operator)."""
    record(action, tenant_id=tenant_id, detail=detail, using=chain.USING)


def _raise_chain_alert(tenant_id: uuid.UUID | None, problems: list[str]) -> None:
    """The platform alert `audit_chain_broken` (detection) for one chain that does not verify:
    the chain's id and the verifier's messages (event ids and hashes, never event contents)."""
    chain_name = "platform (sign-ins)" if tenant_id is None else str(tenant_id)
    raise_platform_alert(
        Finding(
            rule="audit_chain_broken",
            subject=f"audit chain {chain_name}",
            evidence={"chain": chain_name, "problems": [p[:200] for p in problems[:10]]},
        )
    )


class Command(BaseCommand):
    help = "Audit trail: verify, checkpoint, purge, or maintain (the daily checkpoints)."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True)
        verify = commands.add_parser(
            "verify", help="recompute the hash chains and check the signed checkpoints"
        )
        verify.add_argument("--business", help="only this business (slug)")
        verify.add_argument(
            "--against",
            metavar="FILE",
            type=Path,
            help="also check the business's trail against the chain heads an owner kept"
            " (the JSON file of the audit page or the weekly digest)",
        )
        checkpoint = commands.add_parser("checkpoint", help="verify, then sign the chain heads")
        checkpoint.add_argument("--business", help="only this business (slug)")
        commands.add_parser(
            "purge",
            help=f"delete events older than the retention period"
            f" ({settings.AUDIT_RETENTION_DAYS} days) after a signed checkpoint",
        )
        maintain = commands.add_parser(
            "maintain",
            help="sign a checkpoint of every chain and forget ended connections' contexts (one"
            " round; the job worker runs it at start and daily; deletions are the retention"
            " run's, `custodia retention run`)",
        )
        # Accepted for the scripts of the days when `maintain` looped: a round is all it does.
        maintain.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
        commands.add_parser(
            "rotate-signing-key",
            help="make a new checkpoint signing key; the old public key stays in the key ring",
        )
        signer = commands.add_parser("signer", help="the checkpoint signer for other hosts")
        signer_commands = signer.add_subparsers(dest="signer_command", required=True)
        serve = signer_commands.add_parser(
            "serve", help="sign checkpoints for hosts holding the shared secret (POST /sign)"
        )
        serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
        serve.add_argument("--port", type=int, default=8470, help="port to listen on")

    def handle(self, *args: Any, **options: Any) -> None:
        command = options["command"]
        if command == "verify":
            against = options.get("against")
            if against is not None:
                self._verify_against(against, options.get("business"))
            elif not self._verify(options.get("business")):
                raise CommandError("The audit trail does not verify (see above).")
        elif command == "checkpoint":
            self._checkpoint(options.get("business"), reason="manual")
        elif command == "purge":
            self._purge()
        elif command == "rotate-signing-key":
            self._rotate()
        elif command == "signer":
            self._serve_signer(options["host"], options["port"])
        else:
            self._maintain()

    def _label(self, tenant_id: uuid.UUID | None, names: dict[uuid.UUID, str]) -> str:
        if tenant_id is None:
            return "platform (sign-ins)"
        return f"{names.get(tenant_id, 'deleted business')} ({tenant_id})"

    def _verify(self, slug: str | None) -> bool:
        names = chain_names()
        all_ok = True
        total = broken = 0
        started = time.perf_counter()
        tenants = business_chains(slug)
        for tenant_id in tenants:
            report = chain.verify_chain(tenant_id)
            total += report.events
            label = self._label(tenant_id, names)
            if report.ok:
                self.stdout.write(
                    f"OK      {label}: {report.events} events,"
                    f" {report.checkpoints} signed checkpoints"
                )
                continue
            all_ok = False
            broken += 1
            _raise_chain_alert(tenant_id, [problem.message for problem in report.problems])
            self.stdout.write(f"BROKEN  {label}:")
            for problem in report.problems:
                self.stdout.write(f"  {problem.message}")
        elapsed = time.perf_counter() - started
        self.stdout.write(f"{total} events verified in {elapsed:.2f} s.")
        if slug is None:  # the whole trail: what /security/ shows (docs/transparency.md)
            record_verification(chains=len(tenants), broken=broken, source="verify")
        return all_ok

    def _verify_against(self, path: Path, slug: str | None) -> None:
        """The business's chain verifies, and every head in `path` is a point of it."""
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {path}: {type(exc).__name__}.") from None
        try:
            tenant_id, kept = heads.parse_heads(text)
        except heads.HeadsFileError as exc:
            raise CommandError(f"{path} cannot be used: {exc}.") from None
        if slug is not None and business_chains(slug) != [tenant_id]:
            raise CommandError(f"{path} holds the heads of another business than {slug!r}.")
        ok = self._verify(slug) if slug is not None else self._verify_chain(tenant_id)
        try:
            result = heads.verify_against(tenant_id, kept)
        except keys.KeyProblem as exc:
            raise CommandError(str(exc)) from None
        for note in result.notes:
            self.stdout.write(f"  {note}")
        if result.problems:
            self.stdout.write(f"MISMATCH  against {path}:")
            for problem in result.problems:
                self.stdout.write(f"  {problem}")
            raise CommandError(
                f"The trail does not match the heads kept in {path}: {result.problems[0]}"
            )
        self.stdout.write(
            f"MATCHES  {path}: {result.heads} kept heads of {result.checkpoints} checkpoints"
            " are points of the current chain."
        )
        if not ok:
            raise CommandError("The audit trail does not verify (see above).")

    def _verify_chain(self, tenant_id: uuid.UUID) -> bool:
        report = chain.verify_chain(tenant_id)
        label = self._label(tenant_id, chain_names())
        if report.ok:
            self.stdout.write(f"OK      {label}: {report.events} events")
            return True
        self.stdout.write(f"BROKEN  {label}:")
        for problem in report.problems:
            self.stdout.write(f"  {problem.message}")
        return False

    def _rotate(self) -> None:
        if settings.AUDIT_SIGNER != "local":
            raise CommandError(
                "CUSTODIA_AUDIT_SIGNER is remote: rotate the key on the signer's host, then copy"
                f" its key ring to {keys.ring_path()} here."
            )
        try:
            old, new = keys.rotate_signing_key()
        except (OSError, keys.KeyProblem) as exc:
            raise CommandError(f"The signing key was not rotated: {exc}") from None
        retired = f"; {old} is kept in the key ring for older checkpoints" if old else ""
        self.stdout.write(f"New checkpoint signing key {new}{retired} ({keys.ring_path()}).")

    def _serve_signer(self, host: str, port: int) -> None:
        try:
            ring = keys.ensure_ring()
        except (OSError, keys.KeyProblem) as exc:
            raise CommandError(f"The signer has no usable key: {exc}") from None
        try:
            server = signer_server(host, port, settings.AUDIT_SIGNER_SECRET_FILE)
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc.strerror}.") from None
        self.stdout.write(
            f"Audit checkpoint signer on http://{host}:{server.server_port}/sign; copy {ring}"
            f" and {settings.AUDIT_SIGNER_SECRET_FILE} to the hosts that use it."
        )
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()

    def _checkpoint(self, slug: str | None, *, reason: str) -> None:
        names = chain_names()
        failed = []
        tenants = business_chains(slug)
        for tenant_id in tenants:
            try:
                with transaction.atomic(using=chain.USING):
                    checkpoint_id = chain.make_checkpoint(tenant_id, reason=reason)
                    if checkpoint_id is not None:
                        _record_maintenance(
                            AuditAction.AUDIT_CHECKPOINT,
                            tenant_id,
                            {"checkpoint": checkpoint_id, "reason": reason},
                        )
            except chain.ChainBroken as exc:
                failed.append(str(exc))
                _raise_chain_alert(tenant_id, [str(exc)])
                self.stderr.write(f"NOT SIGNED  {self._label(tenant_id, names)}: {exc}")
                continue
            if checkpoint_id is not None:
                self.stdout.write(
                    f"signed checkpoint {checkpoint_id} for {self._label(tenant_id, names)}"
                )
        if slug is None:  # each chain was verified before signing: the whole trail's outcome
            record_verification(chains=len(tenants), broken=len(failed), source="checkpoint")
        if failed:
            raise CommandError(f"{len(failed)} chain(s) do not verify and were not signed.")

    def _purge(self) -> None:
        names = chain_names()
        failed = 0
        for tenant_id in chain.chains():
            try:
                purged = chain.purge_chain(tenant_id)
            except chain.ChainBroken as exc:
                failed += 1
                self.stderr.write(f"KEPT  {self._label(tenant_id, names)}: {exc}")
                continue
            if purged.events:
                self.stdout.write(
                    f"purged {purged.events} events of {self._label(tenant_id, names)}"
                    f" (checkpoint {purged.checkpoint_id})"
                )
        if failed:
            raise CommandError(f"{failed} chain(s) do not verify and were kept whole.")

    @staticmethod
    def _forget_ended_backends() -> None:
        forget_ended_backends(using=chain.USING)

    def _maintain(self) -> None:
        """One round; the job worker runs it at start and daily (ops/tasks.py)."""
        # What is deleted when (the audit purge, spent invitations' addresses, the cache) is
        # the retention policy's, applied by its own daily task (lifecycle/retention.py).
        steps = (
            lambda: self._checkpoint(None, reason="daily"),
            # Housekeeping of the same daily round: contexts of backends that have ended.
            self._forget_ended_backends,
        )
        run_round("audit maintenance", steps, logger=logger)
