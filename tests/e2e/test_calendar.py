"""The calendar in Chromium: FullCalendar (a static file under the strict CSP) fed by the API.
A manager switches between month, week and day, filters by staff member, drags a visit to
another day (the database follows) and sees a refused move go back; the page fits a 390 px
phone; no Content Security Policy report; without JavaScript the week grid stays."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from tests.e2e.support import CSP_MARKER
from tests.servers import create_business, run_django

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page

pytestmark = pytest.mark.e2e

OWNER_EMAIL = "cora.calendar@example.com"
PASSWORD = "maple-signal-harbor-58"  # noqa: S105 (a test login's password, not a secret)
BUSINESS = "Calendar Carers"

SEED = """
import datetime as dt, json
from django.db import transaction
from django.utils import timezone
from custodia.accounts.models import User
from custodia.clients.actions import do_assign_staff, do_create_client
from custodia.core.actor import acting_as
from custodia.scheduling.actions import do_create_visit
from custodia.tenancy.actors import console_actors, find_user
from custodia.tenancy.models import Membership
from custodia.tenancy.zones import zone_for

with transaction.atomic():
    (owner,) = console_actors(find_user({owner!r}), None)
    with acting_as(owner):
        zone = zone_for(owner.business)
        monday = dt.date.fromisoformat({monday!r})
        def at(days, hour):
            return dt.datetime.combine(monday + dt.timedelta(days=days), dt.time(hour), zone)
        staff = []
        for name in ("Sam Sitter", "Tess Trainer"):
            user = User.objects.create_user(name.split()[0].lower() + "@calendar.test", None)
            user.full_name = name
            user.save(update_fields=["full_name"])
            staff.append(
                Membership.objects.create(tenant_id=owner.tenant_id, user=user, role="staff")
            )
        client = do_create_client(actor=owner, name="Milo Owner", door_code="2468")
        for member in staff:
            do_assign_staff(client, member, actor=owner)
        sams = do_create_visit(
            actor=owner, client=client, staff=staff[0], starts_at=at(1, 10), ends_at=at(1, 11)
        )
        tess = do_create_visit(
            actor=owner, client=client, staff=staff[1], starts_at=at(2, 14), ends_at=at(2, 15)
        )
        print(json.dumps({{"sams": str(sams.pk), "tess": str(tess.pk),
                          "tess_staff": str(staff[1].pk), "zone": str(zone)}}))
"""

VISIT_START = """
import json
from django.db import transaction
from custodia.core.actor import acting_as
from custodia.scheduling.models import Visit
from custodia.tenancy.actors import console_actors, find_user
from custodia.tenancy.zones import zone_for

with transaction.atomic():
    (owner,) = console_actors(find_user({owner!r}), None)
    with acting_as(owner):
        visit = Visit.objects.filter(pk={visit!r}).first()
        zone = zone_for(owner.business)
        print(json.dumps(visit and [visit.starts_at.astimezone(zone).isoformat(),
                                    visit.ends_at.astimezone(zone).isoformat()]))
"""

DELETE_VISIT = """
from django.db import transaction
from custodia.core.actor import acting_as
from custodia.scheduling.access import access_visit_by_id
from custodia.scheduling.actions import do_delete_visit
from custodia.tenancy.actors import console_actors, find_user
from custodia.tenancy.reads import Intent

with transaction.atomic():
    (owner,) = console_actors(find_user({owner!r}), None)
    with acting_as(owner):
        do_delete_visit(access_visit_by_id(owner, {visit!r}, intent=Intent.CHANGE), actor=owner)
