"""Closing and reopening a business in a real browser on a 390 px wide screen without JavaScript:
the forms work, every page shows the closed banner, and nothing is wider than the screen."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from tests.servers import create_business

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.e2e

EMAIL = "olga.closing@example.com"
PASSWORD = "quartz-heron-meadow-77"  # noqa: S105 (a test login's password, not a secret)
BUSINESS = "Closing Time Cleaners"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def owner_login(e2e_database: str) -> str:
    create_business(e2e_database, BUSINESS, EMAIL, PASSWORD)
    return EMAIL


@pytest.fixture
def phone(browser: Browser, e2e_server: str) -> Iterator[BrowserContext]:
    context = browser.new_context(
        ignore_https_errors=True,
        base_url=e2e_server,
        viewport=PHONE,
        java_script_enabled=False,
    )
    context.set_default_timeout(10_000)
    try:
        yield context
    finally:
        context.close()


def fits(browser: Browser, e2e_server: str, cookies: list, paths: list[str]) -> None:
    """Each page, in the same session with JavaScript on (to measure), is no wider than 390."""
    context = browser.new_context(ignore_https_errors=True, base_url=e2e_server, viewport=PHONE)
    try:
        context.add_cookies(cookies)
        page = context.new_page()
        for path in paths:
            page.goto(path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], (path, width)
    finally:
        context.close()


def log_in(page: Page) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).to_have_title("Dashboard · Custodia")


def test_close_and_reopen_without_javascript_on_a_phone(
    owner_login: str, phone: BrowserContext, browser: Browser, e2e_server: str
) -> None:
    page = phone.new_page()
    log_in(page)
    page.goto("/app/business/security/")
    page.get_by_role("link", name="Close or delete this business").click()
    expect(page).to_have_title("Close or delete business · Custodia")
    fits(browser, e2e_server, phone.cookies(), ["/app/business/delete/"])

    page.get_by_label("Type the business's name to confirm").fill(BUSINESS)
    page.get_by_role("button", name="Close this business").click()
    expect(page.locator(".closed-banner")).to_contain_text(f"{BUSINESS} is closed.")
    expect(page.locator(".closed-banner")).to_contain_text("read-only until")
    for path in ("/app/", "/app/clients/", "/app/staff/"):
        page.goto(path)
        expect(page.locator(".closed-banner")).to_be_visible()
    fits(browser, e2e_server, phone.cookies(), ["/app/", "/app/business/delete/", "/app/clients/"])

    # A write is refused with the plain message.
    page.goto("/app/clients/new/")
    page.get_by_label("Name", exact=True).fill("Nobody")
    page.get_by_role("button", name="Create client").click()
    expect(page.locator("main")).to_contain_text("An owner can reopen it.")

    page.goto("/app/business/delete/")
    page.get_by_role("button", name=f"Reopen {BUSINESS}").click()
    expect(page.locator("ul.messages")).to_contain_text("is open again")
    expect(page.locator(".closed-banner")).to_have_count(0)


def test_erase_a_client_without_javascript_on_a_phone(
    owner_login: str, phone: BrowserContext, browser: Browser, e2e_server: str
) -> None:
    page = phone.new_page()
    log_in(page)
    page.goto("/app/clients/new/")
    page.get_by_label("Name", exact=True).fill("Erin Erasable")
    page.get_by_role("button", name="Create client").click()
    expect(page.locator("h1")).to_have_text("Erin Erasable")
    record = page.url
    page.get_by_role("link", name="Erase personal data").click()
    expect(page.locator("h1")).to_contain_text("Erase this client's personal data?")
    fits(
        browser,
        e2e_server,
        phone.cookies(),
        [page.url.removeprefix(e2e_server), record.removeprefix(e2e_server)],
    )
    page.get_by_role("button", name="Erase personal data").click()
    expect(page.locator("ul.messages")).to_contain_text("personal data was erased")
    expect(page.locator("h1")).to_have_text("Erased client")
    expect(page.locator("main")).not_to_contain_text("Erin")
