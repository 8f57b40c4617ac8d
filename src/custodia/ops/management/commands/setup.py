"""`custodia setup`: database server, roles, database, migrations, TLS certificate, static files,
and the card vault (`custodia vault setup`)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.db import connections

from custodia import embedded
from custodia.accounts.mfa import reseal_mfa_secrets
from custodia.accounts.recoverycodes import hash_seeded_codes
from custodia.cache.backend import close_pools as close_cache_pools
from custodia.crypto.checks import verify_kek, verify_keystore_covers_database
from custodia.crypto.errors import KekError
from custodia.wallet.config import verify_configured as verify_wallet_configured


def prepare_database(name: str, *, fresh: bool = False) -> None:
    """Start the embedded server if used, provision roles and database `name`, and migrate it."""
    open_database(name, fresh=fresh)
    if _encryption_migrated():
        # Before migrating: a migration would make keys for every business in whatever
        # keystore is mounted, a wrong one included.
        verify_keystore_covers_database()
    call_command("migrate", database="owner", interactive=False, verbosity=0)
    install_context_key()


def install_context_key() -> None:
    """Store the digest of this install's context key, which `custodia_set_context` checks
    (core/dbcontext.py); a new key replaces the old one, so running servers with the old key
    stop getting a context until they restart with the new one."""
    digest = hashlib.sha256(settings.DB_CONTEXT_KEY.encode()).digest()
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "INSERT INTO custodia_context_key (id, digest) VALUES (true, %s)"
            " ON CONFLICT (id) DO UPDATE SET digest = EXCLUDED.digest",
            [digest],
        )


def open_database(name: str, *, fresh: bool = False) -> None:
    """Start the embedded server if used, provision roles and database `name` (not migrated),
    and point every connection at it."""
    if settings.EMBEDDED_DATABASE:
        socket_dir = str(embedded.start_embedded(settings.EMBEDDED_PGDATA))
        settings.ADMIN_DATABASE["HOST"] = socket_dir
    # Before anything is written: an external server (DATABASE_URL) without the row-security
    # fixes would make tenant isolation a promise the database does not keep.
    embedded.check_server_version(settings.ADMIN_DATABASE)
    embedded.provision_database(
        settings.ADMIN_DATABASE, name, settings.APP_DB_PASSWORD, fresh=fresh
    )
    point_connections_at(name, settings.ADMIN_DATABASE["HOST"])


def point_connections_at(name: str, host: str) -> None:
    """Close every connection and make each alias use database `name` on `host` from now on."""
    close_cache_pools()
    for alias in connections:
        connection = connections[alias]
        connection.close()
        if hasattr(connection, "close_pool"):
            connection.close_pool()
        for target in (connection.settings_dict, settings.DATABASES[alias]):
            target["NAME"] = name
            target["HOST"] = host


def _encryption_migrated() -> bool:
    """Whether the database already has encrypted fields (clients/0004 applied)."""
    from django.db.migrations.recorder import MigrationRecorder

    recorder = MigrationRecorder(connections["owner"])
    if not recorder.has_table():
        return False
    return ("clients", "0004_encrypt_fields") in recorder.applied_migrations()


def ensure_ready(out: OutputWrapper | None = None) -> tuple[Path, Path]:
    """Everything `serve` needs, done once and quick when already done; returns cert and key."""
    # The key-encryption key first: migrations encrypt existing rows, and a wrong or missing
    # key must stop everything with its own message (crypto/checks.py).
    try:
        kek = verify_kek()
        if out is not None:
            out.write(kek)
        prepare_database(settings.ADMIN_DATABASE["NAME"])
        coverage = verify_keystore_covers_database()
    except (KekError, embedded.DatabaseServerError) as exc:
        raise CommandError(str(exc)) from None
    if out is not None:
        name = settings.ADMIN_DATABASE["NAME"]
        out.write(f"database {name} ready (migrated as custodia_owner)")
        out.write(coverage)
    reseal_after_key_rotation(out)
    cert, key = embedded.ensure_tls(settings.TLS_DIR)
    if out is not None:
        out.write(f"TLS certificate {cert} (local CA {settings.TLS_DIR / 'ca.pem'})")
    if not settings.PRODUCTION and settings.WALLET_APPLE:
        # Local stand-ins for the wallet credentials (docs/wallet.md); production names its own.
        wallet = embedded.ensure_wallet_signing(
            settings.WALLET_DEV_DIR,
            pass_type_id=settings.WALLET_APPLE["CUSTODIA_WALLET_PASS_TYPE_ID"],
            team_id=settings.WALLET_APPLE["CUSTODIA_WALLET_TEAM_ID"],
        )
        if out is not None:
            out.write(f"wallet pass signing (development) {wallet}")
    try:
        wallets = verify_wallet_configured()
    except ImproperlyConfigured as exc:
        raise CommandError(str(exc)) from None
    if out is not None:
        out.write(wallets)
    call_command("collectstatic", interactive=False, verbosity=0)
    return cert, key


def reseal_after_key_rotation(out: OutputWrapper | None = None) -> None:
    """Re-seal two-factor secrets under the current SECRET_KEY; refuse to go on if a secret no
    configured key opens (a new key without the old one among the fallbacks would lock every
    person with an authenticator app out)."""
    hashed = hash_seeded_codes()
    if out is not None and hashed:
        out.write(f"stored {hashed} set(s) of recovery codes as one hash per code")
    report = reseal_mfa_secrets()
    if report.unreadable:
        raise CommandError(
            f"{report.unreadable} two-factor secret(s) do not decrypt with CUSTODIA_SECRET_KEY or"
            " any key in CUSTODIA_SECRET_KEY_FALLBACKS, so their owners could not sign in: put"
            " the previous secret key into CUSTODIA_SECRET_KEY_FALLBACKS (docs/operations.md)."
        )
    if out is not None and report.resealed:
        out.write(f"re-sealed {report.resealed} two-factor secret(s) under the current secret key")


class Command(BaseCommand):
    help = "Set up everything `custodia serve` needs; safe to run again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--demo", action="store_true", help="seed the demo business once")

    def handle(self, *args: Any, **options: Any) -> None:
        ensure_ready(self.stdout)
        setup_vault(self.stdout)
        if options["demo"]:
            call_command("demo", stdout=self.stdout)


def setup_vault(out: OutputWrapper) -> None:
    """`custodia vault setup` in a process of its own: the vault's settings are not ours."""
    done = subprocess.run(  # noqa: S603  (our own program, fixed arguments)
        [sys.executable, "-m", "custodia.cli", "vault", "setup"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        raise CommandError(f"the card vault's setup failed: {done.stderr.strip()[-2000:]}")
    out.write(done.stdout.rstrip())


def drop_database(name: str) -> None:
    """Close this process's connections to database `name`, then drop it."""
    close_cache_pools()
    for alias in connections:
        connection = connections[alias]
        connection.close()
        if hasattr(connection, "close_pool"):
            connection.close_pool()
    embedded.drop_database(settings.ADMIN_DATABASE, name)
