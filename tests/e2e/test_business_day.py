"""A business's first day in a real browser, against the real server over TLS with real email.

An owner signs up and confirms their address, adds two clients, invites a staff member who joins
from a second browser, assigns them to one client and schedules a visit. The staff member sees
only that client, its door code while the visit window is open, and the visit on their day; the
client, invited to the portal from a third browser, sees only themselves and asks for a visit.
Throughout, the strict CSP holds and the session and CSRF cookies stay out of the page's reach.

The steps run in order and share one `story`; a step whose predecessor failed is skipped.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from tests.e2e.support import Person, Story

pytestmark = pytest.mark.e2e

BUSINESS = "Harbour Pet Care"
OWNER_NAME = "Olivia Harbour"
OWNER_EMAIL = "olivia@harbour-pets.example.com"
OWNER_PASSWORD = "violet-anchor-river-81"
STAFF_NAME = "Sam Walker"
STAFF_EMAIL = "sam.walker@example.com"
STAFF_PASSWORD = "copper-lantern-meadow-27"
CLIENT1 = "Ada Lovelace"
CLIENT1_EMAIL = "ada@lovelace.example.com"
CLIENT1_PHONE = "+44 20 7946 0001"
CLIENT1_PASSWORD = "granite-orchid-sailor-63"
DOOR_CODE = "4711-93"
CLIENT2 = "Brian Kernighan"
CLIENT2_ADDRESS = "12 Unix Lane, Murray Hill"
SERVICE = "Dog walk"

# The server renders and parses times in its own zone; this process reads the same settings.
SERVER_TZ = ZoneInfo(settings.TIME_ZONE)
LOCAL_INPUT = "%Y-%m-%dT%H:%M"  # what a datetime-local input takes


def visit_times() -> tuple[dt.datetime, dt.datetime]:
    """A one-hour visit starting in about an hour, today in the server's zone.

    Late in the evening "in an hour" is tomorrow, which "Today" would not list; then the visit
    started half an hour ago instead (a manager may schedule that, and the access window is open
    either way).
    """
    now = dt.datetime.now(SERVER_TZ).replace(second=0, microsecond=0)
    start = now + dt.timedelta(hours=1)
    if start.date() != now.date():
        start = now - dt.timedelta(minutes=30)
    return start, start + dt.timedelta(hours=1)


VISIT_START, VISIT_END = visit_times()
VISIT_HOURS = f"{VISIT_START:%H:%M}–{VISIT_END:%H:%M}"


def expect_message(person: Person, text: str) -> None:
    """The status message a person sees after an action."""
    expect(person.page.locator("ul.messages")).to_contain_text(text)


def follow_nav(page: Page, link: str) -> None:
    """Click a link of the main navigation, as a person finds their way around."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=link).click()


def path_of(url: str) -> str:
    """The path of an absolute URL on the server under test."""
    return re.sub(r"^https://[^/]+", "", url)


def accept_invitation(
    story: Story,
    label: str,
    email: str,
    name: str,
    password: str,
    *,
    business: str = BUSINESS,
    viewport: dict[str, int] | None = None,
) -> Person:
    """Open the emailed invitation in a new browser (a desktop's unless `viewport` says
    otherwise) and create the account it asks for."""
    link = story.mailbox.link(email, "/invite/")
    assert link.startswith(f"{story.base_url}/invite/"), link
    secret = link.rstrip("/").rsplit("/", 1)[-1]
    person = story.person(label, viewport=viewport)
    page = person.page
    page.goto(link)
    # The address bar (and so history and Referer) no longer holds the secret.
    expect(page).to_have_url(re.compile(r"/invite/[^/]+/accept/$"))
    assert secret not in page.url
    assert secret not in page.content()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Join {business}")
    expect(page.get_by_text(email, exact=True)).to_be_visible()
    story.snap(person, f"{label}-invitation")
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Choose a password").fill(password)
    page.get_by_role("button", name="Accept invitation").click()
    expect_message(person, f"Welcome to {business}.")
    return person


