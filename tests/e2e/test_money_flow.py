"""The whole card-payments flow in Chromium, then a sweep for card data everywhere it could leak.

An owner (desktop) sets up a one-visit pass on sale, a service, a manager granted card payments,
a staff member assigned to a client, and invites the client to the portal by email. The client,
on a 390 px phone with JavaScript on, adds an American Express card in the vault's framed form and
buys the pass with it. The staff member completes a visit (the pass's credit is used), then a
second one (no credit left: invoiceable); the manager invoices it and issues the invoice; the
client pays it with the saved card and is emailed a receipt naming the brand and last four only;
the manager refunds part of the payment. Each card action passes the step-up page when shown.

Then: no response the browsers received (from the app or the vault), no email, no line the app,
its job worker or the vault printed, and nothing in a superuser pg_dump of the app's database
holds the card number (run together or grouped) or the security code. That the app's database
role cannot even connect to the vault's database is tests/vault/test_isolation.py's. Every page
the client saw fits a phone and a desktop, and no page broke the CSP.

The steps run in order and share one `story`; a step whose predecessor failed is skipped.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

from tests.crypto.test_dump import pg_dump
from tests.e2e.support import Person, Story
from tests.e2e.test_business_day import (
    LOCAL_INPUT,
    accept_invitation,
    add_client,
    expect_message,
    path_of,
    visit_times,
)
from tests.e2e.test_payments_pages import PHONE, fits
from tests.payments.cards import card_number_pattern, security_code_alone
from tests.servers import create_business

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Response

pytestmark = pytest.mark.e2e

BUSINESS = "Copper Coin Kennels"
OWNER_EMAIL = "otto@copper-coin.example.com"
OWNER_PASSWORD = "walnut-signal-harbor-46"  # noqa: S105 (a test login's password)
MANAGER_NAME = "Mona Ledger"
MANAGER_EMAIL = "mona@copper-coin.example.com"
MANAGER_PASSWORD = "saffron-pebble-orbit-19"  # noqa: S105
STAFF_NAME = "Stan Strider"
STAFF_EMAIL = "stan@copper-coin.example.com"
STAFF_PASSWORD = "juniper-tundra-cobalt-52"  # noqa: S105
CLIENT_NAME = "Clara Coin"
CLIENT_EMAIL = "clara@coin.example.com"
CLIENT_PASSWORD = "marble-falcon-ribbon-84"  # noqa: S105
PASS_NAME = "One walk"
SERVICE = "Long walk"

# A sandbox card that is approved (docs/payments.md), with an unusual four-digit code.
AMEX = "378282246310005"
AMEX_GROUPED = "3782 822463 10005"
AMEX_CODE = "8317"
AMEX_SHOWN = "American Express ending 0005"

# Text bodies worth reading (images, fonts and downloads hold no page text).
TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml")


def code_in_a_card_field(code: str) -> re.Pattern[str]:
    """The code as a form field's value, or shortly after a security-code label: in a page,
    where ids and amounts may hold the same four digits by chance, only that context counts."""
    near_label = r"(?:cvc|cvv|security[ _-]?code)[^<>]{0,80}(?:<[^>]*>[^<>]{0,80}){0,3}"
    return re.compile(
        rf"(?is)value\s*=\s*[\"']?{code}\b|{near_label}(?<![0-9A-Za-z]){code}(?![0-9A-Za-z])"
    )


def on_the_app_or_vault(story: Story, url: str) -> bool:
    """Whether `url` is the app's or its card vault's (both are served as localhost)."""
    return url.startswith((story.base_url, "https://localhost:"))


@dataclass
class Seen:
    """What the people's browsers received from the app and the vault."""

    bodies: list[tuple[str, str]] = field(default_factory=list)  # (url, text body)
    # (browser context, path) of each page a GET loaded in a tab (not a frame).
    pages: list[tuple[BrowserContext, str]] = field(default_factory=list)

    def pages_of(self, person: Person) -> list[str]:
        """The paths of the pages `person` loaded, in order, without repeats."""
        paths = [path for context, path in self.pages if context is person.context]
        return list(dict.fromkeys(paths))


