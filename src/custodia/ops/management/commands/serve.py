"""`custodia serve`: granian over TLS for the app, a plain-HTTP listener that only redirects,
the job worker (`custodia worker`: background jobs and the periodic maintenance), and the card
vault (`custodia vault serve`, a process of its own with its own settings: docs/payments.md)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from custodia.accounts.hashpool import launch_pool, wait_for_pool
from custodia.ops.management.commands.setup import ensure_ready
from custodia.ops.management.commands.worker import backup_recipients_problem
from custodia.ops.tasks import AUDIT_MAINTENANCE, BACKUP_TASKS, KEY_MAINTENANCE
from custodia.telemetry.metrics import MULTIPROC_ENV, reset_multiprocess_dir

STOP_GRACE_SECONDS = 10


def granian_command(*args: str) -> list[str]:
    """granian from the same environment as this interpreter."""
    return [sys.executable, "-m", "granian", *args]


# Threads per worker. Sign-ins waiting for a hash sleep on theirs (below), so a worker has more
# threads than cores; its database connections stay CUSTODIA_DB_POOL_SIZE.
DEFAULT_THREADS = 8
# Threads of a worker that sign-ins never hold, so pages are served through a storm of them.
PAGE_THREADS = 2


def sign_in_limits(threads: int, slots: int) -> tuple[int, int]:
    """(sign-ins a worker works on at once, more that may wait for a turn) for `threads` per
    worker (accounts/hashpool.py: SignInGate): together never more than `threads - PAGE_THREADS`,
    and always one at least, however few threads."""
    working = max(1, min(slots, threads - PAGE_THREADS))
    return working, max(0, threads - PAGE_THREADS - working)


def app_server_args(
    *,
    host: str,
    port: int,
    workers: int,
    threads: int,
    certificate: Path,
    keyfile: Path,
) -> list[str]:
    """The granian command line for the Django app over TLS 1.2+."""
    return granian_command(
        "--interface",
        "wsgi",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--blocking-threads",
        str(threads),
        "--no-ws",
        "--respawn-failed-workers",
        "--ssl-certificate",
        str(certificate),
        "--ssl-keyfile",
        str(keyfile),
        "--ssl-protocol-min",
        settings.TLS_MIN_VERSION,
        "--no-access-log",
        "custodia.wsgi:application",
    )


def redirect_server_args(*, host: str, port: int) -> list[str]:
    """The granian command line for the HTTP -> HTTPS redirector."""
    return granian_command(
        "--interface",
        "wsgi",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
        "--blocking-threads",
        "1",
        "--no-ws",
        "--no-access-log",
        "custodia.ops.redirect:app",
    )


def worker_args(options: dict[str, Any]) -> list[str]:
    """The `custodia worker` command line: jobs and the periodic tasks not left to others."""
    left_out = [
        task
        for option, tasks in (
            ("no_audit_maintenance", (AUDIT_MAINTENANCE,)),
            ("no_key_maintenance", (KEY_MAINTENANCE,)),
            ("no_backups", BACKUP_TASKS),
        )
        if options.get(option)
        for task in tasks
    ]
    without = [arg for task in left_out for arg in ("--without", task)]
    return [sys.executable, "-m", "custodia.cli", "worker", *without]


def vault_args(*, host: str, port: int, workers: int) -> list[str]:
    """The `custodia vault serve` command line (the vault loads its own settings, not ours)."""
    return [
        sys.executable, "-m", "custodia.cli", "vault", "serve",
        "--host", host, "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip


def display_host(host: str) -> str:
    """The name to print in a URL for a bind address."""
    wildcard_or_loopback = {"0.0.0.0", "::", "127.0.0.1", "::1", ""}  # noqa: S104
    return "localhost" if host in wildcard_or_loopback else host


def local_public_url(port: int, environ: dict[str, str], *, production: bool) -> str | None:
    """In development without CUSTODIA_PUBLIC_URL, the public URL follows --port, so that mail
    links name this server and its Host check (web.middleware.PublicHostMiddleware) accepts it."""
    if production or environ.get("CUSTODIA_PUBLIC_URL"):
        return None
    return f"https://localhost:{port}"


class Command(BaseCommand):
    help = "Serve Custodia over HTTPS with granian (and redirect plain HTTP to it)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")  # noqa: S104
        parser.add_argument("--port", type=int, default=8443, help="HTTPS port (default 8443)")
        parser.add_argument(
            "--http-port",
            type=int,
            default=8080,
            help="plain-HTTP port that redirects to HTTPS (default 8080; 0 turns it off)",
        )
        parser.add_argument(
            "--vault-port",
            type=int,
            default=settings.VAULT_PORT,
            help="HTTPS port of the card vault started beside the app (default"
            " CUSTODIA_VAULT_PORT, 8444)",
        )
        parser.add_argument(
            "--no-vault",
            action="store_true",
            help="start no card vault here: it runs elsewhere, at CUSTODIA_VAULT_URL",
        )
        parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
        parser.add_argument(
            "--threads",
            type=int,
            default=DEFAULT_THREADS,
            help=f"blocking threads per worker (default {DEFAULT_THREADS})",
        )
        parser.add_argument(
            "--certificate",
            type=Path,
            help="PEM certificate chain to serve instead of the local one under var/tls",
        )
        parser.add_argument("--keyfile", type=Path, help="PKCS#8 PEM key for --certificate")
        # The job worker (`custodia worker`) runs beside the server, with the periodic tasks
        # of ops/tasks.py; these leave one of them to another host.
        parser.add_argument(
            "--no-audit-maintenance",
            action="store_true",
            help="leave the daily audit maintenance (signed checkpoints and the retention purge)"
            " out of this server's job worker: run it elsewhere",
        )
        parser.add_argument(
            "--no-key-maintenance",
            action="store_true",
            help="leave the daily key maintenance (rotate data keys past their rotation period,"
            " destroy retired keys past retention) out of this server's job worker",
        )
        parser.add_argument(
            "--no-backups",
            action="store_true",
            help="leave the backups (database and keystore backups and their prunes, at start and"
            " daily, and the weekly restore drill) out of this server's job worker: another host"
            " makes them",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        port, http_port, vault_port = options["port"], options["http_port"], options["vault_port"]
        for name, value, low in (
            ("--port", port, 1),
            ("--http-port", http_port, 0),
            ("--vault-port", vault_port, 1),
        ):
            if not low <= value <= 65535:
                raise CommandError(f"{name} must be between {low} and 65535.")
        if not options["no_vault"] and vault_port in {port, http_port}:
            raise CommandError("--vault-port must differ from --port and --http-port.")
        if options["workers"] < 1 or options["threads"] < 1:
            raise CommandError("--workers and --threads must be at least 1.")
        if http_port == port:
            raise CommandError("--http-port must differ from --port.")
        if bool(options["certificate"]) != bool(options["keyfile"]):
            raise CommandError("Give both --certificate and --keyfile, or neither.")

        if not options["no_backups"]:
            problem = backup_recipients_problem()
            if problem is not None:
                raise CommandError(problem)
        certificate, keyfile = ensure_ready(self.stdout)
        if options["certificate"]:
            certificate, keyfile = options["certificate"], options["keyfile"]
            for path in (certificate, keyfile):
                if not os.access(path, os.R_OK):
                    raise CommandError(f"Cannot read {path}.")

        # The children inherit the environment; the redirector learns where to send people from
        # it: in production always to the public URL, locally to this host's HTTPS port.
        env = {**os.environ, "CUSTODIA_HTTPS_PORT": str(port)}
        local = local_public_url(port, env, production=settings.PRODUCTION)
        if local is not None:
            env["CUSTODIA_PUBLIC_URL"] = local
        if not options["no_vault"]:
            env["CUSTODIA_VAULT_PORT"] = str(vault_port)
            if not settings.PRODUCTION and not os.environ.get("CUSTODIA_VAULT_URL"):
                env["CUSTODIA_VAULT_URL"] = f"https://localhost:{vault_port}"
        if settings.PRODUCTION:
            public = urlsplit(settings.PUBLIC_URL)
            env["CUSTODIA_REDIRECT_ORIGIN"] = f"{public.scheme}://{public.netloc}"
        # granian's workers count requests in files of their own here, summed at each scrape of
        # /metrics; emptied at each start and removed at the end (one directory per port: two
        # servers may share var/).
        metrics_dir = settings.VAR_DIR / "run" / f"metrics-{port}"
        reset_multiprocess_dir(metrics_dir)
        env[MULTIPROC_ENV] = str(metrics_dir)
        # Password hashes run in a pool of processes beside granian's (accounts/hashpool.py).
        slots, waiting = sign_in_limits(options["threads"], settings.SIGN_IN_SLOTS)
        env["CUSTODIA_SIGN_IN_SLOTS"], env["CUSTODIA_SIGN_IN_WAITING"] = str(slots), str(waiting)
        # Room in the pool's queue for every sign-in the workers let through at once.
        queue = max(
            settings.PASSWORD_HASH_QUEUE,
            options["workers"] * slots - settings.PASSWORD_HASH_CONCURRENCY,
        )
        pool, pool_socket = launch_pool(
            settings.VAR_DIR / "run", settings.PASSWORD_HASH_CONCURRENCY, queue, env
        )
        env["CUSTODIA_HASH_SOCKET"] = str(pool_socket)
        commands = [
            app_server_args(
                host=options["host"],
                port=port,
                workers=options["workers"],
                threads=options["threads"],
                certificate=certificate,
                keyfile=keyfile,
            )
        ]
        if http_port:
            commands.append(redirect_server_args(host=options["host"], port=http_port))
        commands.append(worker_args(options))
        if not options["no_vault"]:
            commands.append(
                vault_args(host=options["host"], port=vault_port, workers=options["workers"])
            )
        children = [pool, *(subprocess.Popen(command, env=env) for command in commands)]  # noqa: S603
        # It starts while granian does; a pool that dies is a child that exits (supervise).
        wait_for_pool(pool, pool_socket)

        url_host = display_host(options["host"])
        self.stdout.write(f"Custodia is serving https://{url_host}:{port}/")
        if http_port:
            self.stdout.write(f"  http://{url_host}:{http_port}/ redirects there")
        if not options["certificate"]:
            self.stdout.write(
                f"  Trust the local CA {settings.TLS_DIR / 'ca.pem'} in your browser,"
                " or accept the certificate warning once."
            )
        if not options["no_vault"]:
            self.stdout.write(f"  the card vault serves https://{url_host}:{vault_port}/")
        self.stdout.write("  Ctrl-C stops it.")
        self.stdout.flush()
        try:
            code = supervise(children)
        finally:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        sys.exit(code)


def supervise(children: list[subprocess.Popen[bytes]]) -> int:
    """Forward SIGINT/SIGTERM to the children; when any one exits, stop the rest."""
    stopping: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.2)
        first = next(child for child in children if child.poll() is not None)
        for child in children:
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stopping:
        return 0
    code = first.returncode or 0
    # A child that died on its own is a failure even if it exited "cleanly".
    return code if code > 0 else 1
