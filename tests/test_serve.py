"""The real server: granian with TLS 1.2+, security headers on the wire, HTTP sent to HTTPS."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import struct
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from custodia.ops.management.commands.serve import local_public_url, worker_args
from custodia.testing import launcher
from custodia.vault.client import VaultClient, VaultRefused
from tests.servers import free_port, local_ca, start_server, tls_client_context


@pytest.fixture(scope="module")
def server(django_db_setup: None) -> Iterator[dict[str, Any]]:
    """`custodia serve` against the (committed, empty) test database; anonymous pages only."""
    http_port = free_port()
    base_url, stop = start_server(settings.DATABASES["default"]["NAME"], http_port=http_port)
    try:
        yield {"port": int(base_url.rsplit(":", 1)[1]), "http_port": http_port}
    finally:
        stop()


def https_get(port: int, path: str, method: str = "GET") -> http.client.HTTPResponse:
    connection = http.client.HTTPSConnection(
        "localhost", port, context=tls_client_context(), timeout=10
    )
    connection.request(method, path)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def handshake(port: int, version: ssl.TLSVersion) -> str:
    """The protocol a client limited to `version` negotiates, or an SSLError."""
    context = tls_client_context()
    context.minimum_version = context.maximum_version = version
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return str(tls.version())


def client_hello(version: bytes) -> bytes:
    """A ClientHello for `version` (TLS 1.1 is b"\\x03\\x02") built by hand, so the test does not
    depend on which versions the local OpenSSL still agrees to send."""
    suites = [0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013, 0xC014, 0x002F, 0x0035]
    cipher_bytes = b"".join(struct.pack("!H", suite) for suite in suites)
    name = b"localhost"
    server_name = struct.pack("!HB", len(name) + 3, 0) + struct.pack("!H", len(name)) + name
    signature_algorithms = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0201]
    algorithms = b"".join(struct.pack("!H", algorithm) for algorithm in signature_algorithms)
    extensions = b"".join(
        struct.pack("!HH", kind, len(data)) + data
        for kind, data in (
            (0x0000, server_name),
            (0x000A, struct.pack("!HHH", 4, 0x0017, 0x001D)),  # secp256r1, x25519
            (0x000B, b"\x01\x00"),  # uncompressed points
            (0x000D, struct.pack("!H", len(algorithms)) + algorithms),
            (0xFF01, b"\x00"),  # renegotiation_info
        )
    )
    body = (
        version
        + os.urandom(32)
        + b"\x00"
        + struct.pack("!H", len(cipher_bytes))
        + cipher_bytes
        + b"\x01\x00"
        + struct.pack("!H", len(extensions))
        + extensions
    )
    handshake_message = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake_message)) + handshake_message


def first_record_type(port: int, hello: bytes) -> bytes:
    """The type byte of the server's first TLS record (0x16 handshake, 0x15 alert), or b""."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(hello)
        try:
            return raw.recv(1)
        except ConnectionResetError:
            return b""


def test_tls_12_and_13_are_accepted(server: dict[str, Any]) -> None:
    assert handshake(server["port"], ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    assert handshake(server["port"], ssl.TLSVersion.TLSv1_2) == "TLSv1.2"


def test_tls_11_is_refused(server: dict[str, Any]) -> None:
    # The same hand-built hello is answered with a ServerHello when it asks for TLS 1.2 ...
    assert first_record_type(server["port"], client_hello(b"\x03\x03")) == b"\x16"
    # ... and with an alert or a closed connection when it asks for TLS 1.1.
    assert first_record_type(server["port"], client_hello(b"\x03\x02")) in {b"", b"\x15"}


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_11_client_cannot_connect(server: dict[str, Any]) -> None:
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        handshake(server["port"], ssl.TLSVersion.TLSv1_1)


def test_home_page_carries_the_security_headers(server: dict[str, Any]) -> None:
    response = https_get(server["port"], "/")
    assert response.status == 200
    headers = response.headers
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000; includeSubDomains")
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Permissions-Policy"]


def test_head_is_answered_without_a_body(server: dict[str, Any]) -> None:
    response = https_get(server["port"], "/", method="HEAD")
    assert response.status == 200
    assert response.headers["Content-Security-Policy"]


def test_security_txt_is_served(server: dict[str, Any]) -> None:
    response = https_get(server["port"], "/.well-known/security.txt")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")


def test_static_files_are_served_with_the_security_headers(server: dict[str, Any]) -> None:
    response = https_get(server["port"], "/static/custodia.css")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/css")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD"])
def test_plain_http_is_redirected_to_https(server: dict[str, Any], method: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server["http_port"], timeout=10)
    secret_body = "password=hunter2-do-not-echo"
    body = secret_body if method == "POST" else None
    connection.request(method, "/accounts/login/?next=%2Fapp%2F", body=body)
    response = connection.getresponse()
    answer = response.read()
    connection.close()
    assert response.status == 301
    assert response.headers["Location"] == (
        f"https://127.0.0.1:{server['port']}/accounts/login/?next=%2Fapp%2F"
    )
    assert b"hunter2" not in answer


