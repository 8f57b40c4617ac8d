"""`custodia vault serve`: the card vault over TLS with granian, as a process of its own.

`custodia serve` starts it beside the app; it can also run alone (another host), with the app
pointed at it by CUSTODIA_VAULT_URL.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from custodia.vault.management.commands.setup import ensure_vault_ready


def vault_server_args(
    *, host: str, port: int, workers: int, threads: int, certificate: Path, keyfile: Path
) -> list[str]:
    """The granian command line for the vault over TLS 1.2+."""
    return [
        sys.executable, "-m", "granian",
        "--interface", "wsgi",
        "--host", host,
        "--port", str(port),
        "--workers", str(workers),
        "--blocking-threads", str(threads),
        "--no-ws",
        "--respawn-failed-workers",
        "--ssl-certificate", str(certificate),
        "--ssl-keyfile", str(keyfile),
        "--ssl-protocol-min", "tls1.2",
        "--no-access-log",
        "custodia.vault.wsgi:application",
    ]  # fmt: skip


class Command(BaseCommand):
    help = "Serve the card vault over HTTPS with granian (port CUSTODIA_VAULT_PORT, 8444)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")  # noqa: S104
        parser.add_argument(
            "--port", type=int, default=settings.VAULT_PORT, help="HTTPS port (default 8444)"
        )
        parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
        parser.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
        parser.add_argument("--certificate", type=Path, help="PEM certificate chain to serve")
        parser.add_argument("--keyfile", type=Path, help="PKCS#8 PEM key for --certificate")

    def handle(self, *args: Any, **options: Any) -> None:
        if not 1 <= options["port"] <= 65535:
            raise CommandError("--port must be between 1 and 65535.")
        if options["workers"] < 1 or options["threads"] < 1:
            raise CommandError("--workers and --threads must be at least 1.")
        if bool(options["certificate"]) != bool(options["keyfile"]):
            raise CommandError("Give both --certificate and --keyfile, or neither.")
        certificate, keyfile = ensure_vault_ready()
        if options["certificate"]:
            certificate, keyfile = options["certificate"], options["keyfile"]
        command = vault_server_args(
            host=options["host"],
            port=options["port"],
            workers=options["workers"],
            threads=options["threads"],
            certificate=certificate,
            keyfile=keyfile,
        )
        self.stdout.write(f"The card vault is serving on port {options['port']}")
        self.stdout.flush()
        os.environ["DJANGO_SETTINGS_MODULE"] = "custodia.vault.settings"
        # Locally, without CUSTODIA_VAULT_URL, the vault's own URL (its form links) follows --port.
        if not settings.PRODUCTION and "CUSTODIA_VAULT_URL" not in os.environ:
            os.environ["CUSTODIA_VAULT_URL"] = f"https://localhost:{options['port']}"
        # granian takes this process's place: whoever started it stops granian itself.
        os.execv(sys.executable, command)  # noqa: S606
