"""/metrics answers its token's bearer alone; its labels name routes, never ids or people."""

from __future__ import annotations

import datetime as dt
import re
import secrets

import pytest
import time_machine
from django.conf import settings
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from custodia.accounts import throttle
from custodia.telemetry.state import forget_slow_state
from tests.conftest import HttpsClient

# The scrape reads the audit checkpoints as the owner role, as `audit verify` does.
pytestmark = pytest.mark.django_db(databases=["default", "owner"])

TOKEN = secrets.token_urlsafe(32)
UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
# docs/operations.md lists these; a scrape shows every one.
DOCUMENTED = [
    "custodia_http_requests_total",
    "custodia_http_request_duration_seconds_bucket",
    "custodia_login_failures_total",
    "custodia_jobs",
    "custodia_worker_heartbeat_age_seconds",
    "custodia_sign_in_paused",
    "custodia_audit_verification_age_seconds",
    "custodia_backup_age_seconds",
    "custodia_restore_drill_age_seconds",
    "custodia_restore_drill_ok",
    "custodia_data_key_oldest_age_seconds",
    "custodia_data_keys_rotation_overdue",
]


@pytest.fixture
def metrics_token(settings, tmp_path):
    settings.METRICS_TOKEN = TOKEN
    # Nothing of the shared var/ directory: no backups, no drills yet.
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.BACKUP_DRILL_LOG_FILE = tmp_path / "drills.jsonl"
    forget_slow_state()
    yield TOKEN
    forget_slow_state()


def scrape(client: HttpsClient | None = None) -> str:
    client = client or HttpsClient()
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content[:200]
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return response.content.decode()


def value(text: str, sample: str) -> float:
    """The value of the sample line starting with `sample` (name and labels)."""
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {sample}")


def assert_refused(response) -> None:
    assert response.status_code == 404
    assert b"custodia_" not in response.content and b"# HELP" not in response.content
    assert not response.cookies


def test_the_public_gets_a_404_without_any_metric(metrics_token, web):
    assert_refused(web.get("/metrics"))


@pytest.mark.parametrize(
    "header",
    [
        "Bearer wrong-token",
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN}x",
        f"Basic {TOKEN}",
        TOKEN,
        "Bearer ",
    ],
)
def test_a_wrong_token_gets_a_404(metrics_token, web, header):
    assert_refused(web.get("/metrics", HTTP_AUTHORIZATION=header))


def test_an_owners_session_gets_a_404(metrics_token, matrix, web_as):
    assert_refused(web_as(matrix.a.owner).get("/metrics"))


def test_an_owners_api_token_gets_a_404(metrics_token, matrix, api_as):
    assert_refused(api_as(matrix.a.owner).get("/metrics"))


def test_no_token_configured_means_a_404_for_everyone(settings, web):
    settings.METRICS_TOKEN = ""
    assert_refused(web.get("/metrics", HTTP_AUTHORIZATION="Bearer "))
    assert_refused(web.get("/metrics", HTTP_AUTHORIZATION="Bearer anything"))


def test_the_token_gets_every_documented_metric(metrics_token, db):
    text = scrape()
    for name in DOCUMENTED:
        assert re.search(rf"^{name}(\{{| )", text, re.M), name


def test_requests_are_counted_by_route_name_and_status_class(metrics_token, matrix, web_as):
    owner = web_as(matrix.a.owner)
    client_id = matrix.a.client.id
    before = scrape()
    detail = 'custodia_http_requests_total{method="GET",route="client_detail",status="2xx"}'
    missing = 'custodia_http_requests_total{method="GET",route="client_detail",status="4xx"}'
    start_ok = value(before, detail) if detail in before else 0.0
    start_missing = value(before, missing) if missing in before else 0.0
    assert owner.get(reverse("client_detail", args=[client_id])).status_code == 200
    # Another business's client, and an id that exists nowhere: 404s, by route all the same.
    assert owner.get(reverse("client_detail", args=[matrix.b.client.id])).status_code == 404
    unknown = "0b7c59ac-0000-4000-8000-00000000abcd"
    assert owner.get(reverse("client_detail", args=[unknown])).status_code == 404
    after = scrape()
    assert value(after, detail) == start_ok + 1
    assert value(after, missing) == start_missing + 2