@pytest.fixture(scope="module")
def seen(story: Story, e2e_database: str) -> Seen:
    """The business (made with its owner), and from now on every text response body the
    people's browsers receive from the app or the vault, and the pages they load."""
    create_business(e2e_database, BUSINESS, OWNER_EMAIL, OWNER_PASSWORD)
    received = Seen()

    def on_response(response: Response) -> None:
        if not on_the_app_or_vault(story, response.url) or 300 <= response.status < 400:
            return
        request = response.request
        if (
            request.resource_type == "document"
            and request.method == "GET"
            and response.frame.parent_frame is None
            and response.url.startswith(story.base_url)
        ):
            received.pages.append((response.frame.page.context, path_of(response.url)))
        if response.headers.get("content-type", "").startswith(TEXT_TYPES):
            received.bodies.append((response.url, response.body().decode(errors="replace")))

    def watch(context: BrowserContext) -> None:
        context.on("response", on_response)

    story.watchers.append(watch)
    return received


def confirm_if_asked(person: Person, password: str) -> bool:
    """On the step-up page, confirm with the password (the person lands back on the page they
    submitted from); whether it was shown."""
    page = person.page
    if "/accounts/reauthenticate/" not in page.url:
        return False
    expect(page.get_by_label("Password", exact=True)).to_be_visible()
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Confirm").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/reauthenticate/"))
    return True


def card_action(person: Person, password: str, submit: Callable[[], None]) -> None:
    """Submit a card action; when the card window was closed and the step-up page came
    instead, confirm and submit again (a form is not replayed)."""
    submit()
    person.page.wait_for_load_state()
    if confirm_if_asked(person, password):
        submit()
        person.page.wait_for_load_state()


def fits_the_screen(page: Page) -> None:
    """The page is no wider than its viewport (no sideways scrolling)."""
    viewport = page.viewport_size
    assert viewport is not None
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], (path_of(page.url), width, viewport)


def log_in(story: Story, label: str, email: str, password: str) -> Person:
    """A new person at a desktop browser, logged in with their password."""
    person = story.person(label)
    page = person.page
    page.goto("/accounts/login/")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).to_have_title("Dashboard · Custodia")
    return person


def invite(owner: Person, email: str, role: str) -> None:
    """Invite a team member from the staff page."""
    page = owner.page
    page.goto("/app/staff/")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Role", exact=True).select_option(label=role)
    page.get_by_role("button", name="Send invitation").click()
    expect_message(owner, "Invitation sent.")


def client_passes_row(page: Page) -> str:
    """The client's one pass, as the My passes table shows it."""
    page.goto("/app/passes/")
    expect(page.locator("h1")).to_have_text("My passes")
    row = page.locator("table tbody tr").filter(has_text=PASS_NAME)
    expect(row).to_have_count(1)
    return row.inner_text()


