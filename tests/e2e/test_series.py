"""A repeating series in a real browser (docs/visits.md, "Repeating visits"): a manager makes a
weekly series, moves one visit of it, changes the ones after another, and ends the series; the
staff member then follows their visits in a calendar feed that holds no door code.

A business of its own is made in the browser tests' database (the demo business belongs to
tests/e2e/test_every_page.py). The steps run in order and share one `story`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import ssl
import urllib.request
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.e2e.support import Person, Story
from tests.servers import run_django

pytestmark = pytest.mark.e2e

SERVER_TZ = ZoneInfo(settings.TIME_ZONE)
LOCAL_INPUT = "%Y-%m-%dT%H:%M"
CLIENT = "Grace Hopper"
DOOR_CODE = "2718-28"
SERVICE = "Dog walk"
VISITS = 6
PASSWORD = secrets.token_urlsafe(12)
OWNER_EMAIL = f"series-owner-{secrets.token_hex(3)}@example.com"
STAFF_EMAIL = f"series-staff-{secrets.token_hex(3)}@example.com"
STAFF_NAME = "Kai Series"

SEED = """
import json, sys
from allauth.account.models import EmailAddress
from django.db import transaction
from custodia.accounts.models import User
from custodia.clients.actions import do_assign_staff, do_create_client
from custodia.core.actor import acting_as
from custodia.core.permissions import Role
from custodia.scheduling.actions import do_create_service
from custodia.tenancy.actions import do_create_business
from custodia.tenancy.actors import console_actor
from custodia.tenancy.models import Membership

owner_email, staff_email, password, client_name, door_code, service = json.loads(sys.argv[1])
with transaction.atomic():
    users = []
    for email, name in ((owner_email, "Ola Series"), (staff_email, "Kai Series")):
        user = User.objects.create_user(email, password, full_name=name)
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        users.append(user)
    created = do_create_business(name="Series Pet Care", owner=users[0], slug="series-pets")
    owner = console_actor(users[0], created.membership)
    with acting_as(owner):
        staff = Membership.objects.create(
            tenant_id=owner.tenant_id, user=users[1], role=Role.STAFF
        )
        client = do_create_client(actor=owner, name=client_name, door_code=door_code)
        do_assign_staff(client, staff, actor=owner)
        do_create_service(actor=owner, name=service, duration_minutes=60, price_cents=2500)
print(json.dumps(str(client.pk)))
"""


def next_monday() -> dt.date:
    today = dt.datetime.now(SERVER_TZ).date()
    return today + dt.timedelta(days=7 - today.weekday())


FIRST = dt.datetime.combine(next_monday(), dt.time(10, 0), tzinfo=SERVER_TZ)


def week(index: int) -> dt.date:
    """The Monday of the series' visit number `index` (0-based)."""
    return FIRST.date() + dt.timedelta(weeks=index)


def log_in(story: Story, label: str, email: str) -> Person:
    person = story.person(label)
    page = person.page
    page.goto("/accounts/login/")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))
    return person


def client_visits_in_week(person: Person, monday: dt.date) -> list[tuple[str, str, str]]:
    """(day, time, visit path) of the client's visits in the week calendar starting `monday`."""
    page = person.page
    page.goto(f"/app/calendar/?week={monday:%Y-%m-%d}")
    # The server-rendered week, the no-JavaScript view, which FullCalendar hides once it starts.
    page.evaluate("document.getElementById('week-grid').hidden = false")
    expect(page.locator("h2.week-title")).to_contain_text("Week of")
    found = []
    for day in page.locator("section.day").all():
        name = day.locator("h3").inner_text().split("\n")[0].replace(" Today", "").strip()
        for entry in day.locator("li.visit a").all():
            if CLIENT in entry.inner_text():
                time_text = entry.locator(".time").inner_text()
                found.append((name, time_text, str(entry.get_attribute("href"))))
    return found


def expect_message(person: Person, text: str) -> None:
    expect(person.page.locator("ul.messages")).to_contain_text(text)


def test_01_a_manager_makes_a_weekly_series(story: Story, e2e_database: str) -> None:
    with story.step("series"):
        arguments = json.dumps([OWNER_EMAIL, STAFF_EMAIL, PASSWORD, CLIENT, DOOR_CODE, SERVICE])
        code = f"sys_argv = {arguments!r}\nimport sys\nsys.argv = ['seed', sys_argv]\n" + SEED
        client_id = json.loads(run_django(e2e_database, code).strip().splitlines()[-1])
        owner = log_in(story, "owner", OWNER_EMAIL)
        page = owner.page
        page.goto(f"/app/visits/new/?client={client_id}")
        page.get_by_label("Staff member").select_option(label=f"{STAFF_NAME} (Staff)")
        page.get_by_label("Service").select_option(label=f"{SERVICE} (60 min)")
        page.get_by_label("Start", exact=True).fill(FIRST.strftime(LOCAL_INPUT))
        page.get_by_label("Repeat").select_option(label="Every week")
        page.get_by_label("Or this many visits").fill(str(VISITS))
        page.get_by_role("button", name=re.compile("Schedule")).click()
        expect_message(owner, f"{VISITS} visits scheduled.")
        expect(page.get_by_role("heading", name="Repeating series")).to_be_visible()
        expect(page.get_by_text(f"Every week, {VISITS} times", exact=False)).to_be_visible()
        for index in range(VISITS):
            [(_day, time_text, _path)] = client_visits_in_week(owner, week(index))
            assert time_text == "10:00–11:00", (index, time_text)


