"""A live vault for the tests: `custodia vault serve` (granian over TLS, two workers) as a
subprocess on a free port, with a database, keystore, KEK and signing secret of this test run,
and two tiny HTTPS page servers: the "app" origin the vault trusts, and a stranger."""

from __future__ import annotations

import html
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
import urllib3
from django.conf import settings

from custodia import embedded
from custodia.testing.launcher import free_port
from custodia.vault.client import VaultClient
from tests.servers import admin_database, local_ca

START_TIMEOUT_SECONDS = 60
# Every card number and security code the tests type: none may ever leave the vault.
SECRETS_TYPED: set[str] = set()


class PageHandler(BaseHTTPRequestHandler):
    """/embed?src=URL: a page framing URL; /done?ref=...: where the vault sends people back."""

    def do_GET(self) -> None:  # noqa: N802  (http.server's name)
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if parts.path == "/embed":
            src = html.escape(query.get("src", [""])[0])
            body = (
                '<!doctype html><meta name="viewport" content="width=device-width">'
                "<title>app</title><style>body{margin:0}</style>"
                f'<iframe id="vault" src="{src}" style="width:100%;height:640px;border:0">'
                "</iframe>"
            )
        elif parts.path == "/done":
            body = "<!doctype html><title>done</title><p id='done'>card saved</p>"
        else:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