def test_01_owner_sets_up_the_business_and_its_people(story: Story, seen: Seen) -> None:
    with story.step("setup"):
        owner = log_in(story, "owner", OWNER_EMAIL, OWNER_PASSWORD)
        page = owner.page
        page.goto("/app/payments/catalog/")
        page.get_by_label("Pass name").fill(PASS_NAME)
        page.get_by_label("Credits (visits)").fill("1")
        page.get_by_label("Price", exact=True).fill("30.00")
        page.get_by_label("Valid for (days)").fill("60")
        page.get_by_role("button", name="Add pass").click()
        expect_message(owner, "Pass type added.")
        expect(page.locator("table").first).to_contain_text("On sale")

        page.goto("/app/services/new/")
        page.get_by_label("Service name").fill(SERVICE)
        page.get_by_label("Duration (minutes)").fill("60")
        page.get_by_label("Price").fill("25.00")
        page.get_by_role("button", name="Create service").click()
        expect_message(owner, "Service created.")

        invite(owner, MANAGER_EMAIL, "Manager")
        accept_invitation(
            story, "manager", MANAGER_EMAIL, MANAGER_NAME, MANAGER_PASSWORD, business=BUSINESS
        )
        invite(owner, STAFF_EMAIL, "Staff")
        accept_invitation(
            story, "staff", STAFF_EMAIL, STAFF_NAME, STAFF_PASSWORD, business=BUSINESS
        )

        # The owner grants the manager card payments (a fresh step-up, inside the action).
        page.goto("/app/staff/")
        row = page.locator("table tbody tr").filter(has_text=MANAGER_NAME)

        def grant() -> None:
            row.get_by_role("button", name=re.compile("^Grant card payments")).click()

        card_action(owner, OWNER_PASSWORD, grant)
        expect(row).to_contain_text("card payments")

        story.urls["client"] = add_client(owner, CLIENT_NAME, email=CLIENT_EMAIL)
        page.get_by_label("Staff member").select_option(label=f"{STAFF_NAME} (Staff)")
        page.get_by_role("button", name="Assign", exact=True).click()
        expect_message(owner, "Staff member assigned.")
        expect(page.get_by_label("Client's email address")).to_have_value(CLIENT_EMAIL)
        page.get_by_role("button", name="Send portal invitation").click()
        expect_message(owner, "Portal invitation sent.")

        client = accept_invitation(
            story,
            "client",
            CLIENT_EMAIL,
            CLIENT_NAME,
            CLIENT_PASSWORD,
            business=BUSINESS,
            viewport=PHONE,
        )
        expect(client.page).to_have_title("My portal · Custodia")
        fits_the_screen(client.page)
        assert seen.bodies and seen.pages_of(client), "the browsers' responses are collected"


def test_02_client_adds_a_card_in_the_vault_frame_and_buys_the_pass(story: Story) -> None:
    with story.step("card", after=("setup",)):
        client = story.people["client"]
        page = client.page
        assert page.evaluate("typeof window.fetch") == "function"  # JavaScript is on
        page.goto("/app/cards/")
        expect(page.locator("h1")).to_have_text("My cards")
        fits_the_screen(page)
        card_action(
            client,
            CLIENT_PASSWORD,
            lambda: page.get_by_role("button", name="Add a card").click(),
        )
        expect(page.locator("h1")).to_have_text("Add a card")
        frame = page.frame_locator("iframe.card-frame")
        frame.get_by_label("Card number").fill(AMEX_GROUPED)
        frame.get_by_label("Expiry (MM/YY)").fill("11/38")
        frame.get_by_label("Security code").fill(AMEX_CODE)
        frame.get_by_label("Name on card").fill(CLIENT_NAME)
        fits_the_screen(page)
        story.snap(client, "money-card-form")
        frame.get_by_role("button", name="Save card").click()
        expect_message(client, f"{AMEX_SHOWN} saved.")
        expect(page).to_have_url(re.compile(r"/app/cards/$"))
        expect(page.locator("table")).to_contain_text("11/2038")

    with story.step("pass", after=("card",)):
        page.goto("/app/passes/")
        buy = page.get_by_role("region", name="Buy a pass")
        buy.get_by_label("Pass").select_option(label=f"{PASS_NAME}: 1 credits, $30.00")
        expect(buy.get_by_label("Card")).to_contain_text(AMEX_SHOWN)
        card_action(
            client,
            CLIENT_PASSWORD,
            lambda: buy.get_by_role("button", name="Buy and pay by card").click(),
        )
        expect_message(client, "Pass bought and paid.")
        expect(page.locator(".details").first).to_contain_text("Paid")
        expect(page.locator("table").last).to_contain_text(AMEX_SHOWN)
        receipt = story.mailbox.receive(CLIENT_EMAIL)
        assert AMEX_SHOWN in receipt.body, receipt.body
        row = client_passes_row(page)
        assert "1 of 1" in row and "Active" in row, row


