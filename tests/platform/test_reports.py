"""Vulnerability reports: security.txt names the form; the form stores a report, acknowledges it
at once by email (its reference, never its text), refuses bad input with messages and floods
with 429; only an operator's context reads a report; the first response mails the reporter."""

from __future__ import annotations

import re

import pytest
from django.db import connection, transaction
from django.urls import reverse

from custodia.core.audit import AuditAction
from custodia.core.dbcontext import clear, set_db_context
from custodia.platform.models import ReportStatus, VulnerabilityReport
from tests.acting import act
from tests.conftest import HttpsClient
from tests.platform.support import all_reports, make_operator, platform_events, signed_in

pytestmark = pytest.mark.django_db

SUMMARY = "IDOR on the invoice download"
DETAILS = "GET /app/invoices/<other id>/pdf returns another business's invoice. MARKER-7731"
FORM = {"summary": SUMMARY, "details": DETAILS, "reporter_email": "finder@research.example"}


def test_security_txt_names_the_form_first_and_keeps_its_fields(web, settings):
    text = web.get("/.well-known/security.txt").content.decode()
    contacts = re.findall(r"^Contact: (.+)$", text, re.MULTILINE)
    assert contacts == [f"{settings.PUBLIC_URL}/security/report/", settings.SECURITY_CONTACT]
    for field in ("Expires", "Policy", "Preferred-Languages", "Canonical"):
        assert re.search(rf"^{field}: ", text, re.MULTILINE), field


def test_the_form_works_without_javascript(web):
    page = web.get(reverse("security_report"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'method="post"' in html and "csrfmiddlewaretoken" in html
    assert "<script" not in html.split("</header>", 1)[-1]


def test_a_report_is_stored_and_acknowledged_without_its_text(web, smtp_server):
    answer = web.post(reverse("security_report"), FORM, follow=True)
    assert answer.status_code == 200
    operator = make_operator()
    [report] = all_reports(operator)
    assert report.summary == SUMMARY and report.details == DETAILS
    assert report.status == ReportStatus.NEW and report.first_response_at is None
    assert report.reference in answer.content.decode()
    [mail] = [m for m in smtp_server.wait_for(2) if m.recipients == ["finder@research.example"]]
    assert report.reference in mail.subject + mail.body
    for secret in ("MARKER-7731", "IDOR", "invoice"):
        assert secret not in mail.subject + mail.body
    assert "24 hours" in mail.body


def test_a_report_without_an_address_is_stored_and_mails_nobody(web, smtp_server):
    answer = web.post(reverse("security_report"), {**FORM, "reporter_email": ""})
    assert answer.status_code == 302
    assert smtp_server.messages == []
    operator = make_operator()
    assert [report.reporter_email for report in all_reports(operator)] == [""]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"summary": ""}, "summary", "This field is required."),
        ({"summary": "   "}, "summary", "This field is required."),
        ({"details": ""}, "details", "This field is required."),
        ({"summary": "x" * 201}, "summary", "at most 200 characters"),
        ({"details": "x" * 10_001}, "details", "at most 10000 characters"),
        ({"reporter_email": "not an address"}, "reporter_email", "Enter a valid email address"),
        ({"reporter_email": "a@" + "b" * 260 + ".example"}, "reporter_email", "at most 254"),
    ],
)
def test_bad_input_is_a_400_with_a_message_and_stores_nothing(web, changes, field, message):
    answer = web.post(reverse("security_report"), {**FORM, **changes})
    assert answer.status_code == 400
    html = answer.content.decode()
    assert f'id="id_{field}_error"' in html
    assert message in html
    operator = make_operator()
    assert all_reports(operator) == []


def test_reports_are_throttled_per_client_address(web):
    for _ in range(3):
        assert web.post(reverse("security_report"), FORM).status_code == 302
    refused = web.post(reverse("security_report"), FORM)
    assert refused.status_code == 429
    assert b"Too many reports from your network" in refused.content
    # Another address is not held back by this one's reports.
    other = HttpsClient(REMOTE_ADDR="192.0.2.77")
    assert other.post(reverse("security_report"), FORM).status_code == 302
    operator = make_operator()
    assert len(all_reports(operator)) == 4


def test_a_report_submission_needs_the_csrf_token():
    browser = HttpsClient(enforce_csrf_checks=True)
    assert browser.post(reverse("security_report"), FORM).status_code == 403


def test_members_visitors_and_hand_set_settings_read_no_report(matrix, web):
    web.post(reverse("security_report"), FORM)
    for actor in (matrix.a.owner, matrix.a.manager, matrix.a.staff, matrix.a.client_login):
        act(actor)
        assert VulnerabilityReport.objects.count() == 0, actor.role
    with transaction.atomic():
        clear()
        assert VulnerabilityReport.objects.count() == 0
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('custodia.user_id', %s, true)", [str(matrix.a.owner.user.pk)]
            )
            cursor.execute("SELECT count(*) FROM platform_vulnerabilityreport")
            assert cursor.fetchone() == (0,)
    # Nobody but an operator changes one either (the answer is silent: no row matched).
    act(matrix.a.owner)
    assert VulnerabilityReport.objects.update(status="resolved") == 0
    operator = make_operator()
    [report] = all_reports(operator)
    assert report.status == ReportStatus.NEW
    # An operator's own context cannot delete one.
    set_db_context(user_id=operator.pk)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM platform_vulnerabilityreport")
        assert cursor.rowcount == 0
    assert len(all_reports(operator)) == 1


def test_the_first_response_mails_the_reporter_and_stops_the_clock(web, smtp_server):
    web.post(reverse("security_report"), FORM)
    operator = make_operator()
    [report] = all_reports(operator)
    before = len(smtp_server.wait_for(2))
    browser = signed_in(operator)
    page = browser.get(reverse("operator_report", args=[report.pk]))
    assert page.status_code == 200
    assert "MARKER-7731" in page.content.decode()
    reply = "Thank you: confirmed, a fix ships today."
    answer = browser.post(reverse("operator_report_respond", args=[report.pk]), {"response": reply})
    assert answer.status_code == 302
    [answered] = all_reports(operator)
    assert answered.first_response_at is not None and answered.answered
    assert answered.status == ReportStatus.TRIAGED
    [mail] = smtp_server.wait_for(before + 1)[before:]
    assert mail.recipients == ["finder@research.example"]
    assert reply in mail.body and report.reference in mail.subject
    # A second first response is refused with a message.
    again = browser.post(reverse("operator_report_respond", args=[report.pk]), {"response": "x"})
    assert again.status_code == 400
    assert b"already has its first response" in again.content
    empty = browser.post(
        reverse("operator_report", args=[report.pk]) + "respond/", {"response": ""}
    )
    assert empty.status_code == 400
    assert platform_events(operator, AuditAction.REPORT_RESPOND)[0][2] == {
        "reference": report.reference,
        "mailed": True,
    }
    assert [event[2]["reference"] for event in platform_events(operator, AuditAction.REPORT_READ)]
