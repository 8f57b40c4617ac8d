"""The real `custodia serve` (granian over TLS) as a subprocess, for tests that need a live server.

`start_server(db_name, env)` returns the base URL and a `stop` function. The server reads the
database `db_name`, which must hold committed data: a test's own rows live in an uncommitted
transaction and are invisible to it. Browser tests create their own database first with
`prepare_server_database(name)`, which runs in a subprocess so the test session's connections
keep pointing at the test database.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from django.conf import settings

from custodia.embedded import ensure_tls

START_TIMEOUT_SECONDS = 30


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def local_ca() -> Path:
    """The local CA that signs the server certificate `custodia serve` uses (made if missing)."""
    ensure_tls(Path(settings.TLS_DIR))
    return Path(settings.TLS_DIR) / "ca.pem"


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
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "custodia.settings"},
        timeout=120,
    )


def start_server(
    db_name: str,
    env_overrides: Mapping[str, str] | None = None,
    *,
    http_port: int = 0,
) -> tuple[str, Callable[[], None]]:
    """Run `custodia serve` on a free port against `db_name`; returns (base_url, stop).

    `http_port` > 0 also runs the plain-HTTP redirector there. The server's public URL is its
    own address unless `env_overrides` says otherwise.
    """
    local_ca()  # made here first, so the server and this process never both create it
    port = free_port()
    base_url = f"https://localhost:{port}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "custodia.settings",
        "CUSTODIA_DB_NAME": db_name,
        "CUSTODIA_PUBLIC_URL": base_url,
        **(env_overrides or {}),
    }
    log = tempfile.NamedTemporaryFile(prefix="custodia-serve-", suffix=".log", delete=False)
    command = [
        sys.executable,
        "-m",
        "custodia.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--http-port",
        str(http_port),
        "--workers",
        "1",
        "--threads",
        "4",
    ]
    # A session of its own, so stop() can end granian's workers with one signal to the group.
    process = subprocess.Popen(  # noqa: S603
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )

    def stop() -> None:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        # Whatever is left of the group (granian's workers included) goes now.
        _signal_group(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
        log.close()
        Path(log.name).unlink(missing_ok=True)

    try:
        _wait_until_serving(process, port, http_port, Path(log.name))
    except BaseException:
        stop()
        raise
    return base_url, stop


def _signal_group(group: int, sig: signal.Signals) -> None:
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        pass


def _wait_until_serving(
    process: subprocess.Popen[bytes], port: int, http_port: int, log: Path
) -> None:
    context = tls_client_context()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"custodia serve exited early:\n{log.read_text()[-4000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
                with context.wrap_socket(raw, server_hostname="localhost"):
                    pass
            if http_port:
                socket.create_connection(("127.0.0.1", http_port), timeout=1).close()
            return
        except (OSError, ssl.SSLError):
            time.sleep(0.1)
    raise RuntimeError(f"custodia serve did not start in time:\n{log.read_text()[-4000:]}")