def schedule_visit(manager: Person, story: Story, hours_earlier: int) -> str:
    """The manager schedules a visit of the client with the staff member, `hours_earlier`
    than the next hour's; its URL."""
    start, end = visit_times()
    page = manager.page
    page.goto(story.urls["client"])
    page.get_by_role("link", name="Schedule a visit").click()
    page.get_by_label("Staff member").select_option(label=f"{STAFF_NAME} (Staff)")
    page.get_by_label("Service").select_option(label=f"{SERVICE} (60 min)")
    shift = dt.timedelta(hours=hours_earlier)
    page.get_by_label("Start", exact=True).fill(f"{start - shift:{LOCAL_INPUT}}")
    page.get_by_label("End").fill(f"{end - shift:{LOCAL_INPUT}}")
    page.get_by_role("button", name="Schedule visit").click()
    expect_message(manager, "Visit scheduled.")
    return page.url


def complete_visit(staff: Person, url: str) -> None:
    """The staff member marks their visit completed."""
    page = staff.page
    page.goto(url)
    page.get_by_label("Status", exact=True).select_option(label="Completed")
    page.get_by_label("Visit report").fill("Walked the long loop by the river.")
    page.get_by_role("button", name="Save visit").click()
    expect_message(staff, "Visit saved.")
    expect(page.locator("dl.details")).to_contain_text("Completed")


def test_03_visits_take_the_credit_then_one_is_invoiced(story: Story) -> None:
    with story.step("visits", after=("pass",)):
        manager = log_in(story, "manager-desk", MANAGER_EMAIL, MANAGER_PASSWORD)
        story.people["manager"] = manager
        staff = story.people["staff"]
        client = story.people["client"]
        first = schedule_visit(manager, story, 2)
        second = schedule_visit(manager, story, 1)
        assert first != second

        complete_visit(staff, first)
        row = client_passes_row(client.page)
        assert "0 of 1" in row and "Used up" in row, row

        complete_visit(staff, second)
        page = manager.page
        page.goto(story.urls["client"].rstrip("/") + "/passes/")
        page.get_by_role("button", name="Invoice completed visits").click()
        expect_message(manager, "Draft invoice created.")
        lines = page.locator("table").first
        expect(lines).to_contain_text(SERVICE)
        expect(lines).to_contain_text("$25.00")
        page.get_by_role("button", name="Issue invoice").click()
        expect(page.locator("h1")).to_have_text("Invoice 2")
        expect(page.locator(".details").first).to_contain_text("Open")
        story.urls["invoice"] = path_of(page.url)


def test_04_client_pays_the_invoice_with_the_saved_card(story: Story) -> None:
    with story.step("paid", after=("visits",)):
        client = story.people["client"]
        page = client.page
        page.goto("/app/invoices/")
        expect(page.locator("h1")).to_have_text("My invoices")
        page.get_by_role("link", name="No. 2").click()
        expect(page).to_have_url(story.url(story.urls["invoice"]))
        charge = page.get_by_role("region", name="Pay by card")
        expect(charge.get_by_label("Card")).to_contain_text(AMEX_SHOWN)
        card_action(
            client,
            CLIENT_PASSWORD,
            lambda: page.get_by_role("button", name="Charge $25.00").click(),
        )
        expect(page.locator(".details").first).to_contain_text("Paid")
        expect(page.locator("table").last).to_contain_text(AMEX_SHOWN)
        expect(page.locator("table").last).to_contain_text("Succeeded")
        receipt = story.mailbox.receive(CLIENT_EMAIL)
        assert receipt.subject == "Receipt: invoice 2 paid by card", receipt.subject
        assert f"Card: {AMEX_SHOWN}" in receipt.body, receipt.body
        assert "$25.00" in receipt.body, receipt.body


def test_05_manager_refunds_part_of_the_payment(story: Story) -> None:
    with story.step("refund", after=("paid",)):
        manager = story.people["manager"]
        page = manager.page
        page.goto(story.urls["invoice"])

        def refund() -> None:
            page.get_by_label("Refund amount").fill("10.00")
            page.get_by_role("button", name="Refund", exact=True).click()

        card_action(manager, MANAGER_PASSWORD, refund)
        expect_message(manager, "Refund sent")
        details = page.locator(".details").first
        expect(details).to_contain_text("Paid")
        expect(details).to_contain_text("$10.00")
        refunds = page.get_by_role("table").last
        expect(refunds).to_contain_text("$10.00")
        expect(refunds).to_contain_text("Succeeded")
        # The client sees the refund on their invoice too.
        client = story.people["client"]
        client.page.goto(story.urls["invoice"])
        expect(client.page.locator(".details").first).to_contain_text("$10.00")


