"""The pages that list visits (calendar, dashboard, client record, portal): a fixed number of
queries whatever the number of visits, no encrypted column read, one bulk read event per page,
every value escaped, times in the server's time zone."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from custodia.clients.actions import do_create_client
from custodia.core.audit import AuditAction
from custodia.scheduling.actions import do_create_service, do_create_visit
from custodia.scheduling.models import Visit, VisitStatus
from custodia.tenancy.models import Business
from tests.acting import act
from tests.audit.support import chain_events, written
from tests.web.support import logged_in, text

HOSTILE = "<img src=x onerror=\"alert('x')\">"
# Columns a visit list never shows: sealed customer fields, and the staff member's password hash.
NEVER_READ = (
    '"clients_client"."email"',
    '"clients_client"."phone"',
    '"clients_client"."address"',
    '"clients_client"."notes"',
    '"scheduling_visit"."request_note"',
    '"scheduling_visit"."report"',
    '"accounts_user"."password"',
)


def later_week() -> dt.date:
    """Monday two weeks ahead: its visits are on the calendar's `?week=` and, requested, in
    the dashboard's pending requests, whatever day the test runs."""
    today = timezone.localdate()
    return today - dt.timedelta(days=today.weekday()) + dt.timedelta(days=14)


def add_requests(matrix, count: int, *, client=None) -> list[Visit]:
    """`count` requested visits on Monday of `later_week`, an hour apart from 08:00."""
    a = matrix.a
    act(a.owner)
    monday = timezone.make_aware(dt.datetime.combine(later_week(), dt.time(8)))
    return [
        do_create_visit(
            actor=a.owner,
            client=client or a.client,
            staff=a.staff.membership,
            service=a.service,
            starts_at=monday + dt.timedelta(hours=hour),
            status=VisitStatus.REQUESTED,
        )
        for hour in range(count)
    ]


def pages(matrix) -> list[tuple[object, str]]:
    week = f"{later_week():%Y-%m-%d}"
    return [
        (matrix.a.owner, f"/app/calendar/?week={week}"),
        (matrix.a.owner, "/app/"),
        (matrix.a.owner, f"/app/clients/{matrix.a.client.pk}/"),
        (matrix.a.client_login, "/app/portal/"),
    ]


def queries(browser, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert browser.get(url).status_code == 200, url
    return [query["sql"] for query in captured.captured_queries]


def test_the_number_of_queries_does_not_grow_with_the_visits(matrix):
    add_requests(matrix, 2)
    browsers = {actor: logged_in(actor) for actor, _ in pages(matrix)}
    for actor, url in pages(matrix):
        browsers[actor].get(url)  # a session's first request lists it (accounts/sessions.py)
    before = {url: len(queries(browsers[actor], url)) for actor, url in pages(matrix)}
    add_requests(matrix, 15)
    after = {url: len(queries(browsers[actor], url)) for actor, url in pages(matrix)}
    assert after == before
    calendar = browsers[matrix.a.owner].get(f"/app/calendar/?week={later_week():%Y-%m-%d}")
    assert calendar.content.decode().count('<li class="visit status-requested">') == 17


def test_visit_lists_read_no_sealed_column(matrix):
    add_requests(matrix, 3)
    for actor, url in pages(matrix):
        reading_visits = [
            sql for sql in queries(logged_in(actor), url) if "scheduling_visit" in sql
        ]
        assert reading_visits, url
        for sql in reading_visits:
            assert not [column for column in NEVER_READ if column in sql], (url, sql)


def test_a_page_of_visits_is_one_bulk_read_naming_each_visit(matrix):
    a = matrix.a
    visits = add_requests(matrix, 12)
    after = max((event["id"] for event in chain_events(a.owner)), default=0)
    logged_in(a.owner).get(f"/app/calendar/?week={later_week():%Y-%m-%d}")
    events = written(chain_events(a.owner, after=after))
    assert [event["action"] for event in events] == [AuditAction.VISIT_LIST]
    assert events[0]["detail"] == {"count": 12, "ids": [str(visit.pk) for visit in visits]}
    assert events[0]["subject_ids"] == [str(a.client.pk)]


def test_names_are_escaped_on_every_visit_list(matrix):
    a = matrix.a
    act(a.owner)
    client = do_create_client(actor=a.owner, name=HOSTILE)
    service = do_create_service(actor=a.owner, name=HOSTILE, duration_minutes=30, price_cents=1)
    monday = timezone.make_aware(dt.datetime.combine(later_week(), dt.time(8)))
    do_create_visit(
        actor=a.owner,
        client=client,
        service=service,
        starts_at=monday,
        status=VisitStatus.REQUESTED,
    )
    browser = logged_in(a.owner)
    for url in (
        f"/app/calendar/?week={later_week():%Y-%m-%d}",
        "/app/",
        f"/app/clients/{client.pk}/",
    ):
        html = browser.get(url).content.decode()
        assert "<img" not in html, url
        assert "&lt;img src=x onerror=&quot;alert(&#x27;x&#x27;)&quot;&gt;" in html, url


def test_visits_are_shown_in_the_business_time_zone(matrix):
    a = matrix.a
    act(a.owner)
    Business.objects.filter(pk=a.owner.tenant_id).update(time_zone="Pacific/Auckland")
    # Monday 23:30 UTC of the later week is Tuesday 12:30 in Auckland (UTC+13 in summer, +12
    # in winter: 11:30).
    monday = dt.datetime.combine(later_week(), dt.time(23, 30), tzinfo=dt.UTC)
    do_create_visit(
        actor=a.owner,
        client=a.client,
        staff=a.staff.membership,
        service=a.service,
        starts_at=monday,
        status=VisitStatus.REQUESTED,
    )
    local = timezone.localtime(monday, zoneinfo.ZoneInfo("Pacific/Auckland"))
    browser = logged_in(a.owner)
    calendar = browser.get(f"/app/calendar/?week={later_week():%Y-%m-%d}").content.decode()
    dashboard = text(browser.get("/app/"))
    days = re.findall(r'<section class="day[^"]*".*?</section>', calendar, re.S)
    assert [i for i, day in enumerate(days) if "Alpha Client" in day] == [1]  # Tuesday
    assert f"{local:%H:%M}–{local + dt.timedelta(hours=1):%H:%M}" in days[1]
    assert f"Tue {local.day} {local:%b %Y}, {local:%H:%M}" in dashboard