def test_02_one_visit_moved_alone(story: Story) -> None:
    with story.step("moved", after=("series",)):
        owner = story.people["owner"]
        page = owner.page
        [(_day, _time, path)] = client_visits_in_week(owner, week(1))
        story.urls["moved"] = path
        page.goto(f"{path}edit/")
        tuesday = dt.datetime.combine(week(1) + dt.timedelta(days=1), dt.time(14, 0))
        page.get_by_label("Start", exact=True).fill(tuesday.strftime(LOCAL_INPUT))
        page.get_by_label("End", exact=True).fill(
            (tuesday + dt.timedelta(hours=1)).strftime(LOCAL_INPUT)
        )
        page.get_by_role("button", name=re.compile("Save")).click()
        expect(page).to_have_url(re.compile(re.escape(path) + "$"))
        [(day, time_text, moved)] = client_visits_in_week(owner, week(1))
        assert day.startswith("Tue") and time_text == "14:00–15:00" and moved == path
        # The others did not move.
        for index in (0, 2):
            [(day, time_text, _path)] = client_visits_in_week(owner, week(index))
            assert day.startswith("Mon") and time_text == "10:00–11:00"


def test_03_the_following_ones_changed(story: Story) -> None:
    with story.step("following", after=("moved",)):
        owner = story.people["owner"]
        page = owner.page
        [(_day, _time, path)] = client_visits_in_week(owner, week(3))
        page.goto(path)
        page.get_by_label("This visit and the ones after it").check()
        page.get_by_label("New start time").fill("09:00")
        page.get_by_role("button", name="Change the series").click()
        expect_message(owner, f"{VISITS - 3} visits of the series changed.")
        expected = {0: "10:00–11:00", 1: "14:00–15:00", 2: "10:00–11:00"}
        expected |= {index: "09:00–10:00" for index in range(3, VISITS)}
        for index, hours in expected.items():
            [(_day, time_text, _path)] = client_visits_in_week(owner, week(index))
            assert time_text == hours, (index, time_text)


def test_04_the_series_ended(story: Story) -> None:
    with story.step("ended", after=("following",)):
        owner = story.people["owner"]
        page = owner.page
        [(_day, _time, path)] = client_visits_in_week(owner, week(3))
        page.goto(path)
        page.get_by_role("button", name="End the series after this visit").click()
        expect_message(owner, f"Series ended: {VISITS - 4} later visits deleted.")
        for index in range(VISITS):
            found = client_visits_in_week(owner, week(index))
            assert len(found) == (1 if index <= 3 else 0), (index, found)


def test_05_staff_follow_their_visits_in_a_calendar_feed(story: Story) -> None:
    with story.step("feed", after=("ended",)):
        staff = log_in(story, "staff", STAFF_EMAIL)
        page = staff.page
        page.goto("/app/security/")
        page.get_by_role("link", name="Manage your calendar feed").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Calendar feed")
        page.get_by_role("button", name="Make a calendar feed").click()
        # A fresh login has just proved itself: no password asked again.
        expect(page.get_by_role("heading", level=1)).to_have_text("Calendar feed made")
        address = page.get_by_label("Your calendar feed's address").input_value()
        assert re.fullmatch(r"https://[^/]+/calendar/[0-9a-f]{12}/[A-Za-z0-9_-]+\.ics", address)
        # As a calendar app fetches it: no cookie, the local CA's certificate not checked here.
        path = re.sub(r"^https://[^/]+", "", address)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with urllib.request.urlopen(story.url(path), context=context) as answer:  # noqa: S310
            body = answer.read().decode()
            assert answer.headers["Content-Type"] == "text/calendar; charset=utf-8"
        assert body.count("BEGIN:VEVENT") == 4
        assert f"SUMMARY:{SERVICE}: Grace" in body
        assert DOOR_CODE not in body and "Hopper" not in body
        # Revoked, the same address is a 404.
        page.goto("/app/security/calendar-feed/")
        page.get_by_role("button", name="Revoke the feed").click()
        expect_message(staff, "Calendar feed revoked")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(story.url(path), context=context)  # noqa: S310
        assert refused.value.code == 404