# --- the two WSGI apps granian runs, without a server ---------------------------------------


class Unreadable:
    """A request body that must never be read."""

    def read(self, *args: Any) -> bytes:
        raise AssertionError("the redirector read the request body")


def call_redirect(
    environ: dict[str, Any], port: int = 8443, origin: str = ""
) -> tuple[str, dict[str, str], bytes]:
    from custodia.ops import redirect

    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    base = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "wsgi.input": Unreadable(),
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CUSTODIA_HTTPS_PORT", str(port))
        patch.setenv("CUSTODIA_REDIRECT_ORIGIN", origin)
        body = b"".join(redirect.app({**base, **environ}, start_response))
    return seen["status"], seen["headers"], body


@pytest.mark.parametrize(
    ("environ", "port", "location"),
    [
        (
            {"HTTP_HOST": "example.com:8080", "PATH_INFO": "/a b/", "QUERY_STRING": "x=1&y=%2F"},
            8443,
            "https://example.com:8443/a%20b/?x=1&y=%2F",
        ),
        ({"HTTP_HOST": "Example.COM"}, 443, "https://example.com/"),
        ({"HTTP_HOST": "[::1]:8080"}, 8443, "https://[::1]:8443/"),
        ({"SERVER_NAME": "localhost"}, 8443, "https://localhost:8443/"),
        # WSGI hands paths over as latin-1 text of the raw bytes; they go back out encoded.
        ({"HTTP_HOST": "h", "PATH_INFO": "/caf\u00c3\u00a9"}, 443, "https://h/caf%C3%A9"),
        ({"HTTP_HOST": "h", "PATH_INFO": "//evil.example/"}, 443, "https://h//evil.example/"),
        (
            {"HTTP_HOST": "h", "QUERY_STRING": "a=\r\nSet-Cookie: x"},
            443,
            "https://h/?a=%0D%0ASet-Cookie:%20x",
        ),
    ],
)
def test_redirector_sends_the_same_url_over_https(environ, port, location):
    status, headers, _body = call_redirect(environ, port)
    assert status == "301 Moved Permanently"
    assert headers["Location"] == location


@pytest.mark.parametrize("host", ["attacker.example", "", "bad host"])
def test_production_redirector_sends_everyone_to_the_public_origin(host):
    _status, headers, _body = call_redirect(
        {"HTTP_HOST": host, "PATH_INFO": "/app/", "QUERY_STRING": "a=1"},
        origin="https://custodia.example.com",
    )
    assert headers["Location"] == "https://custodia.example.com/app/?a=1"


@pytest.mark.parametrize(
    "host", ["", "evil.example\r\nSet-Cookie: a=b", "a/b", "user@host", "-bad", "h:99999999"]
)
def test_redirector_refuses_a_malformed_host(host):
    status, headers, body = call_redirect({"HTTP_HOST": host})
    assert status == "400 Bad Request"
    assert "Location" not in headers
    assert not host or host.encode() not in body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_redirector_never_reads_or_echoes_the_body(method):
    status, headers, body = call_redirect(
        {"REQUEST_METHOD": method, "HTTP_HOST": "h", "CONTENT_LENGTH": "20"}
    )
    assert status.startswith("301")
    assert body == b"This site is served over HTTPS only.\n"


def test_redirector_answers_head_without_a_body():
    status, headers, body = call_redirect({"REQUEST_METHOD": "HEAD", "HTTP_HOST": "h"})
    assert status.startswith("301") and body == b""


def test_app_wrapper_drops_the_body_of_head_and_still_closes_the_response():
    from custodia.wsgi import without_head_body

    closed: list[bool] = []

    class Body(list[bytes]):
        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Any) -> Body:
        start_response("200 OK", [("Content-Length", "5")])
        return Body([b"hello"])

    wrapped = without_head_body(app)
    assert list(wrapped({"REQUEST_METHOD": "HEAD"}, lambda *args: None)) == []
    assert closed == [True]
    assert list(wrapped({"REQUEST_METHOD": "GET"}, lambda *args: None)) == [b"hello"]


def test_locally_the_public_url_follows_the_port_unless_it_is_set() -> None:
    """Its Host check would otherwise refuse `custodia serve --port 9000` at localhost:9000."""
    assert local_public_url(9000, {}, production=False) == "https://localhost:9000"
    assert local_public_url(8443, {}, production=False) == "https://localhost:8443"
    chosen = {"CUSTODIA_PUBLIC_URL": "https://custodia.test:8443"}
    assert local_public_url(9000, chosen, production=False) is None
    assert local_public_url(9000, {}, production=True) is None