def email_texts(story: Story) -> list[tuple[str, str]]:
    """Every email the app sent in this session: each raw message (headers and encoded parts)
    and each text part decoded."""
    texts = []
    for message in story.mailbox.smtp.messages:
        texts.append((message.subject, message.message.as_string()))
        for part in message.message.walk():
            if part.get_content_maintype() == "text":
                texts.append((message.subject, str(part.get_content())))
    return texts


def test_06_no_card_number_or_security_code_anywhere(
    story: Story, seen: Seen, e2e_database: str, e2e_server_log: Path
) -> None:
    with story.step("sweep", after=("refund",)):
        number = card_number_pattern(AMEX)
        code = security_code_alone(AMEX_CODE)
        in_a_field = code_in_a_card_field(AMEX_CODE)
        # The checks can fail: they find what they look for in every form it could take.
        for written in (AMEX, AMEX_GROUPED, "3782-8224-6310-005"):
            assert number.search(f"card {written}."), written
        assert code.search(f'{{"cvc": "{AMEX_CODE}"}}') and in_a_field.search(
            f'<label for="c">Security code</label><input id="c" value="{AMEX_CODE}">'
        )
        assert not code.search(f"id 9c{AMEX_CODE}e1, 12:{AMEX_CODE}, 0.{AMEX_CODE}")

        # Responses: the card's pages and the vault's framed form were among them.
        bodies = seen.bodies
        urls = [url for url, _body in bodies]
        assert any("/app/cards/" in url for url in urls), urls
        assert any("/form/" in url and not url.startswith(story.base_url) for url in urls)
        assert any(AMEX_SHOWN in body for _url, body in bodies)
        leaks = [url for url, body in bodies if number.search(body) or in_a_field.search(body)]
        assert not leaks, f"card data in responses: {leaks}"

        # Emails: invitations, two receipts (brand and last four only).
        emails = email_texts(story)
        receipts = [
            message.body
            for message in story.mailbox.smtp.messages
            if CLIENT_EMAIL in message.recipients and message.subject.startswith("Receipt:")
        ]
        assert len(receipts) == 2 and all(AMEX_SHOWN in text for text in receipts), receipts
        leaks = [s for s, text in emails if number.search(text) or code.search(text)]
        assert not leaks, f"card data in emails: {leaks}"

        # The app's, its job worker's and the vault's output (one log, all processes).
        log = e2e_server_log.read_text(errors="replace")
        assert "custodia.vault.charging" in log and "refund re_" in log, log[-2000:]
        # granian names its processes' ids, which may be any four digits.
        log = re.sub(r"\bPID: \d+", "PID: -", log)
        leaks = [line for line in log.splitlines() if number.search(line) or code.search(line)]
        assert not leaks, f"card data in the server's log: {len(leaks)} lines"

        # The app's database, every column of every table, as the superuser sees it.
        dump = pg_dump(e2e_database)
        assert "\t0005\t" in dump  # the card is there, as its last four
        assert not number.search(dump), "the card number is in the app's database"
        assert not code.search(dump), "the security code is in the app's database"


# Pages that answer once (a one-time link or reference) or only in the flow that led there.
ONE_TIME = ("/invite/", "/app/cards/added/", "/accounts/reauthenticate/")


def test_07_every_client_page_fits_and_no_page_broke_the_csp(story: Story, seen: Seen) -> None:
    with story.step("pages", after=("refund",)):
        client = story.people["client"]
        pages = [path for path in seen.pages_of(client) if not path.startswith(ONE_TIME)]
        for expected in ("/app/portal/", "/app/cards/", "/app/passes/", story.urls["invoice"]):
            assert expected in pages, (expected, pages)
        pages.append(f"{story.urls['invoice']}print/")
        fits(story.browser, story.base_url, client.context.cookies(), pages)
        assert not story.csp_violations, story.csp_violations
        assert not story.page_errors, story.page_errors
