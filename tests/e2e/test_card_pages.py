"""The card pages in a real browser against `custodia serve` and its own card vault, on a 390 px
phone without JavaScript: add a client's card in the vault's framed form, charge an invoice with
it, refund part; every page fits the phone and the desktop width, and the strict CSP (with the
vault's origin framed on the add-a-card page only) reports nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from tests.e2e.test_payments_pages import DESKTOP, PHONE, fits
from tests.servers import create_business

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage

pytestmark = pytest.mark.e2e

EMAIL = "carla.cards@example.com"
PASSWORD = "copper-heron-lake-73"  # noqa: S105 (a test login's password, not a secret)
BUSINESS = "Card Carrying Cats"
VISA = "4242424242424242"


@pytest.fixture(scope="module")
def card_owner(e2e_database: str) -> str:
    create_business(e2e_database, BUSINESS, EMAIL, PASSWORD)
    return EMAIL


@pytest.fixture
def phone(browser: Browser, e2e_server: str) -> Iterator[BrowserContext]:
    context = browser.new_context(
        ignore_https_errors=True, base_url=e2e_server, viewport=PHONE, java_script_enabled=False
    )
    context.set_default_timeout(15_000)
    try:
        yield context
    finally:
        context.close()


def test_add_a_card_charge_and_refund_on_a_phone_without_javascript(
    card_owner: str, phone: BrowserContext, browser: Browser, e2e_server: str
) -> None:
    violations: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    page = phone.new_page()
    page.on("console", on_console)
    page.goto("/accounts/login/")
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).to_have_title("Dashboard · Custodia")

    page.goto("/app/payments/catalog/")
    page.get_by_label("Pass name").fill("Five visits")
    page.get_by_label("Credits (visits)").fill("5")
    page.get_by_label("Price", exact=True).fill("110.00")
    page.get_by_label("Valid for (days)").fill("60")
    page.get_by_role("button", name="Add pass").click()
    page.goto("/app/clients/new/")
    page.get_by_label("Name", exact=True).fill("Carl Card")
    page.get_by_role("button", name="Create client").click()
    page.get_by_role("link", name="Cards", exact=True).click()
    cards = page.url.removeprefix(e2e_server)
    page.get_by_role("button", name="Add a card").click()
    expect(page.locator("h1")).to_have_text("Add a card for Carl Card")
    frame = page.frame_locator("iframe.card-frame")
    frame.get_by_label("Card number").fill(VISA)
    frame.get_by_label("Expiry (MM/YY)").fill("12/39")
    frame.get_by_label("Security code").fill("123")
    frame.get_by_label("Name on card").fill("Carl Card")
    frame.get_by_role("button", name="Save card").click()
    expect(page.locator(".messages")).to_contain_text("Visa ending 4242 saved.")
    expect(page.locator("table")).to_contain_text("12/2039")
    assert VISA not in page.content()

    page.goto(cards.replace("/cards/", "/passes/"))
    page.get_by_role("button", name="Sell pass").click()
    invoice = page.url.removeprefix(e2e_server)
    page.get_by_role("button", name="Charge $110.00").click()
    page.goto(invoice)
    expect(page.locator(".details").first).to_contain_text("Paid")
    expect(page.locator("table").last).to_contain_text("Visa ending 4242")
    page.get_by_label("Refund amount").fill("10.00")
    page.get_by_role("button", name="Refund").click()
    page.goto(invoice)
    expect(page.locator(".details").first).to_contain_text("$10.00")
    assert violations == []

    fits(browser, e2e_server, phone.cookies(), [cards, invoice, f"{invoice}print/"])
    assert DESKTOP["width"] > PHONE["width"]
