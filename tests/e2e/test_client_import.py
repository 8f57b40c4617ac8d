"""Importing clients in a real browser on a 390 px phone: upload, preview, confirm without
JavaScript; the preview (rows to add, rows with errors) fits the screen and passes axe-core."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from tests.e2e.test_every_page import AXE, AXE_RUN
from tests.servers import create_business

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.e2e

EMAIL = "ivy.import@example.com"
PASSWORD = "copper-lantern-orchard-58"  # noqa: S105 (a test login's password, not a secret)
PHONE = {"width": 390, "height": 844}
LONG = "A very long address line without many breaks " * 8
GOOD = (
    "\ufeffName,Email,Phone,Address,Notes\n"
    f'Imogen Import,imogen@import.test,+44 20 7946 0001,"{LONG}",Two cats\n'
    "Ian Import,ian.with.a.really.long.address.to.wrap@a-long-domain-name.import.test,,,\n"
)
BAD = "name,email\nIrene Import,irene@\n,nobody@import.test\n"


@pytest.fixture(scope="module")
def owner_login(e2e_database: str) -> str:
    create_business(e2e_database, "Import Pet Care", EMAIL, PASSWORD)
    return EMAIL


def phone_context(browser: Browser, e2e_server: str, *, javascript: bool) -> BrowserContext:
    context = browser.new_context(
        ignore_https_errors=True,
        base_url=e2e_server,
        viewport=PHONE,
        java_script_enabled=javascript,
    )
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
def no_script(browser: Browser, e2e_server: str) -> Iterator[BrowserContext]:
    context = phone_context(browser, e2e_server, javascript=False)
    try:
        yield context
    finally:
        context.close()


def log_in(page: Page) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).to_have_title("Dashboard · Custodia")


def preview(page: Page, tmp_path: Path, content: str) -> None:
    page.goto("/app/clients/")
    page.get_by_role("link", name="Import clients").click()
    expect(page).to_have_title("Import clients · Custodia")
    path = tmp_path / "clients.csv"
    path.write_text(content, encoding="utf-8")
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Preview the import").click()
    expect(page).to_have_title("Import preview · Custodia")


def checked(page: Page) -> list[str]:
    """Wider than the phone, or axe-core's serious findings."""
    found = []
    width = page.evaluate("document.documentElement.scrollWidth")
    if width > PHONE["width"]:
        found.append(f"{width} px wide on a {PHONE['width']} px screen")
    page.evaluate(AXE.read_text())
    return found + list(page.evaluate(AXE_RUN))


def test_import_on_a_phone_without_javascript(
    owner_login: str, no_script: BrowserContext, browser: Browser, e2e_server: str, tmp_path: Path
) -> None:
    page = no_script.new_page()
    log_in(page)
    preview(page, tmp_path, BAD)
    expect(page.get_by_role("alert")).to_contain_text("2 rows have errors")
    expect(page.locator("main")).to_contain_text("email: Enter a valid email address.")
    expect(page.locator("main")).to_contain_text("name: A client needs a name.")
    expect(page.get_by_role("button", name=re.compile(r"^Import \d"))).to_have_count(0)

    preview(page, tmp_path, GOOD)
    expect(page.get_by_role("status")).to_contain_text("2 clients will be added")
    page.get_by_role("button", name="Import 2 clients").click()
    expect(page).to_have_title("Clients · Custodia")
    expect(page.locator("main")).to_contain_text("Imported 2 clients.")
    expect(page.get_by_role("link", name="Imogen Import")).to_be_visible()

    # Both previews, measured and checked with JavaScript on, in the same session.
    measuring = phone_context(browser, e2e_server, javascript=True)
    try:
        measuring.add_cookies(no_script.cookies())
        shown = measuring.new_page()
        problems = []
        for content in (BAD, GOOD.replace("import.test", "again.test")):
            preview(shown, tmp_path, content)
            problems += checked(shown)
        shown.goto("/app/clients/import/")
        problems += checked(shown)
    finally:
        measuring.close()
    assert problems == []
