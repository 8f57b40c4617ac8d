"""The payments pages in a real browser, on a 390 px phone without JavaScript: add a punch pass,
sell it to a client, take a cash payment, print the receipt; every page fits the phone and the
desktop width, and the strict CSP reports nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from tests.servers import create_business

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page

pytestmark = pytest.mark.e2e

EMAIL = "pia.payments@example.com"
PASSWORD = "amber-falcon-river-58"  # noqa: S105 (a test login's password, not a secret)
BUSINESS = "Punch Pass Pets"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
CSP_MARKER = "Content Security Policy"


@pytest.fixture(scope="module")
def owner_login(e2e_database: str) -> str:
    create_business(e2e_database, BUSINESS, EMAIL, PASSWORD)
    return EMAIL


@pytest.fixture
def phone(browser: Browser, e2e_server: str) -> Iterator[BrowserContext]:
    context = browser.new_context(
        ignore_https_errors=True, base_url=e2e_server, viewport=PHONE, java_script_enabled=False
    )
    context.set_default_timeout(10_000)
    try:
        yield context
    finally:
        context.close()


def fits(browser: Browser, e2e_server: str, cookies: list, paths: list[str]) -> None:
    """Each page, in the same session with JavaScript on (to measure), is no wider than the
    phone and the desktop screen, and breaks no rule of the CSP."""
    for viewport in (PHONE, DESKTOP):
        context = browser.new_context(
            ignore_https_errors=True, base_url=e2e_server, viewport=viewport
        )
        violations: list[str] = []

        def on_console(message: ConsoleMessage, seen: list[str] = violations) -> None:
            if CSP_MARKER in message.text:
                seen.append(message.text)

        try:
            context.add_cookies(cookies)
            context.on("console", on_console)
            page = context.new_page()
            for path in paths:
                answer = page.goto(path)
                assert answer is not None and answer.status == 200, path
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= viewport["width"], (path, viewport, width)
        finally:
            context.close()
        assert violations == []


def log_in(page: Page) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).to_have_title("Dashboard · Custodia")


def test_sell_a_pass_and_take_cash_without_javascript_on_a_phone(
    owner_login: str, phone: BrowserContext, browser: Browser, e2e_server: str
) -> None:
    page = phone.new_page()
    log_in(page)

    page.get_by_role("link", name="Passes and plans").click()
    expect(page).to_have_title("Passes and plans · Custodia")
    page.get_by_label("Pass name").fill("Ten walks")
    page.get_by_label("Credits (visits)").fill("10")
    page.get_by_label("Price", exact=True).fill("200.00")
    page.get_by_label("Valid for (days)").fill("90")
    page.get_by_role("button", name="Add pass").click()
    expect(page.locator(".messages")).to_contain_text("Pass type added.")
    expect(page.locator("table").first).to_contain_text("$200.00")

    page.goto("/app/clients/new/")
    page.get_by_label("Name", exact=True).fill("Rita Receipt")
    page.get_by_role("button", name="Create client").click()
    page.get_by_role("link", name="Passes and invoices").click()
    expect(page).to_have_title("Passes of Rita Receipt · Custodia")
    client_passes = page.url
    page.get_by_role("button", name="Sell pass").click()
    expect(page.locator("h1")).to_have_text("Invoice 1")
    invoice = page.url

    page.get_by_label("Amount received").fill("250")
    page.get_by_role("button", name="Record payment").click()
    expect(page.locator(".form-errors, .errorlist").first).to_contain_text("Only $200.00 is due")
    page.get_by_label("Amount received").fill("200.00")
    page.get_by_role("button", name="Record payment").click()
    expect(page.locator(".messages")).to_contain_text("Payment recorded.")
    expect(page.locator(".details").first).to_contain_text("Paid")
    page.get_by_role("link", name="Receipt", exact=True).click()
    expect(page.locator("h1")).to_have_text("Receipt No. 1")

    fits(
        browser,
        e2e_server,
        phone.cookies(),
        [
            "/app/payments/catalog/",
            client_passes.removeprefix(e2e_server),
            invoice.removeprefix(e2e_server),
            f"{invoice.removeprefix(e2e_server)}print/",
            "/app/invoices/",
            "/app/invoices/?status=paid",
            "/app/passes/",
            "/app/payments/settings/",
        ],
    )
