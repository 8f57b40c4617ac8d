"""Visit emails through a real SMTP server (aiosmtpd): each kind sent once to the right person,
never twice however often the worker runs or when it failed half-way, never a door code, always
a plain-text part; the choices page reachable by each member for their own choices only."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest
from django.db import connection
from django.utils import timezone

from custodia.clients.actions import do_update_client
from custodia.scheduling.actions import do_confirm_visit, do_request_visit, do_update_visit
from custodia.scheduling.models import Notice, NoticeChoice, NoticeStatus, Visit
from custodia.scheduling.notices import do_update_notice_choices
from custodia.scheduling.outbox import NoticeRun, send_notices
from custodia.tenancy.closing import do_purge_closed_businesses
from tests.acting import act
from tests.audit.support import chain_events
from tests.factories import TenantMatrix
from tests.mail import SmtpServer
from tests.tenancy.test_closing import KEPT_AFTER_PURGE, close, rows_naming
from tests.web.support import logged_in, text

pytestmark = pytest.mark.django_db(databases=["default", "owner"])

SEALED = (
    "DOOR-7Q4Z",
    "ALARM-8K2M",
    "Key under the mat",
    "Cat: Miso",
    "1 Main Street",
    "secret-note-5J",
    "report-text-3P",
)


def sent(smtp: SmtpServer) -> Counter[tuple[str, str]]:
    """(recipient, kind) of every message received so far, counted."""
    return Counter(
        (address, str(message.message["X-Custodia-Notice"]))
        for message in smtp.messages
        for address in message.recipients
    )


def run(matrix: TenantMatrix, now: dt.datetime | None = None) -> NoticeRun:
    """One pass of the worker over both businesses (named: the test's data is not committed,
    so the operator's connection `send_notices` lists businesses on cannot see them)."""
    return send_notices(now, business_ids=[matrix.a.owner.tenant_id, matrix.b.owner.tenant_id])


def request(matrix: TenantMatrix, days: int = 3) -> Visit:
    act(matrix.a.client_login)
    return do_request_visit(
        actor=matrix.a.client_login,
        starts_at=timezone.now() + dt.timedelta(days=days),
        service=matrix.a.service,
        note="secret-note-5J",
    )


def no_reminders_of_matrix_visits(matrix: TenantMatrix) -> None:
    """The matrix's visits start in two hours: their clients turn reminders off, so that a test
    counts only the notices it causes."""
    for business in (matrix.a, matrix.b):
        act(business.client_login)
        do_update_notice_choices(actor=business.client_login, reminders=False)


def test_each_kind_is_sent_once_to_the_right_person(
    matrix: TenantMatrix, smtp_server: SmtpServer
) -> None:
    a = matrix.a
    no_reminders_of_matrix_visits(matrix)
    client, owner, manager = (
        a.client_login.user.email,
        a.owner.user.email,
        a.manager.user.email,
    )
    expected: Counter[tuple[str, str]] = Counter()

    visit = request(matrix)
    run(matrix)
    expected += Counter({(owner, "requested"): 1, (manager, "requested"): 1})
    assert sent(smtp_server) == expected

    act(a.manager)
    do_confirm_visit(visit, a.staff.membership, actor=a.manager)
    run(matrix)
    expected[(client, "confirmed")] += 1
    assert sent(smtp_server) == expected

    later = visit.starts_at + dt.timedelta(hours=1)
    do_update_visit(visit, actor=a.manager, starts_at=later, ends_at=later + dt.timedelta(hours=1))
    do_update_visit(visit, actor=a.manager, starts_at=later)  # no change: no notice
    run(matrix)
    expected[(client, "changed")] += 1
    assert sent(smtp_server) == expected

    act(a.staff)
    do_update_visit(visit, actor=a.staff, report="report-text-3P")
    do_update_visit(visit, actor=a.staff, report="report-text-3P, and more")  # once only
    run(matrix)
    expected[(client, "report")] += 1
    assert sent(smtp_server) == expected

    act(a.manager)
    do_update_visit(visit, actor=a.manager, status="cancelled")
    run(matrix)
    run(matrix)
    expected[(client, "cancelled")] += 1
    assert sent(smtp_server) == expected

    # Every message: a plain-text part and an HTML one, the business's name, the time in its
    # zone, the staff member's first name where one goes, a link onto the public site.
    by_kind = {str(m.message["X-Custodia-Notice"]): m for m in smtp_server.messages}
    for kind, message in by_kind.items():
        plain = message.message.get_body(preferencelist=("plain",))
        html = message.message.get_body(preferencelist=("html",))
        assert plain is not None and html is not None, kind
        assert "Alpha" in message.subject and "Alpha" in plain.get_content()
        assert message.links(), kind
    assert "Walk" in by_kind["confirmed"].body
    staff_first = a.staff.user.full_name.split()[0] if a.staff.user.full_name else ""
    if staff_first:
        assert staff_first in by_kind["confirmed"].body
    local = timezone.localtime(later, timezone.get_default_timezone())
    assert f"{local:%H:%M}" in by_kind["changed"].body
    assert "/app/visits/" in by_kind["requested"].body
    assert "/app/portal/" in by_kind["confirmed"].body

    # Each send is on record, ids only.
    sends = [e for e in chain_events(a.owner) if e["action"] == "notice.send"]
    assert len(sends) == sum(expected.values())
    for event in sends:
        assert set(json.loads(event["detail"])) == {"notice_id", "kind", "recipient_id"}
    # Another business heard nothing of it.
    assert not any(address == matrix.b.owner.user.email for address, _ in sent(smtp_server))


def test_no_door_code_or_sealed_text_in_any_message(
    matrix: TenantMatrix, smtp_server: SmtpServer
) -> None:
    a = matrix.a
    act(a.owner)
    do_update_client(
        a.client,
        actor=a.owner,
        door_code="DOOR-7Q4Z",
        alarm_code="ALARM-8K2M",
    )
    visit = request(matrix)
    act(a.manager)
    do_confirm_visit(visit, a.staff.membership, actor=a.manager)
    act(a.staff)
    do_update_visit(a.visit, actor=a.staff, report="report-text-3P")
    run(matrix)
    kinds = {str(m.message["X-Custodia-Notice"]) for m in smtp_server.messages}
    assert kinds >= {"requested", "confirmed", "reminder", "report"}
    for message in smtp_server.messages:
        raw = message.message.as_string()
        for part in message.message.walk():
            if part.get_content_maintype() == "text":
                raw += part.get_content()
        for secret in SEALED:
            assert secret not in raw, (secret, message.subject)


def test_a_failed_or_repeated_run_never_sends_twice(
    matrix: TenantMatrix, smtp_server: SmtpServer
) -> None:
    a = matrix.a
    no_reminders_of_matrix_visits(matrix)
    request(matrix)
    # The server refuses: the worker's send failed half-way, its rows roll back to due.
    smtp_server.handler.refuse = True
    run(matrix)
    assert smtp_server.messages == []
    act(a.owner)
    due = Notice.objects.filter(status=NoticeStatus.DUE, kind="requested")
    assert due.count() == 2
    # The worker starts again (twice): each message goes once.
    smtp_server.handler.refuse = False
    run(matrix)
    run(matrix)
    assert sent(smtp_server) == Counter(
        {(a.owner.user.email, "requested"): 1, (a.manager.user.email, "requested"): 1}
    )
    act(a.owner)
    assert Notice.objects.filter(status=NoticeStatus.SENT).count() == 2
    assert not Notice.objects.filter(status=NoticeStatus.DUE).exists()


def test_reminders_the_day_before_and_none_for_a_cancelled_visit(
    matrix: TenantMatrix, smtp_server: SmtpServer
) -> None:
    a, b = matrix.a, matrix.b
    # A's visit (in two hours) is cancelled before the worker comes by; B's stays.
    act(a.manager)
    do_update_visit(a.visit, actor=a.manager, status="cancelled")
    far = request(matrix, days=5)  # outside the window: no reminder yet
    act(a.manager)
    do_confirm_visit(far, a.staff.membership, actor=a.manager)
    run(matrix)
    run(matrix)
    got = sent(smtp_server)
    assert got[(b.client_login.user.email, "reminder")] == 1
    assert got[(a.client_login.user.email, "reminder")] == 0
    assert got[(a.client_login.user.email, "cancelled")] == 1
    # Four days later A's confirmed visit is within the window: one reminder, once.
    run(matrix, far.starts_at - dt.timedelta(hours=3))
    run(matrix, far.starts_at - dt.timedelta(hours=2))
    assert sent(smtp_server)[(a.client_login.user.email, "reminder")] == 1


def test_choices_turn_emails_off_for_that_person_only(
    matrix: TenantMatrix, smtp_server: SmtpServer
) -> None:
    a, b = matrix.a, matrix.b
    act(a.client_login)
    do_update_notice_choices(actor=a.client_login, reminders=False)
    act(a.manager)
    do_update_notice_choices(actor=a.manager, requests=False)
    visit = request(matrix)
    act(a.manager)
    do_confirm_visit(visit, a.staff.membership, actor=a.manager)
    run(matrix)
    got = sent(smtp_server)
    assert got[(a.client_login.user.email, "reminder")] == 0
    assert got[(b.client_login.user.email, "reminder")] == 1
    assert got[(a.manager.user.email, "requested")] == 0
    assert got[(a.owner.user.email, "requested")] == 1
    # The confirmation of their own request is sent whatever they chose.
    assert got[(a.client_login.user.email, "confirmed")] == 1
    events = [e for e in chain_events(a.owner) if e["action"] == "notice.choices_update"]
    assert [json.loads(e["detail"]) for e in events] == [
        {"fields": ["reminders"]},
        {"fields": ["requests"]},
    ]


def test_the_outbox_is_out_of_reach_of_staff_clients_and_other_businesses(
    matrix: TenantMatrix,
) -> None:
    a = matrix.a
    request(matrix)
    act(a.owner)
    assert Notice.objects.count() == 1
    for actor in (a.staff, a.client_login, matrix.b.owner, matrix.b.client_login):
        act(actor)
        assert Notice.objects.count() == 0
    act(a.client_login)
    do_update_notice_choices(actor=a.client_login, changes=False)
    for actor in (a.staff, a.other_staff, matrix.b.owner):
        act(actor)
        assert not NoticeChoice.objects.filter(membership_id=a.client_login.membership.pk).exists()


def test_the_choices_page_shows_and_saves_each_members_own_choices(matrix: TenantMatrix) -> None:
    a = matrix.a
    browser = logged_in(a.client_login)
    page = browser.get("/app/notifications/")
    assert page.status_code == 200
    assert "A reminder before each visit" in text(page)
    assert "When a client requests a visit" not in text(page)
    saved = browser.post("/app/notifications/", {"changes": "on", "reports": "on"})
    assert saved.status_code == 302 and saved["Location"] == "/app/notifications/"
    act(a.owner)
    row = NoticeChoice.objects.get(membership_id=a.client_login.membership.pk)
    assert (row.reminders, row.changes, row.reports, row.requests) == (False, True, True, True)

    manager = logged_in(a.manager)
    page = manager.get("/app/notifications/")
    assert page.status_code == 200 and "When a client requests a visit" in text(page)
    # A box of another role's is no field here: posting it changes nothing.
    manager.post("/app/notifications/", {"reminders": "", "requests": ""})
    act(a.owner)
    row = NoticeChoice.objects.get(membership_id=a.manager.membership.pk)
    assert (row.reminders, row.requests) == (True, False)
    # The client's row is untouched by the manager's post.
    assert not NoticeChoice.objects.get(membership_id=a.client_login.membership.pk).reminders


def test_staff_have_no_choices_and_others_reach_only_their_own(matrix: TenantMatrix) -> None:
    a, b = matrix.a, matrix.b
    assert logged_in(a.staff).get("/app/notifications/").status_code == 403
    assert logged_in(a.staff).post("/app/notifications/", {"reminders": ""}).status_code == 403
    # B's owner saves B's own choice: A's members are untouched.
    assert logged_in(b.owner).post("/app/notifications/", {}).status_code == 302
    act(a.owner)
    assert not NoticeChoice.objects.exists()
    act(b.owner)
    assert NoticeChoice.objects.get().membership_id == b.owner.membership.pk


def test_a_purged_business_leaves_no_notice_behind(
    matrix: TenantMatrix, smtp_server: SmtpServer
) -> None:
    a = matrix.a
    visit = request(matrix)
    act(a.manager)
    do_confirm_visit(visit, a.staff.membership, actor=a.manager)
    act(a.client_login)
    do_update_notice_choices(actor=a.client_login, reports=False)
    run(matrix)
    act(a.owner)
    assert Notice.objects.filter(status=NoticeStatus.SENT).exists()
    business = close(a.owner)
    assert business.purge_after is not None
    assert do_purge_closed_businesses(business.purge_after) == [business.pk]
    left = rows_naming(business.pk, a.owner.user.pk)
    assert {name.split(".")[0] for name in left} <= KEPT_AFTER_PURGE, left
    # And nothing is queued for it: the worker's tick names no business.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE args::text LIKE %s",
            [f"%{business.pk}%"],
        )
        assert cursor.fetchone()[0] == 0
