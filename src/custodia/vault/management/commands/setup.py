"""`custodia vault setup`: the vault's key-encryption key, role, database, tables and TLS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.db import connections

from custodia import embedded
from custodia.crypto import keyring, keystore
from custodia.crypto.errors import KekError
from custodia.vault import settings as vault_settings


def verify_vault_kek() -> str:
    """Load (or, the first time, make) the vault's KEK and check it opens the vault keystore."""
    kek = keyring.provider()
    businesses = keystore.business_ids()
    if businesses:
        keyring.keys_for(businesses[0], refresh=True)
    return f"vault KEK {kek.primary_id} ({kek.name}); {len(businesses)} businesses have vault keys"


def ensure_vault_ready(
    out: OutputWrapper | None = None, *, fresh: bool = False
) -> tuple[Path, Path]:
    """Everything `custodia vault serve` needs, quick when done already; returns cert and key."""
    try:
        kek = verify_vault_kek()
        if settings.EMBEDDED_DATABASE:
            socket_dir = str(embedded.start_embedded(settings.EMBEDDED_PGDATA))
            settings.ADMIN_DATABASE["HOST"] = socket_dir
            for database in settings.DATABASES.values():
                database["HOST"] = socket_dir
        embedded.check_server_version(settings.ADMIN_DATABASE)
        embedded.provision_vault_database(
            settings.ADMIN_DATABASE,
            vault_settings.VAULT_DB_NAME,
            vault_settings.VAULT_DB_PASSWORD,
            fresh=fresh,
        )
    except (KekError, embedded.DatabaseServerError) as exc:
        raise CommandError(str(exc)) from None
    for alias in connections:
        connections[alias].close()
    call_command("migrate", interactive=False, verbosity=0)
    cert, key = embedded.ensure_tls(settings.TLS_DIR, name="vault")
    if out is not None:
        out.write(kek)
        out.write(f"vault database {vault_settings.VAULT_DB_NAME} ready (role custodia_vault)")
    return cert, key


class Command(BaseCommand):
    help = "Set up the card vault (its key, role, database and tables); safe to run again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--fresh", action="store_true", help="drop and remake the vault database (tests)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        ensure_vault_ready(self.stdout, fresh=options["fresh"])
