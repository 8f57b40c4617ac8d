"""/healthz touches nothing; /readyz names each check ok or failing, with real failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from custodia.crypto import keyring
from custodia.ops import redirect
from tests.conftest import HttpsClient

pytestmark = pytest.mark.django_db


def heartbeat(seconds_ago: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_workers")
        cursor.execute(
            "INSERT INTO procrastinate_workers (last_heartbeat)"
            " VALUES (now() - make_interval(secs => %s))",
            [seconds_ago],
        )


def no_worker() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_workers")


def test_liveness_answers_without_touching_the_database_or_setting_a_cookie(matrix, web_as):
    for client in (HttpsClient(), web_as(matrix.a.owner)):
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert len(queries) == 0
        assert not response.cookies
        assert response["Cache-Control"] == "no-store"


def test_probes_answer_any_host_name_a_load_balancer_uses(db):
    # The host check (PublicHostMiddleware) comes after them: a balancer names a node by address.
    response = HttpsClient().get("/healthz", HTTP_HOST="10.1.2.3:8443")
    assert response.status_code == 200
    # Pages still refuse it.
    assert HttpsClient().get("/security/", HTTP_HOST="10.1.2.3:8443").status_code == 400


def test_ready_when_database_keys_and_a_worker_answer(matrix):
    heartbeat(2)
    response = HttpsClient().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "keystore": "ok", "worker": "ok"},
    }


@pytest.mark.parametrize("stale", [None, 3600])
def test_no_recent_worker_heartbeat_is_a_503_naming_the_worker(matrix, stale):
    no_worker() if stale is None else heartbeat(stale)
    response = HttpsClient().get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "not ready",
        "checks": {"database": "ok", "keystore": "ok", "worker": "failing"},
    }


def test_an_unreadable_keystore_is_a_503_naming_the_keystore(settings, tmp_path, db):
    heartbeat(1)
    settings.KEYSTORE_DIR = tmp_path
    (tmp_path / f"{uuid.uuid4()}.json").write_text("{not a key file")
    keyring.reset()
    try:
        response = HttpsClient().get("/readyz")
    finally:
        keyring.reset()
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "keystore": "failing", "worker": "ok"}
    assert b"json" not in response.content.lower()  # no reason, no path in the answer


def test_probes_make_no_session_and_no_audit_row(matrix, web_as):
    heartbeat(1)
    owner = web_as(matrix.a.owner)
    with CaptureQueriesContext(connection) as queries:
        for path in ("/healthz", "/readyz", "/metrics"):
            response = owner.get(path)
            assert not response.cookies, path
    statements = {query["sql"].lstrip().split()[0].upper() for query in queries.captured_queries}
    assert statements <= {"SELECT"}, statements
    assert not any("audit" in query["sql"] for query in queries.captured_queries)


def test_probes_refuse_other_methods(db):
    for path in ("/healthz", "/readyz", "/metrics"):
        assert HttpsClient().post(path).status_code == 405


READY_IN_SUBPROCESS = """
import django, json
django.setup()
from django.test import Client
response = Client().get("/readyz", secure=True)
print(json.dumps({"status": response.status_code, "body": response.json()}))
"""


def test_a_database_that_cannot_be_reached_is_a_503_naming_the_database(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "custodia.settings",
        # The server is there; the database is not: every connection is refused.
        "CUSTODIA_DB_NAME": f"custodia_missing_{uuid.uuid4().hex[:8]}",
    }
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", READY_IN_SUBPROCESS],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 503
    assert answer["body"]["status"] == "not ready"
    assert answer["body"]["checks"]["database"] == "failing"
    assert answer["body"]["checks"]["worker"] == "failing"
    assert "custodia_missing" not in result.stdout


def test_the_plain_http_listener_redirects_probes_too():
    # Documented: health checks go to the HTTPS port; the redirector runs no Django at all.
    answers: list[str] = []
    environ = {"HTTP_HOST": "10.1.2.3:8080", "PATH_INFO": "/healthz", "REQUEST_METHOD": "GET"}
    redirect.app(environ, lambda status, headers: answers.append(status))
    assert answers == ["301 Moved Permanently"]
