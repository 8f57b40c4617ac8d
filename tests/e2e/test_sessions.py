"""Ending another session from the security panel, in two real browsers against the real server.

One owner logs in from two browser contexts (separate cookies, like a laptop and a phone); from
the laptop's security panel they end the phone's session; the phone is logged out on its next
request and the laptop stays logged in.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from tests.servers import create_business

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.e2e

EMAIL = "rosa.session@example.com"
PASSWORD = "marble-falcon-orchard-52"  # noqa: S105 (a test login's password, not a secret)
BUSINESS = "Two Browsers Grooming"


@pytest.fixture(scope="module")
def owner_login(e2e_database: str) -> str:
    """An owner with a verified address in the server's database, made with `custodia
    createbusiness` (the password read from a file, never from the command line)."""
    create_business(e2e_database, BUSINESS, EMAIL, PASSWORD)
    return EMAIL


@pytest.fixture
def contexts(browser: Browser, e2e_server: str) -> Iterator[list[BrowserContext]]:
    made: list[BrowserContext] = []
    for user_agent in (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    ):
        context = browser.new_context(
            ignore_https_errors=True, base_url=e2e_server, user_agent=user_agent
        )
        context.set_default_timeout(10_000)
        made.append(context)
    try:
        yield made
    finally:
        for context in made:
            context.close()


def log_in(page: Page, email: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).to_have_title("Dashboard · Custodia")


def test_ending_another_session_from_the_panel_logs_that_browser_out(
    owner_login: str, contexts: list[BrowserContext]
) -> None:
    laptop, phone = (context.new_page() for context in contexts)
    log_in(laptop, owner_login)
    log_in(phone, owner_login)
    phone_cookie_before = {c["name"]: c["value"] for c in contexts[1].cookies()}

    laptop.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Account security"
    ).click()
    expect(laptop).to_have_title("Security · Custodia")
    rows = laptop.locator("table.sessions tbody tr")
    expect(rows).to_have_count(2)
    this_row = rows.filter(has_text="(this session)")
    expect(this_row).to_contain_text("Chrome on Linux")
    other_row = rows.filter(has_text="Firefox on Windows")
    expect(other_row).not_to_contain_text("(this session)")

    other_row.get_by_role("button", name="End").click()
    expect(laptop.locator("ul.messages")).to_contain_text("Session ended")
    expect(laptop.locator("table.sessions tbody tr")).to_have_count(1)

    # The phone still holds its cookie, but its next request finds no session.
    assert phone_cookie_before == {c["name"]: c["value"] for c in contexts[1].cookies()}
    phone.goto("/app/clients/")
    expect(phone).to_have_title("Log in · Custodia")
    expect(phone.locator("ul.messages")).to_contain_text("Your session has ended.")
    phone.goto("/app/")
    expect(phone).to_have_title("Log in · Custodia")

    laptop.goto("/app/")
    expect(laptop).to_have_title("Dashboard · Custodia")