"""


def week_after_next() -> dt.date:
    today = dt.date.today()
    return today - dt.timedelta(days=today.weekday()) + dt.timedelta(days=14)


@pytest.fixture(scope="module")
def seeded(e2e_database: str) -> dict[str, str]:
    create_business(e2e_database, BUSINESS, OWNER_EMAIL, PASSWORD)
    code = SEED.format(owner=OWNER_EMAIL, monday=week_after_next().isoformat())
    return dict(json.loads(run_django(e2e_database, code).strip().splitlines()[-1]))


def stored(e2e_database: str, visit: str) -> list[str] | None:
    code = VISIT_START.format(owner=OWNER_EMAIL, visit=visit)
    return json.loads(run_django(e2e_database, code).strip().splitlines()[-1])  # type: ignore[no-any-return]


def open_context(browser: Browser, e2e_server: str, **options: object) -> BrowserContext:
    context = browser.new_context(ignore_https_errors=True, base_url=e2e_server, **options)  # type: ignore[arg-type]
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
def csp_reports() -> list[str]:
    return []


@pytest.fixture
def desktop(browser: Browser, e2e_server: str, csp_reports: list[str]) -> Iterator[BrowserContext]:
    context = open_context(browser, e2e_server, viewport={"width": 1280, "height": 900})

    def on_console(message: ConsoleMessage) -> None:
        if CSP_MARKER in message.text:
            csp_reports.append(message.text)

    context.on("console", on_console)
    try:
        yield context
    finally:
        context.close()


def log_in(context: BrowserContext) -> Page:
    page = context.new_page()
    page.goto("/accounts/login/")
    page.get_by_label("Email", exact=True).fill(OWNER_EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))
    return page


def open_calendar(page: Page) -> None:
    page.goto(f"/app/calendar/?week={week_after_next():%Y-%m-%d}")
    expect(page.locator("#calendar")).to_be_visible()
    expect(page.locator("#week-grid")).to_be_hidden()


def drag(page: Page, event: str, day: dt.date) -> None:
    """Drag the event (a locator) to the same time on `day`, with the mouse, in steps."""
    page.locator(event).scroll_into_view_if_needed()
    box = page.locator(event).bounding_box()
    column = page.locator(f"[data-date='{day:%Y-%m-%d}']").first.bounding_box()
    assert box and column
    x, y = box["x"] + box["width"] / 2, box["y"] + min(8, box["height"] / 2)
    page.mouse.move(x, y)
    page.mouse.down()
    target = column["x"] + column["width"] / 2
    for step in range(1, 11):
        page.mouse.move(x + (target - x) * step / 10, y)
        page.wait_for_timeout(30)
    page.mouse.up()


def wait_for(check, seconds: float = 10) -> object:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


def test_views_filter_and_drag_a_visit_to_another_day(
    seeded: dict[str, str], desktop: BrowserContext, e2e_database: str, csp_reports: list[str]
) -> None:
    page = log_in(desktop)
    open_calendar(page)
    events = page.locator("#calendar .visit-event")
    expect(events).to_have_count(2)
    expect(page.locator("#calendar")).to_contain_text("Sam Sitter")

    # Month, day and back to week.
    monday = week_after_next()
    page.get_by_role("tab", name="Month view").click()
    expect(page.locator("#calendar")).to_contain_text(f"{monday:%B}")
    expect(events).to_have_count(2)
    page.get_by_role("tab", name="Day view").click()
    expect(page.locator("#calendar")).not_to_contain_text("Sam Sitter")
    page.get_by_role("tab", name="Week view").click()
    expect(events).to_have_count(2)

    # The staff filter asks the feed again: Tess's visit only, then everyone's.
    page.get_by_label("Staff").select_option(seeded["tess_staff"])
    expect(events).to_have_count(1)
    expect(page.locator("#calendar")).to_contain_text("Tess Trainer")
    page.get_by_label("Staff").select_option("")
    expect(events).to_have_count(2)

    # Drag Sam's Tuesday visit to Thursday: the same hour, two days later, stored.
    before = stored(e2e_database, seeded["sams"])
    assert before is not None
    drag(page, "#calendar .visit-event:has-text('Sam Sitter')", monday + dt.timedelta(days=3))
    expect(page.locator("#calendar-status")).to_contain_text("Visit moved")
    after = wait_for(lambda: (s := stored(e2e_database, seeded["sams"])) != before and s)
    starts, ends = (dt.datetime.fromisoformat(value) for value in after)  # type: ignore[union-attr]
    was_starts, was_ends = (dt.datetime.fromisoformat(value) for value in before)
    assert starts - was_starts == dt.timedelta(days=2)
    assert ends - starts == was_ends - was_starts
    assert starts.date() == monday + dt.timedelta(days=3)

    # A refused move (the visit was deleted meanwhile) says why and goes back.
    run_django(e2e_database, DELETE_VISIT.format(owner=OWNER_EMAIL, visit=seeded["tess"]))
    tess = "#calendar .visit-event:has-text('Tess Trainer')"
    page.locator(tess).scroll_into_view_if_needed()
    where = page.locator(tess).bounding_box()
    drag(page, tess, monday + dt.timedelta(days=4))
    expect(page.locator("#calendar-status")).to_contain_text("The visit was not moved: Not found")
    page.wait_for_timeout(300)
    assert page.locator(tess).bounding_box() == where  # back where it was
    assert csp_reports == []


def test_the_calendar_fits_a_phone(
    seeded: dict[str, str], browser: Browser, e2e_server: str
) -> None:
    context = open_context(browser, e2e_server, viewport={"width": 390, "height": 844})
    reports: list[str] = []
    context.on("console", lambda m: reports.append(m.text) if CSP_MARKER in m.text else None)
    try:
        page = log_in(context)
        open_calendar(page)
        for view in ("Month", "Week", "Day"):
            page.get_by_role("tab", name=f"{view} view").click()
            page.wait_for_timeout(200)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (view, width)
        assert reports == []
    finally:
        context.close()


def test_without_javascript_the_week_grid_stays(
    seeded: dict[str, str], browser: Browser, e2e_server: str
) -> None:
    context = open_context(
        browser, e2e_server, viewport={"width": 390, "height": 844}, java_script_enabled=False
    )
    try:
        page = log_in(context)
        page.goto(f"/app/calendar/?week={week_after_next():%Y-%m-%d}")
        expect(page.locator("#week-grid")).to_be_visible()
        expect(page.locator("#calendar")).to_be_hidden()
        expect(page.locator("#week-grid")).to_contain_text("Milo Owner")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        context.close()
