"""The calendar page: FullCalendar's host and scripts (static files, no inline code), the staff
filter, and the week grid it keeps for a browser without JavaScript, where an overnight visit
shows on every day it covers."""

from __future__ import annotations

import datetime as dt
import re

from django.test import Client
from django.utils import timezone

from custodia.scheduling.actions import do_create_visit
from tests.acting import act
from tests.web.support import logged_in, text


def next_monday() -> dt.date:
    today = timezone.localdate()
    return today - dt.timedelta(days=today.weekday()) + dt.timedelta(days=7)


def at(day: dt.date, hour: int) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


def days_showing(html: str, visit_id: object) -> list[str]:
    """The headings of the week grid's days that list the visit."""
    sections = html.split('<section class="day')[1:]
    return [
        re.search(r'class="day-name">([^<]+)', section)[1].strip()  # type: ignore[index]
        for section in sections
        if f"/app/visits/{visit_id}/" in section
    ]


def test_an_overnight_visit_shows_on_both_days(matrix):
    a = matrix.a
    monday = next_monday()
    act(a.owner)
    overnight = do_create_visit(
        actor=a.owner,
        client=a.client,
        staff=a.staff.membership,
        starts_at=at(monday + dt.timedelta(days=1), 21),
        ends_at=at(monday + dt.timedelta(days=2), 7),
    )
    to_midnight = do_create_visit(
        actor=a.owner,
        client=a.client,
        starts_at=at(monday + dt.timedelta(days=3), 20),
        ends_at=at(monday + dt.timedelta(days=4), 0),
    )
    html = logged_in(a.manager).get("/app/calendar/", {"week": f"{monday:%Y-%m-%d}"})
    page = html.content.decode()
    tuesday, wednesday, thursday = (monday + dt.timedelta(days=n) for n in (1, 2, 3))
    assert days_showing(page, overnight.pk) == [f"{tuesday:%a %-d %b}", f"{wednesday:%a %-d %b}"]
    # A visit that ends at midnight does not spill into the next day.
    assert days_showing(page, to_midnight.pk) == [f"{thursday:%a %-d %b}"]


def test_a_night_across_two_weeks_shows_in_both(matrix):
    a = matrix.a
    monday = next_monday()
    sunday = monday - dt.timedelta(days=1)
    act(a.owner)
    # A visit lasts at most a day: the longest cover two days, here Sunday and Monday.
    night = do_create_visit(
        actor=a.owner, client=a.client, starts_at=at(sunday, 18), ends_at=at(monday, 17)
    )
    browser = logged_in(a.manager)
    this_week = browser.get("/app/calendar/", {"week": f"{monday:%Y-%m-%d}"})
    assert days_showing(this_week.content.decode(), night.pk) == [f"{monday:%a %-d %b}"]
    last_week = browser.get("/app/calendar/", {"week": f"{sunday:%Y-%m-%d}"})
    assert days_showing(last_week.content.decode(), night.pk) == [f"{sunday:%a %-d %b}"]


def test_the_staff_filter_works_without_javascript(matrix):
    a = matrix.a
    monday = next_monday()
    act(a.owner)
    theirs = do_create_visit(
        actor=a.owner, client=a.client, staff=a.staff.membership, starts_at=at(monday, 9),
        ends_at=at(monday, 10),
    )  # fmt: skip
    nobodys = do_create_visit(
        actor=a.owner, client=a.other_client, starts_at=at(monday, 11), ends_at=at(monday, 12)
    )
    browser = logged_in(a.manager)
    week = f"{monday:%Y-%m-%d}"
    everyone = browser.get("/app/calendar/", {"week": week}).content.decode()
    assert days_showing(everyone, theirs.pk) and days_showing(everyone, nobodys.pk)
    filtered = browser.get("/app/calendar/", {"week": week, "staff": str(a.staff.membership.pk)})
    html = filtered.content.decode()
    assert days_showing(html, theirs.pk) and not days_showing(html, nobodys.pk)
    # The week links keep the filter.
    assert f"&amp;staff={a.staff.membership.pk}" in html
    # Another business's staff member, or anything else, is no choice: a 400 with a message.
    for bad in (str(matrix.b.staff.membership.pk), "nobody"):
        refused = browser.get("/app/calendar/", {"week": week, "staff": bad})
        assert refused.status_code == 400 and "Select a valid choice" in text(refused)


def test_the_page_hosts_fullcalendar_without_inline_code(matrix):
    page = logged_in(matrix.a.manager).get("/app/calendar/")
    html = page.content.decode()
    assert 'id="calendar"' in html and 'data-feed="/api/v1/visits/calendar"' in html
    assert 'data-editable="true"' in html
    for asset in (
        "/static/fullcalendar/all/global.js",
        "/static/fullcalendar/skeleton.css",
        "/static/fullcalendar/themes/classic/theme.css",
        "/static/calendar.js",
    ):
        assert asset in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "an inline script"
    assert " style=" not in html
    # The static files are served (FullCalendar installed by `make fullcalendar`).
    static = Client()
    for asset in ("/static/fullcalendar/all/global.js", "/static/calendar.js"):
        response = static.get(asset, secure=True)
        assert response.status_code == 200, asset


def test_staff_and_clients_have_no_calendar_page(matrix):
    for actor in (matrix.a.staff, matrix.a.client_login):
        assert logged_in(actor).get("/app/calendar/").status_code == 403
