"""The webhook pages in Chromium without JavaScript, at 390 px and 1280 px: an owner adds an
endpoint, copies its secret from the one page that shows it, sends a test event and reads the
delivery log; nothing is wider than the screen."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.factories import PASSWORD, TenantMatrix
from tests.servers import start_server
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.e2e
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def server(
    webhooks_database: str, receiver_tls: tuple[Path, Path, Path], world: TenantMatrix
) -> Iterator[str]:
    base_url, stop = start_server(
        webhooks_database,
        {
            "CUSTODIA_KEYSTORE_DIR": str(settings.KEYSTORE_DIR),
            "CUSTODIA_WEBHOOKS_ALLOW_PRIVATE": "1",
            "CUSTODIA_WEBHOOKS_CA_FILE": str(receiver_tls[0]),
        },
    )
    try:
        yield base_url
    finally:
        stop()


def fits(page: Any, width: int, name: str) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{page.url} is {scroll} px wide at a {width} px viewport"
    # Screenshots are for a person to look at (as tests/e2e's); nothing asserts on them.
    wanted = os.environ.get("CUSTODIA_E2E_SCREENSHOTS")
    if wanted:
        page.screenshot(path=str(Path(wanted) / f"webhooks-{name}-{width}.png"), full_page=True)


def test_the_webhook_pages_work_without_javascript_at_phone_and_desktop_widths(
    world: TenantMatrix, server: str, receiver: Receiver
) -> None:
    from playwright.sync_api import expect, sync_playwright

    owner = world.a.owner
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(
            ignore_https_errors=True,
            base_url=server,
            viewport={"width": 390, "height": 844},
            java_script_enabled=False,
        )
        page = context.new_page()
        page.goto("/accounts/login/")
        page.get_by_label("Email", exact=True).fill(owner.user.email)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Log in", exact=True).click()
        page.wait_for_url("**/app/")

        page.goto("/app/business/webhooks/")
        fits(page, 390, "list")
        page.get_by_role("link", name="Add an endpoint").click()
        page.get_by_label("URL").fill(receiver.url + "?a-rather-long-query=" + "x" * 60)
        page.get_by_label("Description").fill("Our CRM")
        page.get_by_label("visit.completed").check()
        page.get_by_label("visit.cancelled").check()
        fits(page, 390, "add")
        page.get_by_role("button", name="Add the endpoint").click()
        secret = page.locator("#signing-secret").inner_text()
        assert secret.startswith("whsec_")
        fits(page, 390, "secret")

        page.get_by_role("link", name="Done").click()
        assert secret not in page.content()
        page.get_by_role("button", name="Send a test event").click()
        expect(page.locator(".messages")).to_contain_text("The test event was delivered")
        expect(page.locator("table")).to_contain_text("webhook.test")
        fits(page, 390, "detail")
        page.set_viewport_size({"width": 1280, "height": 900})
        fits(page, 1280, "detail")
        context.close()
        browser.close()
    assert [r.headers["webhook-signature"].startswith("v1,") for r in receiver.received] == [True]
