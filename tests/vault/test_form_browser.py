"""The hosted form in headless Chromium: framed by a page of the app's origin it adds a card
and sends the top window back with a one-time reference; framed by any other origin the
browser refuses to show it (CSP frame-ancestors)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.vaults import SECRETS_TYPED, LiveVault

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
NUMBER = "5555555555554444"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless; missing, the test fails (never skipped)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(browser: Browser, width: int) -> Page:
    context = browser.new_context(
        ignore_https_errors=True, viewport={"width": width, "height": 800}
    )
    return context.new_page()


@pytest.mark.parametrize("width", [390, 1280])
def test_the_form_in_an_app_frame_adds_a_card(
    vault: LiveVault, browser: Browser, width: int
) -> None:
    business = uuid.uuid4()
    client = vault.client()
    form = client.create_form(business, f"{vault.app_origin}/done")
    page = open_page(browser, width)
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text))
    page.goto(f"{vault.app_origin}/embed?src={quote(form.form_url)}")
    frame = page.frame_locator("#vault")
    frame.locator("#number").fill(NUMBER)
    frame.locator("#expiry").fill("11/38")
    frame.locator("#security_code").fill("321")
    frame.locator("#holder_name").fill("Alan Turing")
    # The form fits the width: nothing runs off the frame sideways.
    inner = next(child for child in page.frames if child != page.main_frame)
    widths = inner.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1] and widths[1] >= width - 20, widths
    SECRETS_TYPED.update({NUMBER, "321"})
    frame.locator("button").click()
    page.wait_for_url(f"{vault.app_origin}/done?ref=*")
    ref = parse_qs(urlsplit(page.url).query)["ref"][0]
    card = client.redeem_reference(business, ref)
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == (
        "mastercard",
        "4444",
        11,
        2038,
    )
    assert not [text for text in violations if "Content Security Policy" in text], violations
    page.context.close()


def test_a_wrong_number_in_the_frame_shows_the_message_and_not_the_number(
    vault: LiveVault, browser: Browser
) -> None:
    form = vault.client().create_form(uuid.uuid4(), f"{vault.app_origin}/done")
    page = open_page(browser, 390)
    page.goto(f"{vault.app_origin}/embed?src={quote(form.form_url)}")
    frame = page.frame_locator("#vault")
    frame.locator("#number").fill("5555555555554445")
    frame.locator("#expiry").fill("11/38")
    frame.locator("#security_code").fill("321")
    frame.locator("#holder_name").fill("Alan Turing")
    frame.locator("button").click()
    # The answer (400) replaces the top page: the form again, with its message.
    page.wait_for_selector("#number-error")
    assert "check it for a typo" in page.content()
    assert page.locator("#number").input_value() == ""
    assert "5555555555554445" not in page.content()
    page.context.close()


def test_another_origin_cannot_frame_the_form(vault: LiveVault, browser: Browser) -> None:
    form = vault.client().create_form(uuid.uuid4(), f"{vault.app_origin}/done")
    page = open_page(browser, 1280)
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    page.goto(f"{vault.other_origin}/embed?src={quote(form.form_url)}")
    page.wait_for_timeout(500)
    framed = [frame for frame in page.frames if frame != page.main_frame]
    assert framed, "the iframe is there"
    assert all(frame.query_selector("#number") is None for frame in framed)
    assert any("frame-ancestors" in text for text in messages), messages
    # The same form, framed by the app's origin, is shown.
    page.goto(f"{vault.app_origin}/embed?src={quote(form.form_url)}")
    page.frame_locator("#vault").locator("#number").wait_for()
    page.context.close()