def test_serve_leaves_periodic_tasks_to_other_hosts_on_request() -> None:
    """The job worker serve starts keeps every periodic task unless told to leave one out
    (bench/harness.py passes --no-backups)."""
    assert worker_args({})[-1] == "worker"
    left_out = worker_args({"no_backups": True, "no_audit_maintenance": True})
    assert left_out[left_out.index("worker") + 1 :] == [
        "--without",
        "audit-maintenance",
        "--without",
        "backups",
        "--without",
        "keystore-backups",
        "--without",
        "backup-drill",
    ]
    assert worker_args({"no_key_maintenance": True})[-2:] == ["--without", "key-maintenance"]


# --- Supervision: `custodia serve` exits when any of its processes dies ---------------------


def _serve_pid(port: int) -> int:
    """The `custodia serve` process listening (through granian) on `port`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"custodia.cli" in argv and b"serve" in argv and str(port).encode() in argv:
            return int(entry.name)
    raise AssertionError(f"no custodia serve process for port {port}")


def _children(pid: int) -> dict[int, str]:
    """The direct children of `pid` and their command lines."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            argv = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
            found[int(child)] = argv.decode(errors="replace")
    return found


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def test_serve_exits_and_stops_the_others_when_one_child_dies(django_db_setup: None) -> None:
    http_port = free_port()
    base_url, stop = start_server(settings.DATABASES["default"]["NAME"], http_port=http_port)
    port = int(base_url.rsplit(":", 1)[1])
    try:
        pid = _serve_pid(port)
        children = _children(pid)
        vault_port = int(next(
            argv.split("--port ")[1].split()[0]
            for argv in children.values() if "custodia.vault.wsgi" in argv
        ))  # fmt: skip
        # App server, redirector, the job worker (with every periodic task: the harness's
        # server keeps its backups), the password hashing pool, the card vault.
        assert len(children) == 5, children
        (vault,) = [argv for argv in children.values() if "custodia.vault.wsgi" in argv]
        assert "--ssl-certificate" in vault
        (worker,) = [argv for argv in children.values() if "custodia.cli worker" in argv]
        assert "--without" not in worker
        # The vault answers the app's signed requests (the secret they share, the app's origin as
        # the form's return) and nobody else's.
        vault = VaultClient(
            f"https://localhost:{vault_port}",
            settings.VAULT_SIGNING_SECRET,
            ca_file=settings.VAULT_CA_FILE,
        )
        form = vault.create_form(uuid.uuid4(), f"{base_url}/cards/added")
        assert form.form_url.startswith(f"https://localhost:{vault_port}/form/")
        stranger = VaultClient(
            f"https://localhost:{vault_port}",
            "x" * 40 + "another secret",
            ca_file=settings.VAULT_CA_FILE,
        )
        with pytest.raises(VaultRefused) as refused:
            stranger.create_form(uuid.uuid4(), f"{base_url}/cards/added")
        assert refused.value.status == 401
        assert any("custodia.accounts.hashpool" in argv for argv in children.values())
        victim = next(child for child, argv in children.items() if "custodia.cli worker" in argv)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] == "Z":  # exited; its parent (this test) has not reaped it yet
                # The last field is the wait status: a child's death is a failure exit.
                assert int(fields[-1]) >> 8 != 0, fields[-1]
                break
            time.sleep(0.2)
        else:
            raise AssertionError("custodia serve kept running after a child died")
        # Nothing is left serving: neither the app, the redirector nor the vault.
        assert not _listening(port) and not _listening(http_port)
        assert not _listening(vault_port)
        for child in children:
            assert not Path(f"/proc/{child}").exists(), children[child]
    finally:
        stop()


@pytest.mark.parametrize(
    "arguments",
    [
        ["--port", "9443", "--vault-port", "9443"],
        ["--port", "9443", "--http-port", "9080", "--vault-port", "9080"],
        ["--vault-port", "0"],
    ],
)
def test_serve_refuses_a_vault_port_it_cannot_use(arguments: list[str]) -> None:
    with pytest.raises(CommandError, match="--vault-port must"):
        call_command("serve", *arguments)


def test_serve_without_a_vault_starts_none(django_db_setup: None) -> None:
    """`--no-vault`: the vault runs on another host; nothing listens for it here."""
    server = launcher.start(
        {
            **os.environ,
            "CUSTODIA_DB_NAME": settings.DATABASES["default"]["NAME"],
            "CUSTODIA_PUBLIC_URL": "https://localhost:1",
        },
        ca=local_ca(),
        serve_args=("--workers", "1", "--threads", "2", "--no-vault", "--no-backups"),
        timeout_seconds=60,
    )
    try:
        children = _children(_serve_pid(server.port))
        assert len(children) == 3, children  # app server, worker, hashing pool
        assert not [argv for argv in children.values() if "custodia.vault" in argv]
    finally:
        server.stop()