def add_client(
    owner: Person,
    name: str,
    *,
    email: str = "",
    phone: str = "",
    address: str = "",
    door_code: str = "",
) -> str:
    """Create a client through the "New client" form; returns the client page's URL."""
    page = owner.page
    follow_nav(page, "Clients")
    expect(page).to_have_title("Clients · Custodia")
    page.get_by_role("main").get_by_role("link", name="New client").click()
    expect(page).to_have_title("New client · Custodia")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Email (optional)", exact=True).fill(email)
    page.get_by_label("Phone (optional)", exact=True).fill(phone)
    page.get_by_label("Address (optional)", exact=True).fill(address)
    if door_code:
        page.get_by_label("Access instructions (optional)").fill("Key safe left of the door.")
        page.get_by_label("Door code (optional)").fill(door_code)
    page.get_by_role("button", name="Create client").click()
    expect_message(owner, "Client created.")
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    return page.url


def test_01_owner_signs_up_and_confirms_their_email(story: Story) -> None:
    with story.step("signup"):
        owner = story.person("owner")
        page = owner.page
        response = page.goto("/accounts/signup/")
        assert response is not None and response.ok
        assert page.url.startswith("https://")
        tls = response.security_details()
        assert tls is not None and tls.get("protocol") in ("TLS 1.2", "TLS 1.3"), tls
        assert tls.get("issuer") == "Custodia local CA", tls

        story.snap(owner, "signup")
        page.get_by_label("Business name").fill(BUSINESS)
        page.get_by_label("Your name").fill(OWNER_NAME)
        page.get_by_label("Email", exact=True).fill(OWNER_EMAIL)
        page.get_by_label("Password", exact=True).fill(OWNER_PASSWORD)
        page.get_by_label("Password (again)").fill(OWNER_PASSWORD)
        page.get_by_role("button", name="Create my business").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your email address")
        expect(page.locator(".alert.info")).to_contain_text("Check your inbox.")

        link = story.mailbox.link(OWNER_EMAIL, "/accounts/confirm-email/")
        assert link.startswith(f"{story.base_url}/"), link
        page.goto(link)
        # Opening the link changes nothing; confirming is a deliberate POST.
        expect(page.get_by_text(OWNER_EMAIL).first).to_be_visible()
        page.get_by_role("button", name="Confirm").click()
        expect(page).to_have_title("Dashboard · Custodia")
        expect(page.locator(".business-name")).to_have_text(BUSINESS)
        expect(page.locator(".who")).to_have_text(OWNER_NAME)