def start_page_server() -> tuple[str, ThreadingHTTPServer]:
    """An HTTPS page server on localhost (the local certificate); its origin and the server."""
    local_ca()
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), PageHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls = Path(settings.TLS_DIR)
    context.load_cert_chain(tls / "server.pem", tls / "server-key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"https://localhost:{server.server_address[1]}", server


@dataclass
class LiveVault:
    url: str
    secret: str
    db_name: str
    log: Path
    keystore: Path
    app_origin: str
    other_origin: str
    ca: Path
    answers: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # the vault process's environment

    def client(self, secret: str | None = None) -> VaultClient:
        """A client of the vault; every answer it gets is kept in `answers`."""
        return RecordingClient(
            self.url, secret or self.secret, ca_file=str(self.ca), answers=self.answers
        )

    def http(self) -> urllib3.PoolManager:
        return urllib3.PoolManager(
            ssl_context=ssl.create_default_context(cafile=str(self.ca)), retries=False
        )

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """A query as the superuser on the vault's database (row security does not apply)."""
        with embedded.admin_connection(admin_database(), self.db_name) as conn:
            cursor = conn.execute(query, params)  # type: ignore[arg-type]
            return list(cursor.fetchall()) if cursor.description else []

    def open_card(self, business: uuid.UUID, token: str) -> str:
        """Try to open a card's sealed number with the vault's own keys, in a process with the
        vault's settings: "last4 <digits>" when it opens, "unreadable" when it cannot."""
        code = (
            "import sys, uuid, django; django.setup()\n"
            "from custodia.vault import keys\n"
            "from custodia.vault.models import Card\n"
            "card = Card.objects.get(token=sys.argv[2])\n"
            "try:\n"
            "    number = keys.open_sealed(uuid.UUID(sys.argv[1]), 'number', card.token,"
            " card.number_sealed)\n"
            "except keys.CardUnreadable:\n"
            "    print('unreadable')\n"
            "else:\n"
            "    print('last4', number[-4:])\n"
        )
        done = subprocess.run(  # noqa: S603
            [sys.executable, "-c", code, str(business), token],
            env={**self.env, "DJANGO_SETTINGS_MODULE": "custodia.vault.settings"},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return done.stdout.strip()

    def submit_card(
        self,
        form_url: str,
        *,
        number: str,
        expiry: str = "12/40",
        security_code: str = "123",
        holder_name: str = "Ada Lovelace",
    ) -> urllib3.BaseHTTPResponse:
        """Fill in the hosted form as a browser without JavaScript would: GET, then POST."""
        SECRETS_TYPED.update({number, security_code} - {""})
        http = self.http()
        page = http.request("GET", form_url, redirect=False)
        self.answers.append(page.data.decode())
        if page.status != 200:
            return page
        cookie = page.headers["Set-Cookie"].split(";", 1)[0]
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.data.decode())
        assert match is not None
        answer = http.request(
            "POST",
            form_url,
            fields={
                "csrfmiddlewaretoken": match.group(1),
                "number": number,
                "expiry": expiry,
                "security_code": security_code,
                "holder_name": holder_name,
            },
            encode_multipart=False,
            headers={"Cookie": cookie, "Origin": self.url, "Referer": form_url},
            redirect=False,
        )
        self.answers.append(answer.data.decode() + str(answer.headers.get("Location", "")))
        return answer

    def add_card(self, business: uuid.UUID, number: str, **fields: str) -> Any:
        """A card added through the hosted form and redeemed: the CardInfo."""
        client = self.client()
        form = client.create_form(business, f"{self.app_origin}/done")
        answer = self.submit_card(form.form_url, number=number, **fields)
        assert answer.status == 303, answer.data
        ref = parse_qs(urlsplit(answer.headers["Location"]).query)["ref"][0]
        return client.redeem_reference(business, ref)


class RecordingClient(VaultClient):
    def __init__(self, *args: Any, answers: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.answers = answers

    def request(self, *args: Any, **kwargs: Any) -> Any:
        try:
            data = super().request(*args, **kwargs)
        except Exception as exc:
            self.answers.append(str(exc))
            raise
        self.answers.append(repr(data))
        return data


def _wait_for_tls(port: int, ca: Path, process: subprocess.Popen[bytes], log: Path) -> None:
    context = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the vault exited early:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
                with context.wrap_socket(raw, server_hostname="localhost"):
                    return
        except (OSError, ssl.SSLError):
            time.sleep(0.2)
    raise RuntimeError(f"the vault did not answer:\n{log.read_text()[-3000:]}")


@contextmanager
def running_vault(
    work: Path, name: str, app_origin: str, other_origin: str, **settings_env: str
) -> Iterator[LiveVault]:
    """A live vault: database `custodia_vault_<name>_<pid>`, keys under `work`, two workers;
    `settings_env` adds to its environment (another gateway, say). Stopped and its database
    dropped on leaving."""
    ca = local_ca()
    port = free_port()
    db_name = f"custodia_vault_{name}_{os.getpid()}"
    live = LiveVault(
        url=f"https://localhost:{port}",
        secret=secrets.token_urlsafe(40),
        db_name=db_name,
        log=work / "vault.log",
        keystore=work / "keys",
        app_origin=app_origin,
        other_origin=other_origin,
        ca=ca,
    )
    env = {
        **os.environ,
        "CUSTODIA_VAULT_DB_NAME": db_name,
        "CUSTODIA_VAULT_KEYSTORE_DIR": str(live.keystore),
        "CUSTODIA_VAULT_KEK_KEYRING_FILE": str(work / "vault-kek-keyring.json"),
        "CUSTODIA_VAULT_SIGNING_SECRET": live.secret,
        "CUSTODIA_VAULT_URL": live.url,
        "CUSTODIA_PUBLIC_URL": app_origin,
        "CUSTODIA_LOG_LEVEL": "DEBUG",
        **settings_env,
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    live.env = env
    cli = [sys.executable, "-m", "custodia.cli", "vault"]
    subprocess.run([*cli, "setup", "--fresh"], env=env, check=True, timeout=120)  # noqa: S603
    with live.log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603
            [*cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_tls(port, ca, process, live.log)
        yield live
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        embedded.drop_database(admin_database(), db_name)


@pytest.fixture(scope="session")
def page_origins() -> Iterator[tuple[str, str]]:
    """Two HTTPS page servers: the app's origin (the one the vault trusts) and a stranger's."""
    app_origin, app_pages = start_page_server()
    other_origin, other_pages = start_page_server()
    yield app_origin, other_origin
    app_pages.shutdown()
    other_pages.shutdown()


@pytest.fixture(scope="session")
def vault(
    tmp_path_factory: pytest.TempPathFactory, page_origins: tuple[str, str]
) -> Iterator[LiveVault]:
    """The live vault of this test session, with the sandbox gateway."""
    with running_vault(tmp_path_factory.mktemp("vault"), "test", *page_origins) as live:
        yield live


@pytest.fixture
def business() -> uuid.UUID:
    return uuid.uuid4()


@pytest.fixture
def other_business() -> uuid.UUID:
    return uuid.uuid4()


def vault_db_password() -> str:
    """The vault role's password (the development secret, which the tests' vaults use too)."""
    return (Path(settings.VAR_DIR) / "secrets" / "vault_db_password").read_text().strip()


def connect_as(role: str, password: str, dbname: str) -> psycopg.Connection:
    """A connection as `role` (not the superuser) to `dbname` on the tests' server."""
    admin = admin_database()
    return psycopg.connect(
        dbname=dbname,
        user=role,
        password=password or None,
        host=admin["HOST"] or None,
        port=admin["PORT"] or None,
        connect_timeout=5,
    )
