"""kill -9 of the web server in the middle of writes: no committed record is lost, none is half
written, and the audit trail still verifies.

The real `custodia serve` (granian over TLS) takes client records through the API from several
threads; the whole server is then killed with SIGKILL while requests are in flight. Afterwards,
read as the database's administrator (no row-level security): every record the API answered 201
for is there; every record that is there has its home-access row and its `client.create` audit
event, written in the same transaction (nothing half-written); `custodia audit verify` passes;
and a restarted server serves the records and takes new ones.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from django.conf import settings

from custodia import embedded
from tests.servers import (
    create_business,
    custodia,
    prepare_server_database,
    start_server,
    tls_client_context,
)

OWNER = "owner@crash.example.test"
PASSWORD = "copper kettle meadow 4471"
THREADS = 6
# Killed once this many records are committed, while the threads keep posting.
COMMITTED_BEFORE_KILL = 25


@dataclass
class Posted:
    committed: dict[str, str] = field(default_factory=dict)  # id -> name, answered 201
    failures: list[str] = field(default_factory=list)  # anything but 201 before the kill
    cut: int = 0  # requests the kill cut off (their outcome is the database's to say)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _admin() -> dict[str, str]:
    admin = dict(settings.ADMIN_DATABASE)
    if settings.EMBEDDED_DATABASE:
        admin["HOST"] = str(embedded.embedded_socket_dir(settings.EMBEDDED_PGDATA))
    return admin


@pytest.fixture
def database(django_db_setup: None) -> Iterator[tuple[str, str]]:
    """A database of its own with one business and an API token of its owner."""
    name = f"custodia_crash_{os.getpid()}"
    prepare_server_database(name)
    try:
        create_business(name, "Crash", OWNER, PASSWORD)
        created = custodia(
            name, "token", "create", "--email", OWNER,
            "--scopes", "clients:record:read,clients:record:write,clients:access:read",
        )  # fmt: skip
        yield name, created.strip().splitlines()[-1]
    finally:
        embedded.drop_database(_admin(), name)


def _post(port: int, token: str, body: dict[str, str]) -> tuple[int, dict[str, str]]:
    connection = http.client.HTTPSConnection(
        "localhost", port, context=tls_client_context(), timeout=30
    )
    try:
        connection.request(
            "POST",
            "/api/v1/clients",
            body=json.dumps(body),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"{}")
    finally:
        connection.close()


def _get(port: int, token: str, path: str) -> tuple[int, dict[str, str]]:
    connection = http.client.HTTPSConnection(
        "localhost", port, context=tls_client_context(), timeout=30
    )
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"{}")
    finally:
        connection.close()


def _writer(port: int, token: str, number: int, posted: Posted, killed: threading.Event) -> None:
    for sequence in range(10_000):
        if killed.is_set():
            return
        name = f"Crash client {number}-{sequence}"
        try:
            status, body = _post(port, token, {"name": name, "door_code": f"{number}{sequence}"})
        except (OSError, http.client.HTTPException):
            with posted.lock:
                posted.cut += 1
            return
        with posted.lock:
            if status == 201:
                posted.committed[body["id"]] = name
            elif not killed.is_set():
                posted.failures.append(f"{status} {body}")


def _stored(db_name: str) -> tuple[set[str], set[str], set[str]]:
    """Client ids, ids with home access, ids with a `client.create` event: as the administrator."""
    with embedded.admin_connection(_admin(), db_name) as conn:
        clients = {str(r[0]) for r in conn.execute("SELECT id FROM clients_client")}
        access = {str(r[0]) for r in conn.execute("SELECT client_id FROM clients_homeaccess")}
        events = {
            str(r[0])
            for r in conn.execute(
                "SELECT target_id FROM audit_auditevent WHERE action = 'client.create'"
            )
        }
    return clients, access, events


def test_a_server_killed_mid_write_loses_nothing_committed_and_leaves_nothing_half_written(
    database: tuple[str, str],
) -> None:
    db_name, token = database
    base_url, stop = start_server(db_name)
    port = int(base_url.rsplit(":", 1)[1])
    posted, killed = Posted(), threading.Event()
    writers = [
        threading.Thread(target=_writer, args=(port, token, n, posted, killed), daemon=True)
        for n in range(THREADS)
    ]
    try:
        for writer in writers:
            writer.start()
        deadline = time.monotonic() + 120
        while len(posted.committed) < COMMITTED_BEFORE_KILL and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(posted.committed) >= COMMITTED_BEFORE_KILL, posted.failures[:3]
    finally:
        killed.set()
        stop(kill=True)  # SIGKILL to granian and its workers with requests in flight
    for writer in writers:
        writer.join(timeout=60)
    assert posted.failures == []
    assert posted.cut >= 1  # the kill did land mid-request

    clients, access, events = _stored(db_name)
    assert set(posted.committed) <= clients  # every 201 survived the crash
    assert access == clients  # each record whole: its home access row came with it
    assert events == clients  # and its audit event, in the same transaction
    assert "verified" in custodia(db_name, "audit", "verify")

    base_url, stop = start_server(db_name)
    port = int(base_url.rsplit(":", 1)[1])
    try:
        some_id, some_name = next(iter(posted.committed.items()))
        status, body = _get(port, token, f"/api/v1/clients/{some_id}")
        assert (status, body["name"]) == (200, some_name)  # still opens under the business key
        status, body = _post(port, token, {"name": "After the crash"})
        assert status == 201
    finally:
        stop()
