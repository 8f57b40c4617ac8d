"""The real `custodia serve` (granian over TLS) as a subprocess, for tests that need a live server.

custodia/testing/launcher.py starts and stops it (for bench/ and scan/ too); this module gives it
the test settings. `start_server(db_name, env)` returns the base URL and a `stop` function. The
server reads the database `db_name`, which must hold committed data: a test's own rows live in an
uncommitted transaction and are invisible to it. Browser tests create their own database first
with `prepare_server_database(name)`, which runs in a subprocess so the test session's
connections keep pointing at the test database.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from django.conf import settings

from custodia import embedded
from custodia.embedded import ensure_tls
from custodia.testing import launcher
from custodia.testing.launcher import free_port

# Django in four processes at once (app, maintenance), and the hashing pool, on shared cores.
START_TIMEOUT_SECONDS = 60


def django_environment(db_name: str | None = None) -> dict[str, str]:
    """The environment of a Django subprocess (on `db_name`, if given): this process's, with the
    tests' keystore (tests/conftest.py), so that the keys a server or a script makes land there
    and never in the developer's var/keys."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "custodia.settings",
        "CUSTODIA_KEYSTORE_DIR": str(settings.KEYSTORE_DIR),
    }
    if db_name is not None:
        env["CUSTODIA_DB_NAME"] = db_name
    return env


def local_ca() -> Path:
    """The local CA that signs the server certificate `custodia serve` uses (made if missing)."""
    ensure_tls(Path(settings.TLS_DIR))
    return Path(settings.TLS_DIR) / "ca.pem"


def admin_database() -> dict[str, str]:
    """The superuser connection of the tests' PostgreSQL server (the embedded one's socket as
    it is now)."""
    admin = dict(settings.ADMIN_DATABASE)
    if settings.EMBEDDED_DATABASE:
        admin["HOST"] = str(embedded.embedded_socket_dir(settings.EMBEDDED_PGDATA))
    return admin


def tls_client_context() -> ssl.SSLContext:
    """A client context that trusts the local CA (and only it)."""
    return ssl.create_default_context(cafile=str(local_ca()))


def prepare_server_database(name: str, *, fresh: bool = True) -> None:
    """Create and migrate database `name` for a test server, outside this process's connections."""
    code = (
        "import django; django.setup()\n"
        "from custodia.ops.management.commands.setup import prepare_database\n"
        f"prepare_database({name!r}, fresh={fresh!r})\n"
    )
    subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        check=True,
        env=django_environment(),
        timeout=120,
    )


def start_server(
    db_name: str,
    env_overrides: Mapping[str, str] | None = None,
    *,
    http_port: int = 0,
    log: Path | None = None,
) -> tuple[str, Callable[..., None]]:
    """Run `custodia serve` on a free port against `db_name`; returns (base_url, stop).

    `http_port` > 0 also runs the plain-HTTP redirector there. `log`, when given, keeps what the
    server and its children (the vault, the job worker) print there (else a temporary file).
    The server's public URL is its own address unless `env_overrides` says otherwise. Its card
    vault has a database of its own, dropped by `stop`. `stop(kill=True)` is a crash: SIGKILL to
    every process of the server at once.
    """
    ca = local_ca()  # made here first, so the server and this process never both create it
    port = free_port()
    base_url = f"https://localhost:{port}"
    backup_dir = tempfile.mkdtemp(prefix="custodia-test-backups-")
    env = {
        **django_environment(db_name),
        "CUSTODIA_PUBLIC_URL": base_url,
        # The server's daily backups at start go to a directory of this run, not var/.
        "CUSTODIA_BACKUP_DIR": backup_dir,
        "CUSTODIA_KEYSTORE_BACKUP_DIR": os.path.join(backup_dir, "keystore"),
        # Servers of one database may run side by side: each vault has a database of its own.
        "CUSTODIA_VAULT_DB_NAME": f"{db_name}_vault_{port}",
        "CUSTODIA_VAULT_KEYSTORE_DIR": os.path.join(backup_dir, "vault-keys"),
        **(env_overrides or {}),
    }
    server = launcher.start(
        env,
        ca=ca,
        port=port,
        http_port=http_port,
        serve_args=("--workers", "1", "--threads", "4"),
        timeout_seconds=START_TIMEOUT_SECONDS,
        log=log,
    )

    def stop(*, kill: bool = False) -> None:
        if kill:
            server.kill()
        else:
            server.stop()
        shutil.rmtree(backup_dir, ignore_errors=True)
        embedded.drop_database(admin_database(), env["CUSTODIA_VAULT_DB_NAME"])

    return base_url, stop


def run_django(db_name: str, code: str) -> str:
    """Python with Django set up against `db_name`, in a subprocess (this process's connections
    stay on the test database); what it printed."""
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", "import django; django.setup()\n" + code],
        check=True,
        capture_output=True,
        text=True,
        env=django_environment(db_name),
        timeout=120,
    )
    return done.stdout


def custodia(db_name: str, *args: str, stdin: str | None = None) -> str:
    """`custodia ARGS` against database `db_name`; its output (a failure raises)."""
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "custodia.cli", *args],
        check=True,
        capture_output=True,
        text=True,
        input=stdin,
        env=django_environment(db_name),
        timeout=120,
    )
    return done.stdout


def create_business(db_name: str, name: str, email: str, password: str) -> None:
    """A business named `name` whose owner signs in with `email` and `password`."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as password_file:
        password_file.write(password + "\n")
        password_file.flush()
        custodia(
            db_name, "createbusiness", "--name", name, "--owner-email", email,
            "--password-file", password_file.name,
        )  # fmt: skip
