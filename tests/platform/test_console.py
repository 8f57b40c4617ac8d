"""The operator console, attacked first: who else reaches it (nobody), an operator without a
factor (nothing but enrolment), a stale step-up (no change), and what an operator reaches of
the businesses (no customer data: 404 on their pages, 401 from the API, zero rows in the
operator's database context even with hand-set settings)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from custodia.clients.models import Client
from custodia.core.actor import acting_as
from custodia.core.audit import AuditAction
from custodia.core.dbcontext import set_db_context
from custodia.core.permissions import Permission
from custodia.lifecycle.backups import DrillResult, LocalStore, drill_module
from custodia.platform.actions import do_submit_report
from custodia.platform.models import ReportStatus, VulnerabilityReport
from custodia.scheduling.models import Visit
from custodia.tenancy.actors import OperatorActor
from custodia.tenancy.models import Membership
from tests.acting import act
from tests.conftest import HttpsClient
from tests.lifecycle.test_backup_retention import fake_backup
from tests.platform.support import (
    STALE,
    all_reports,
    make_operator,
    platform_events,
    prove_now,
    signed_in,
)

pytestmark = pytest.mark.django_db


def a_report(email: str = "finder@research.example") -> VulnerabilityReport:
    return do_submit_report(
        summary="Stored XSS in the visit notes",
        details="Put <script>alert(1)</script> in a note; SECRET-DETAIL-MARKER.",
        reporter_email=email,
    )


def console_urls(report: VulnerabilityReport) -> list[tuple[str, str]]:
    """Every console URL, with the method that acts on it."""
    return [
        ("get", reverse("operator_console")),
        ("get", reverse("operator_report", args=[report.pk])),
        ("get", reverse("operator_backups")),
        ("get", reverse("operator_businesses")),
        ("post", reverse("operator_report_respond", args=[report.pk])),
        ("post", reverse("operator_report_status", args=[report.pk])),
    ]


POSTED = {"response": "Thanks, we are on it.", "status": "resolved"}


def test_business_members_get_404_and_visitors_are_sent_to_log_in(matrix, web_as):
    report = a_report()
    a = matrix.a
    for actor in (a.owner, a.manager, a.staff, a.client_login, matrix.outsider):
        browser = web_as(actor)
        for method, url in console_urls(report):
            answer = getattr(browser, method)(url, POSTED)
            assert answer.status_code == 404, (actor.role, url)
            assert b"SECRET-DETAIL-MARKER" not in answer.content
    visitor = HttpsClient()
    for method, url in console_urls(report):
        answer = getattr(visitor, method)(url, POSTED)
        assert answer.status_code == 302, url
        assert answer["Location"].startswith(reverse("account_login"))
    operator = make_operator()
    [stored] = all_reports(operator)
    assert stored.first_response_at is None and stored.status == ReportStatus.NEW


def test_an_operator_without_a_factor_gets_nothing_but_enrolment():
    report = a_report()
    operator = make_operator(factor=False)
    browser = signed_in(operator)
    for method, url in console_urls(report):
        answer = getattr(browser, method)(url, POSTED)
        assert answer.status_code == 302, url
        assert answer["Location"] == reverse("mfa_index"), url
    page = browser.get(reverse("mfa_index"))
    assert page.status_code == 200
    assert b"platform operators" in page.content
    [stored] = all_reports(operator)
    assert stored.first_response_at is None and stored.status == ReportStatus.NEW


def test_with_a_stale_step_up_every_post_is_refused_until_reauthentication(smtp_server):
    report = a_report()
    operator = make_operator()
    sent = len(smtp_server.wait_for(2))  # the acknowledgement, the operator's link
    browser = signed_in(operator, proved_ago=STALE)
    assert browser.get(reverse("operator_report", args=[report.pk])).status_code == 200
    for _method, url in console_urls(report)[4:]:
        answer = browser.post(url, POSTED)
        assert answer.status_code == 302, url
        assert answer["Location"].startswith(reverse("step_up")), url
    [stored] = all_reports(operator)
    assert stored.first_response_at is None and stored.status == ReportStatus.NEW
    assert len(smtp_server.messages) == sent

    prove_now(browser, operator)
    answer = browser.post(console_urls(report)[4][1], POSTED)
    assert answer.status_code == 302
    assert answer["Location"] == reverse("operator_report", args=[report.pk])
    [stored] = all_reports(operator)
    assert stored.first_response_at is not None
    assert stored.first_response_by_id == operator.pk
    assert stored.status == ReportStatus.TRIAGED


def test_the_console_lists_reports_overdue_first_and_marked():
    operator = make_operator()
    old, fresh, answered = a_report(), a_report(), a_report()
    set_db_context(user_id=operator.pk)
    now = timezone.now()
    # The clock moves through the stored times.
    VulnerabilityReport.objects.filter(pk=old.pk).update(received_at=now - dt.timedelta(hours=25))
    VulnerabilityReport.objects.filter(pk=fresh.pk).update(received_at=now - dt.timedelta(hours=2))
    VulnerabilityReport.objects.filter(pk=answered.pk).update(
        received_at=now - dt.timedelta(hours=30),
        first_response_at=now - dt.timedelta(hours=29),
        first_response_by=operator,
    )
    page = signed_in(operator).get(reverse("operator_console"))
    assert page.status_code == 200
    html = page.content.decode()
    positions = [html.index(str(report.reference)) for report in (old, fresh, answered)]
    assert positions == sorted(positions)
    assert html.count(">Overdue<") == 1
    assert "1 overdue now" in html
    overdue_row = html[html.rindex("<tr", 0, positions[0]) : positions[1]]
    assert "Overdue" in overdue_row
    assert "Answered after" in html[positions[2] :]
    # Answered, it is no longer overdue, however old.
    assert not VulnerabilityReport.objects.get(pk=answered.pk).is_overdue(now)
    assert platform_events(operator, AuditAction.OPERATOR_CONSOLE_READ)[-1][2] == {
        "page": "reports",
        "count": 3,
    }


def test_a_status_change_is_recorded_and_audited():
    report = a_report("")
    operator = make_operator()
    browser = signed_in(operator)
    answer = browser.post(
        reverse("operator_report_status", args=[report.pk]), {"status": "not_applicable"}
    )
    assert answer.status_code == 302
    [stored] = all_reports(operator)
    assert stored.status == ReportStatus.NOT_APPLICABLE
    bad = browser.post(reverse("operator_report_status", args=[report.pk]), {"status": "gone"})
    assert bad.status_code == 400
    assert b"Select a valid choice" in bad.content
    [(_type, _id, detail)] = platform_events(operator, AuditAction.REPORT_STATUS)
    assert detail == {"reference": report.reference, "from": "new", "to": "not_applicable"}
    unknown = browser.get(reverse("operator_report", args=[uuid.uuid4()]))
    assert unknown.status_code == 404


def test_an_operator_gets_404_on_business_pages_and_nothing_from_the_api(matrix):
    operator = make_operator()
    browser = signed_in(operator)
    act(matrix.a.owner)
    client_id = Client.objects.values_list("pk", flat=True).first()
    assert client_id is not None
    # The dashboard, where a sign-in lands, sends an operator to the console; every other
    # business page is not found.
    landing = browser.get("/app/")
    assert landing.status_code == 302 and landing["Location"] == "/operator/"
    for url in ("/app/clients/", f"/app/clients/{client_id}/", "/app/audit/"):
        answer = browser.get(url)
        assert answer.status_code == 404, url
    for url in ("/api/v1/clients", f"/api/v1/clients/{client_id}"):
        answer = browser.get(url)
        assert answer.status_code == 401, url
        assert str(client_id).encode() not in answer.content
    # Nor can they make themselves an API token: the token pages are business pages.
    assert browser.get("/app/security/tokens/").status_code == 404


def test_the_operator_context_reads_no_customer_rows_even_with_hand_set_settings(matrix):
    owner = matrix.a.owner
    act(owner)
    assert Client.objects.count() > 0  # what the operator must not see is there
    operator = make_operator()
    actor = OperatorActor(operator, Membership(id=None, tenant_id=None, user=operator, role=""))
    with acting_as(actor):
        assert Client.objects.count() == 0
        assert Visit.objects.count() == 0
        assert Membership.objects.exclude(user=operator).count() == 0
        with connection.cursor() as cursor:
            # The app role's session setting the old settings by hand changes nothing.
            cursor.execute(
                "SELECT set_config('custodia.tenant_id', %s, true),"
                " set_config('custodia.role', 'owner', true)",
                [str(owner.tenant_id)],
            )
            cursor.execute("SELECT count(*) FROM clients_client")
            assert cursor.fetchone() == (0,)
            cursor.execute("SELECT count(*) FROM scheduling_visit")
            assert cursor.fetchone() == (0,)
        assert not any(actor.can(permission) for permission in Permission)


def test_the_businesses_page_shows_names_dates_and_counts_only(matrix):
    act(matrix.a.owner)
    client_names = list(Client.objects.values_list("name", flat=True))
    operator = make_operator()
    page = signed_in(operator).get(reverse("operator_businesses"))
    assert page.status_code == 200
    html = page.content.decode()
    for business in (matrix.a, matrix.b):
        assert business.owner.business.name in html
    for name in client_names:
        assert name not in html
    assert matrix.a.staff.user.email not in html
    # Business A: owner, manager, two staff and a client login.
    act(matrix.a.owner)
    members = Membership.objects.filter(tenant_id=matrix.a.owner.tenant_id, is_active=True)
    assert f'<td data-label="Members">{members.count()}</td>' in html
    assert platform_events(operator, AuditAction.OPERATOR_CONSOLE_READ)[-1][2]["page"] == (
        "businesses"
    )


def test_the_backups_page_lists_the_store_and_the_drills_latest_first(settings, tmp_path):
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.BACKUP_DRILL_LOG_FILE = tmp_path / "drills.log"
    settings.BACKUP_DIR.mkdir()
    store = LocalStore(settings.BACKUP_DIR)
    now = timezone.now().replace(microsecond=0)
    older = fake_backup(store, now - dt.timedelta(days=2))
    newer = fake_backup(store, now - dt.timedelta(days=1))
    (settings.BACKUP_DIR / older.payload_name).unlink()  # a backup with a problem
    drill_module.record_drill(
        DrillResult(
            older.id, True, "restored and checked", at=(now - dt.timedelta(days=2)).isoformat()
        )
    )
    drill_module.record_drill(
        DrillResult(
            newer.id, False, "chain check failed", at=(now - dt.timedelta(hours=3)).isoformat()
        )
    )
    operator = make_operator()
    page = signed_in(operator).get(reverse("operator_backups"))
    assert page.status_code == 200
    html = page.content.decode()
    assert html.index(newer.id) < html.index(older.id)  # backups, latest first
    assert "its encrypted file is missing" in html
    drills = html[: html.index("Backups in")]
    assert drills.index("chain check failed") < drills.index("restored and checked")
    assert drills.count(">Failed<") == 1 and drills.count(">Passed<") == 1
    assert platform_events(operator, AuditAction.OPERATOR_CONSOLE_READ)[-1][2] == {
        "page": "backups",
        "count": 4,
    }
    # A drill log altered by hand is reported, not shown as if sound.
    log = settings.BACKUP_DRILL_LOG_FILE
    log.write_text(log.read_text().replace("chain check failed", "all fine"))
    altered = signed_in(operator).get(reverse("operator_backups")).content.decode()
    assert "The drill log cannot be trusted" in altered
