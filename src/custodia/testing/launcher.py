"""`custodia serve` as a subprocess: started with the given settings, awaited, stopped.

The one launcher of a live server for the tests (tests/servers.py), the benchmarks
(bench/harness.py) and the attack scans (scan/run.py). Standard library only, and it imports no
Django: the process that calls it may have no settings at all (the scan runner), and the server
reads its own from the environment it is given.

The server runs in a process group of its own, so that stopping it also ends granian's workers. It
counts as ready once it completes a TLS handshake (verified against the given local CA), the
card vault it starts beside the app does too, the plain-HTTP redirector accepts a connection
when there is one, and `ready_path`, when given, answers a GET.

Every server gets a card vault of its own (unless `--no-vault` is among its options): a free
port, and a database named after the app's (`<CUSTODIA_DB_NAME>_vault`, unless the environment
names one), so servers run side by side.
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
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
# The name the local certificate is issued for (custodia.embedded.ensure_tls).
SERVER_NAME = "localhost"
CUSTODIA = (sys.executable, "-m", "custodia.cli")


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """A running `custodia serve` and where it listens."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    http_port: int
    log: Path
    keep_log: bool
    vault_port: int  # 0: started with --no-vault

    @property
    def vault_url(self) -> str:
        """The HTTPS origin of its card vault."""
        return f"https://{SERVER_NAME}:{self.vault_port}"

    @property
    def url(self) -> str:
        """Its HTTPS origin under the certificate's name."""
        return f"https://{SERVER_NAME}:{self.port}"

    def log_tail(self, size: int = 4000) -> str:
        """The end of what the server printed (for an error message)."""
        try:
            return self.log.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL to the server's whole group at once (a crash: no request finishes)."""
        _signal_group(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, grace_seconds: float = 5) -> None:
        """SIGTERM to the server's group, SIGKILL to whatever is left after the grace time."""
        _signal_group(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            pass
        # Whatever is left of the group (granian's workers included) goes now.
        _signal_group(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        if not self.keep_log:
            self.log.unlink(missing_ok=True)


def start(
    env: Mapping[str, str],
    *,
    ca: Path,
    port: int = 0,
    http_port: int = 0,
    host: str = HOST,
    serve_args: Sequence[str] = (),
    command: Sequence[str] = CUSTODIA,
    log: Path | None = None,
    ready_path: str | None = None,
    timeout_seconds: float = 30,
    cwd: Path | None = None,
) -> Server:
    """Run `custodia serve` with exactly `env` and wait until it answers; a free port if 0.

    `http_port` > 0 also runs the plain-HTTP redirector there; `serve_args` adds options
    (`--workers`, `--threads`, ...). The output goes to `log` (kept), else to a temporary file
    removed by `stop()`. Raises RuntimeError, with the end of the output, when the server exits
    or does not answer within `timeout_seconds`; it is stopped then.
    """
    port = port or free_port(host)
    # `--no-vault` in serve_args: no vault here (0), nothing to wait for.
    vault_port = 0 if "--no-vault" in serve_args else free_port(host)
    while vault_port and vault_port in {port, http_port}:
        vault_port = free_port(host)
    if vault_port:
        env = {
            "CUSTODIA_VAULT_DB_NAME": f"{env.get('CUSTODIA_DB_NAME') or 'custodia'}_vault",
            **env,
            "CUSTODIA_VAULT_URL": f"https://{SERVER_NAME}:{vault_port}",
        }
    if log is None:
        handle, name = tempfile.mkstemp(prefix="custodia-serve-", suffix=".log")
        os.close(handle)
        log = Path(name)
        keep_log = False
    else:
        keep_log = True
    arguments = ["serve", "--host", host, "--port", str(port), "--http-port", str(http_port)]
    if vault_port:
        arguments += ["--vault-port", str(vault_port)]
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603  # our own program, arguments built here
            [*command, *arguments, *serve_args],
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=cwd,
        )
    server = Server(process, host, port, http_port, log, keep_log, vault_port)
    try:
        _wait_until_serving(server, ca, ready_path, timeout_seconds)
    except BaseException:
        server.stop()
        raise
    return server


def _signal_group(group: int, sig: signal.Signals) -> None:
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        pass


def _answers(server: Server, context: ssl.SSLContext, ready_path: str | None) -> bool:
    try:
        for port in (server.port, server.vault_port) if server.vault_port else (server.port,):
            with socket.create_connection((server.host, port), timeout=1) as raw:
                with context.wrap_socket(raw, server_hostname=SERVER_NAME):
                    pass
        if server.http_port:
            socket.create_connection((server.host, server.http_port), timeout=1).close()
        if ready_path is not None:
            with urllib.request.urlopen(f"{server.url}{ready_path}", context=context, timeout=10):  # noqa: S310  # https
                pass
    except (OSError, ssl.SSLError):
        return False
    return True


def _wait_until_serving(
    server: Server, ca: Path, ready_path: str | None, timeout_seconds: float
) -> None:
    context = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"custodia serve exited early:\n{server.log_tail()}")
        if _answers(server, context, ready_path):
            return
        time.sleep(0.2)
    raise RuntimeError(
        f"custodia serve did not answer within {timeout_seconds:g} s:\n{server.log_tail()}"
    )