def test_no_label_carries_an_id_an_address_or_a_name(metrics_token, matrix, web_as, api_as):
    owner, api = web_as(matrix.a.owner), api_as(matrix.a.owner)
    ids = [str(matrix.a.client.id), str(matrix.b.client.id), str(matrix.a.visit.id)]
    owner.get(reverse("client_detail", args=[ids[0]]))
    owner.get(f"/app/clients/{ids[1]}/?q=Alpha+Client")
    api.get(f"/api/v1/clients/{ids[0]}")
    api.get(f"/api/v1/clients/{ids[1]}")
    owner.get(f"/no/such/page/{ids[2]}/")
    text = scrape()
    labels = " ".join(re.findall(r"\{[^}]*\}", text))
    assert "client_detail" in labels and "unmatched" in labels
    assert not UUID.search(labels), UUID.search(labels)
    for person in (matrix.a.owner.user.email, "Alpha Client", str(matrix.a.owner.tenant_id)):
        assert person not in text


def test_failed_sign_ins_are_counted_and_paused_accounts_gauged(metrics_token, matrix, web):
    before = scrape()
    web.post(reverse("account_login"), {"login": matrix.a.owner.user.email, "password": "nope"})
    web.post(reverse("account_login"), {"login": "nobody@example.test", "password": "nope"})
    after = scrape()
    failures = "custodia_login_failures_total"
    assert value(after, failures) == value(before, failures) + 2
    assert value(after, "custodia_sign_in_paused") == value(before, "custodia_sign_in_paused")
    for _ in range(settings.LOGIN_LOCKOUT_THRESHOLD):
        throttle.record_failure("paused@example.test")
    assert (
        value(scrape(), "custodia_sign_in_paused") == value(before, "custodia_sign_in_paused") + 1
    )


def test_job_queue_and_worker_gauges_come_from_procrastinates_tables(metrics_token, db):
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_workers")
        cursor.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status) VALUES"
            " ('default', 'custodia.test', '{}', 'failed'), ('default', 'custodia.test', '{}',"
            " 'todo'), ('default', 'custodia.test', '{}', 'todo')"
        )
    text = scrape()
    assert value(text, 'custodia_jobs{state="failed"}') >= 1
    assert value(text, 'custodia_jobs{state="todo"}') >= 2
    assert value(text, "custodia_worker_heartbeat_age_seconds") != value(
        text, "custodia_worker_heartbeat_age_seconds"
    )  # NaN: no worker ever seen
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '90 s')"
        )
    assert 85 <= value(scrape(), "custodia_worker_heartbeat_age_seconds") < 600


def test_no_backup_or_drill_yet_is_no_value(metrics_token, db):
    text = scrape()
    for gauge in ("custodia_backup_age_seconds", "custodia_restore_drill_age_seconds"):
        assert value(text, gauge) != value(text, gauge), gauge  # NaN


def test_data_keys_past_their_rotation_period_are_counted(metrics_token, matrix):
    fresh = scrape()
    assert value(fresh, "custodia_data_keys_rotation_overdue") == 0
    assert value(fresh, "custodia_data_key_oldest_age_seconds") >= 0
    forget_slow_state()
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=400)):
        later = scrape()
    # The matrix's two businesses at least (the test keystore may hold earlier tests' keys).
    assert value(later, "custodia_data_keys_rotation_overdue") >= 2
    assert value(later, "custodia_data_key_oldest_age_seconds") >= 400 * 86400 - 60


def test_a_scrape_writes_nothing_and_sets_no_cookie(metrics_token, matrix, web_as):
    owner = web_as(matrix.a.owner)
    with CaptureQueriesContext(connection) as queries:
        response = owner.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert not response.cookies
    assert response["Cache-Control"] == "no-store"
    statements = [query["sql"].lstrip().split()[0].upper() for query in queries.captured_queries]
    assert set(statements) <= {"SELECT"}, statements


def test_audit_verification_age_is_the_chain_checkpointed_longest_ago(metrics_token, matrix):
    owner = connections["owner"]
    with owner.cursor() as cursor:
        for tenant, hours in ((matrix.a.owner.tenant_id, 30), (matrix.b.owner.tenant_id, 2)):
            # A chain's newest checkpoint counts: Alpha's was also signed an hour ago.
            for ago in (hours, 1) if tenant == matrix.a.owner.tenant_id else (hours,):
                cursor.execute(
                    "INSERT INTO audit_checkpoint"
                    " (tenant_id, made_at, reason, statement, signature, key_id)"
                    " VALUES (%s, now() - make_interval(hours => %s), 'test', '{}', '\\x00', 'k')",
                    [tenant, ago],
                )
    age = value(scrape(), "custodia_audit_verification_age_seconds")
    # Alpha's newest is an hour old, Bravo's two hours: Bravo's chain is the one to worry about.
    assert 2 * 3600 - 60 <= age < 3 * 3600
