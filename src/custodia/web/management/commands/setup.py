"""`custodia setup`: database server, roles, database, migrations, TLS certificate, static files."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connections

from custodia import embedded


def prepare_database(name: str, *, fresh: bool = False) -> None:
    """Start the embedded server if used, provision roles and database `name`, and migrate it."""
    if settings.EMBEDDED_DATABASE:
        socket_dir = str(embedded.start_embedded(settings.EMBEDDED_PGDATA))
        settings.ADMIN_DATABASE["HOST"] = socket_dir
    embedded.provision_database(
        settings.ADMIN_DATABASE, name, settings.APP_DB_PASSWORD, fresh=fresh
    )
    for alias in connections:
        connection = connections[alias]
        connection.close()
        if hasattr(connection, "close_pool"):
            connection.close_pool()
        for target in (connection.settings_dict, settings.DATABASES[alias]):
            target["NAME"] = name
            target["HOST"] = settings.ADMIN_DATABASE["HOST"]
    call_command("migrate", database="owner", interactive=False, verbosity=0)
    call_command("createcachetable", database="owner", verbosity=0)


class Command(BaseCommand):
    help = "Set up everything `custodia serve` needs; safe to run again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--demo", action="store_true", help="seed the demo business once")

    def handle(self, *args: Any, **options: Any) -> None:
        prepare_database(settings.ADMIN_DATABASE["NAME"])
        self.stdout.write("database ready: migrations applied as custodia_owner")
        cert, _key = embedded.ensure_tls(settings.TLS_DIR)
        self.stdout.write(f"TLS certificate: {cert} (CA: {settings.TLS_DIR / 'ca.pem'})")
        call_command("collectstatic", interactive=False, verbosity=0)
        if options["demo"]:
            call_command("demo")