def test_02_owner_adds_two_clients(story: Story) -> None:
    with story.step("clients", after=("signup",)):
        owner = story.people["owner"]
        story.urls["client1"] = add_client(
            owner, CLIENT1, email=CLIENT1_EMAIL, phone=CLIENT1_PHONE, door_code=DOOR_CODE
        )
        # The owner has not typed the password in this session (the email link logged them in):
        # owners and managers see a code only after confirming it's them, visit or not.
        access = owner.page.get_by_role("region", name="Home access")
        expect(access).not_to_contain_text(DOOR_CODE)
        access.get_by_role("link", name="Confirm it's you to show them").click()
        expect(owner.page).to_have_url(re.compile(r"/accounts/reauthenticate/"))
        owner.page.get_by_label("Password", exact=True).fill(OWNER_PASSWORD)
        owner.page.get_by_role("button", name="Confirm").click()
        expect(owner.page).to_have_url(story.urls["client1"])
        expect(access).to_contain_text(DOOR_CODE)
        story.urls["client2"] = add_client(owner, CLIENT2, address=CLIENT2_ADDRESS)
        assert story.urls["client1"] != story.urls["client2"]

        follow_nav(owner.page, "Clients")
        rows = owner.page.locator("table tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.filter(has_text=CLIENT1)).to_have_count(1)
        expect(rows.filter(has_text=CLIENT2)).to_have_count(1)


def test_03_owner_invites_a_staff_member_who_joins(story: Story) -> None:
    with story.step("staff", after=("signup",)):
        owner = story.people["owner"]
        page = owner.page
        follow_nav(page, "Staff")
        expect(page).to_have_title("Staff · Custodia")
        page.get_by_label("Email address").fill(STAFF_EMAIL)
        page.get_by_label("Role", exact=True).select_option(label="Staff")
        page.get_by_role("button", name="Send invitation").click()
        expect_message(owner, "Invitation sent.")
        pending = page.get_by_role("region", name="Pending invitations")
        expect(pending).to_contain_text(STAFF_EMAIL)

        staff = accept_invitation(story, "staff", STAFF_EMAIL, STAFF_NAME, STAFF_PASSWORD)
        expect(staff.page).to_have_title("Dashboard · Custodia")
        expect(staff.page.locator(".business-name")).to_have_text(BUSINESS)
        # Staff get no manager pages in their navigation.
        nav = staff.page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Staff")).to_have_count(0)
        expect(nav.get_by_role("link", name="Calendar")).to_have_count(0)

        page.reload()
        expect(page.locator("table").first).to_contain_text(STAFF_NAME)
        expect(pending).to_contain_text("No pending invitations.")


def test_04_owner_assigns_the_staff_member_and_schedules_a_visit(story: Story) -> None:
    with story.step("visit", after=("clients", "staff")):
        owner = story.people["owner"]
        page = owner.page
        page.goto(story.urls["client1"])
        page.get_by_label("Staff member").select_option(label=f"{STAFF_NAME} (Staff)")
        page.get_by_role("button", name="Assign", exact=True).click()
        expect_message(owner, "Staff member assigned.")
        expect(page.get_by_role("region", name="Assigned staff")).to_contain_text(STAFF_NAME)

        page.goto("/app/services/new/")
        page.get_by_label("Service name").fill(SERVICE)
        page.get_by_label("Duration (minutes)").fill("60")
        page.get_by_label("Price").fill("25.00")
        page.get_by_role("button", name="Create service").click()
        expect_message(owner, "Service created.")
        expect(page.locator("table tbody tr").filter(has_text=SERVICE)).to_contain_text("60 min")

        page.goto(story.urls["client1"])
        page.get_by_role("link", name="Schedule a visit").click()
        expect(page).to_have_title("New visit · Custodia")
        # The client's page preselects the client.
        expect(page.get_by_label("Client", exact=True).locator("option:checked")).to_have_text(
            CLIENT1
        )
        page.get_by_label("Staff member").select_option(label=f"{STAFF_NAME} (Staff)")
        page.get_by_label("Service").select_option(label=f"{SERVICE} (60 min)")
        page.get_by_label("Start", exact=True).fill(f"{VISIT_START:{LOCAL_INPUT}}")
        page.get_by_label("End").fill(f"{VISIT_END:{LOCAL_INPUT}}")
        page.get_by_role("button", name="Schedule visit").click()
        expect_message(owner, "Visit scheduled.")
        details = page.locator("dl.details")
        expect(details).to_contain_text(CLIENT1)
        expect(details).to_contain_text(STAFF_NAME)
        expect(details).to_contain_text(VISIT_HOURS)
        expect(details).to_contain_text("Scheduled")
        story.urls["visit"] = page.url

        follow_nav(page, "Calendar")
        today = page.locator("section.day.today")
        expect(today.locator("li.visit")).to_contain_text(CLIENT1)
        expect(today.locator("li.visit")).to_contain_text(STAFF_NAME)


def test_05_staff_member_sees_only_their_client(story: Story) -> None:
    with story.step("staff-view", after=("visit",)):
        staff = story.people["staff"]
        page = staff.page
        follow_nav(page, "Clients")
        rows = page.locator("table tbody tr")
        expect(rows).to_have_count(1)
        expect(rows).to_contain_text(CLIENT1)
        expect(page.get_by_role("main")).not_to_contain_text(CLIENT2)

        response = page.goto(story.urls["client2"])
        assert response is not None and response.status == 404
        expect(page).to_have_title("Not found · Custodia")
        expect(page.get_by_role("main")).not_to_contain_text(CLIENT2)
        expect(page.get_by_role("main")).not_to_contain_text(CLIENT2_ADDRESS)

        # The visit window is open (it starts within the business's 24 hours before).
        page.goto(story.urls["client1"])
        expect(page.get_by_role("heading", level=1)).to_have_text(CLIENT1)
        expect(page.get_by_role("region", name="Home access")).to_contain_text(DOOR_CODE)
        # Staff cannot edit, assign or invite.
        expect(page.get_by_role("link", name="Edit client")).to_have_count(0)
        expect(page.get_by_role("button", name="Assign", exact=True)).to_have_count(0)
        expect(page.get_by_role("button", name="Send portal invitation")).to_have_count(0)

        follow_nav(page, "Today")
        expect(page).to_have_title("Today · Custodia")
        card = page.locator("li.card").filter(has_text=CLIENT1)
        expect(card).to_have_count(1)
        expect(card.get_by_role("heading", level=2)).to_have_text(f"{VISIT_HOURS} · {CLIENT1}")
        expect(card).to_contain_text(SERVICE)
        expect(card).to_contain_text(DOOR_CODE)


def test_06_client_joins_the_portal_and_sees_only_themselves(story: Story) -> None:
    with story.step("portal", after=("visit",)):
        owner = story.people["owner"]
        page = owner.page
        page.goto(story.urls["client1"])
        email = page.get_by_label("Client's email address")
        expect(email).to_have_value(CLIENT1_EMAIL)
        email.fill(CLIENT1_EMAIL)
        page.get_by_role("button", name="Send portal invitation").click()
        expect_message(owner, "Portal invitation sent.")

        client = accept_invitation(story, "client", CLIENT1_EMAIL, CLIENT1, CLIENT1_PASSWORD)
        portal = client.page
        expect(portal).to_have_title("My portal · Custodia")
        expect(portal.get_by_role("heading", level=1)).to_have_text(f"Hello, {CLIENT1}")
        mine = portal.get_by_role("region", name="Your details")
        expect(mine).to_contain_text(CLIENT1_EMAIL)
        expect(mine).to_contain_text(CLIENT1_PHONE)
        upcoming = portal.get_by_role("region", name="Your upcoming visits")
        expect(upcoming).to_contain_text(VISIT_HOURS)
        expect(upcoming).to_contain_text(SERVICE)
        expect(upcoming).to_contain_text("Scheduled")
        # The client sees who is coming (RLS shows them the staff of their own visits only).
        expect(upcoming).to_contain_text(STAFF_NAME)
        expect(portal.get_by_role("main")).not_to_contain_text(CLIENT2)

        # Nothing of the business's other records. The client list is not for clients at all:
        # refused (a 403 names no record) or sent back to the portal.
        main = portal.get_by_role("main")
        response = portal.goto(story.url("/app/clients/"))
        assert response is not None
        if path_of(portal.url) != "/app/portal/":
            assert response.status == 403, response.status
            expect(portal).to_have_title("Not allowed · Custodia")
        expect(main).not_to_contain_text(CLIENT2)
        # Another client's page does not exist for them; their own leads back to the portal.
        response = portal.goto(story.urls["client2"])
        assert response is not None and response.status == 404
        expect(portal).to_have_title("Not found · Custodia")
        expect(main).not_to_contain_text(CLIENT2)
        expect(main).not_to_contain_text(CLIENT2_ADDRESS)
        portal.goto(story.urls["client1"])
        expect(portal).to_have_url(re.compile(r"/app/portal/$"))

        tomorrow = dt.datetime.now(SERVER_TZ).date() + dt.timedelta(days=1)
        wanted = dt.datetime.combine(tomorrow, dt.time(10, 0))
        form = portal.get_by_role("region", name="Request a visit")
        form.get_by_label("Service").select_option(label=f"{SERVICE} (60 min)")
        form.get_by_label("Preferred start").fill(f"{wanted:{LOCAL_INPUT}}")
        form.get_by_label("Note for the business").fill("Please ring twice.")
        form.get_by_role("button", name="Request a visit").click()
        expect_message(client, "Your request was sent.")
        expect(portal.get_by_role("region", name="Your upcoming visits")).to_contain_text(
            "Requested"
        )

        # The owner sees the request waiting.
        follow_nav(page, "Dashboard")
        requests = page.get_by_role("region", name="Pending visit requests")
        expect(requests).to_contain_text(CLIENT1)
        expect(requests).to_contain_text(f"{wanted:%H:%M}")


def test_07_browser_sees_security_headers_cookies_and_no_csp_violations(story: Story) -> None:
    with story.step("security", after=("signup",)):
        owner = story.people["owner"]
        response = owner.page.goto("/app/")
        assert response is not None and response.ok
        expect(owner.page).to_have_title("Dashboard · Custodia")
        headers = response.headers
        csp = headers.get("content-security-policy", "")
        assert "default-src 'self'" in csp, csp
        assert "script-src 'self'" in csp, csp
        assert "frame-ancestors 'none'" in csp, csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
        assert "max-age=" in headers.get("strict-transport-security", "")
        assert headers.get("x-frame-options") == "DENY"
        assert headers.get("x-content-type-options") == "nosniff"
        assert headers.get("referrer-policy") == "same-origin"

        for person in story.people.values():
            for name in ("__Host-sessionid", "__Host-csrftoken"):
                cookie = person.cookie(name)
                assert cookie["secure"] is True, (person.label, name)
                assert cookie["httpOnly"] is True, (person.label, name)
                assert cookie["path"] == "/", (person.label, name)
                assert cookie["sameSite"] == "Lax", (person.label, name)
            # What HttpOnly means for the page: its scripts see no cookie at all.
            assert person.page.evaluate("document.cookie") == "", person.label

        assert len(set(story.visited)) >= 10, story.visited
        assert not story.csp_violations, story.csp_violations
        assert not story.page_errors, story.page_errors


def test_08_screenshots_for_a_person_to_look_at(story: Story) -> None:
    """Not a check: pictures of the main pages for a human review (see CUSTODIA_E2E_SCREENSHOTS)."""
    with story.step("screenshots", after=("portal",)):
        shots = {
            "owner": {"dashboard": "/app/", "calendar": "/app/calendar/"},
            "client": {"portal": "/app/portal/"},
            "staff": {"today": "/app/today/", "staff-client": story.urls["client1"]},
        }
        shots["owner"]["client"] = story.urls["client1"]
        shots["owner"]["visit"] = story.urls["visit"]
        shots["staff"]["not-found"] = story.urls["client2"]
        for label, pages in shots.items():
            person = story.people[label]
            for name, target in pages.items():
                person.page.goto(target)
                story.snap(person, name)
        assert not story.csp_violations, story.csp_violations


# Each person's pages, checked at a phone's and a desktop's width.
WIDTHS = (390, 1280)


def _pages_of(story: Story) -> dict[str, dict[str, str]]:
    return {
        "owner": {
            "dashboard": "/app/",
            "calendar": "/app/calendar/",
            "clients": "/app/clients/",
            "client": story.urls["client1"],
            "visit": story.urls["visit"],
            "staff": "/app/staff/",
            "audit": "/app/audit/",
            "business security": "/app/business/security/",
            "retention": "/app/business/retention/",
            "export": "/app/business/export/",
            "delete business": "/app/business/delete/",
            "services": "/app/services/",
            "new visit": "/app/visits/new/",
            "account security": "/app/security/",
            "tokens": "/app/tokens/",
            "security page": "/security/",
        },
        "staff": {
            "today": "/app/today/",
            "client": story.urls["client1"],
            "visit": story.urls["visit"],
        },
        "client": {"portal": "/app/portal/", "request a visit": "/app/portal/request/"},
    }


def test_09_every_page_fits_a_phone_and_a_desktop(story: Story) -> None:
    """No page is wider than the screen (no sideways scrolling) at 390 px or at 1280 px."""
    with story.step("widths", after=("portal",)):
        too_wide = []
        for label, pages in _pages_of(story).items():
            page = story.people[label].page
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 900})
                for name, target in pages.items():
                    response = page.goto(target)
                    assert response is not None and response.ok, (label, name, target)
                    scroll = page.evaluate("document.documentElement.scrollWidth")
                    if scroll > width:
                        too_wide.append(f"{label} {name} ({target}) at {width}: {scroll} px")
                    if width < 1280:
                        story.snap(story.people[label], f"{width}-{label}-{name.replace(' ', '-')}")
            page.set_viewport_size({"width": 1280, "height": 900})
        assert not too_wide, "\n".join(too_wide)
        assert not story.csp_violations, story.csp_violations
