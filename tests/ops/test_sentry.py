"""Sentry gets an event for an error, and no value a request or a customer brought.

A local HTTP server takes the SDK's envelopes (the real transport, gzip and all); the app runs
in-process with Sentry started by telemetry/sentry.py and a view that fails with a client's
name and door code in its locals, its log line and its exception's message.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk

from custodia.telemetry import sentry
from tests.ops.failing_urls import CLIENT_NAME, DOOR_CODE

MARKERS = {
    "name": CLIENT_NAME,
    "door": DOOR_CODE,
    "body": "Marker-Body-5512",
    "query": "Marker-Query-7734",
    "cookie": "Marker-Cookie-9920",
    "header": "Marker-Header-3307",
    "agent": "Marker-Agent-6161",
    "path": "Marker-Path-2719",
    "bearer": "Marker-Bearer-4402",
}


class Envelopes(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding:
            raise AssertionError(f"unexpected Content-Encoding {encoding}")
        type(self).received.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def sentry_server() -> Iterator[list[bytes]]:
    Envelopes.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Envelopes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sentry.start(f"http://public@127.0.0.1:{server.server_port}/1", environment="test")
    try:
        yield Envelopes.received
    finally:
        client = sentry_sdk.get_client()
        client.close()
        sentry_sdk.get_global_scope().set_client(None)
        server.shutdown()
        server.server_close()


@pytest.mark.urls("tests.ops.failing_urls")
def test_an_error_reaches_sentry_without_any_marker(sentry_server, matrix, web_as):
    web = web_as(matrix.a.owner)
    web.raise_request_exception = False
    web.cookies["preferences"] = MARKERS["cookie"]
    response = web.post(
        f"/failing/{MARKERS['path']}/?q={MARKERS['query']}",
        {"note": MARKERS["body"]},
        HTTP_X_NOTE=MARKERS["header"],
        HTTP_USER_AGENT=MARKERS["agent"],
        HTTP_AUTHORIZATION=f"Bearer {MARKERS['bearer']}",
    )
    assert response.status_code == 500
    sentry_sdk.flush(timeout=10)
    received = b"\n".join(sentry_server)
    # An event of the error came: its type and where it was raised, under the URL's pattern.
    assert b'"type":"ValueError"' in received.replace(b" ", b"")
    assert b"save_note" in received
    assert b"failing/" in received
    for what, marker in MARKERS.items():
        assert marker.encode() not in received, what
    person = matrix.a.owner.user
    for value in (person.email, str(person.pk), str(matrix.a.owner.tenant_id), "testserver"):
        assert value.encode() not in received, value


def test_the_scrubber_keeps_only_what_locates_a_bug():
    marker = "Marker-Extra-1188"
    event = {
        "event_id": "e1",
        "level": "error",
        "transaction": "/app/clients/{client_id}/",
        "user": {"email": f"{marker}@example.test", "ip_address": "203.0.113.9"},
        "extra": {"note": marker},
        "tags": {"route": "client_detail"},
        "contexts": {"runtime": {"name": "CPython"}, "client": {"name": marker}},
        "request": {
            "method": "POST",
            "url": f"https://custodia.example/app/clients/{marker}/",
            "query_string": f"q={marker}",
            "data": {"note": marker},
            "cookies": {"sessionid": marker},
            "env": {"REMOTE_ADDR": "203.0.113.9"},
            "headers": {"Content-Type": "text/html", "Authorization": marker, "X-Note": marker},
        },
        "logentry": {"message": "saving %s failed", "params": [marker], "formatted": marker},
        "exception": {
            "values": [
                {
                    "type": "KeyError",
                    "value": marker,
                    "stacktrace": {
                        "frames": [{"function": "save", "lineno": 3, "vars": {"door": marker}}]
                    },
                }
            ]
        },
        "breadcrumbs": {
            "values": [{"category": "query", "message": marker, "data": {"params": [marker]}}]
        },
    }
    scrubbed = sentry.scrub_event(event)
    assert marker not in repr(scrubbed)
    assert "203.0.113.9" not in repr(scrubbed)
    assert scrubbed["request"] == {"method": "POST", "headers": {"Content-Type": "text/html"}}
    assert scrubbed["exception"]["values"][0]["type"] == "KeyError"
    assert scrubbed["exception"]["values"][0]["stacktrace"]["frames"] == [
        {"function": "save", "lineno": 3}
    ]
    assert scrubbed["logentry"] == {"message": "saving %s failed"}
    assert scrubbed["contexts"] == {"runtime": {"name": "CPython"}}
    assert scrubbed["breadcrumbs"]["values"] == [{"category": "query"}]
    assert scrubbed["transaction"] == "/app/clients/{client_id}/"


STARTED = """
import sys, django
django.setup()
if "sentry_sdk" not in sys.modules:
    print("not loaded")
else:
    import sentry_sdk
    from custodia.telemetry import sentry
    options = sentry_sdk.get_client().options
    print(sentry_sdk.get_client().is_active(), options["before_send"] is sentry.scrub_event,
          options["send_default_pii"], options["include_local_variables"])
"""


def run_started(env: dict[str, str]) -> str:
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", STARTED],
        env={
            **{key: value for key, value in os.environ.items() if key != "CUSTODIA_SENTRY_DSN"},
            "DJANGO_SETTINGS_MODULE": "custodia.settings",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


def test_the_sdk_starts_with_a_dsn_and_is_not_even_loaded_without_one():
    assert run_started({}) == "not loaded"
    started = run_started({"CUSTODIA_SENTRY_DSN": "http://public@127.0.0.1:9/1"})
    assert started == "True True False False"
