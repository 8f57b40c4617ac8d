"""The docs page in a real browser, served by the real server: Swagger UI renders under the
strict CSP without a single violation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from django.conf import settings

from tests.servers import start_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.e2e


def test_swagger_ui_renders_without_csp_violations(django_db_setup: None, browser: Browser) -> None:
    base_url, stop = start_server(settings.DATABASES["default"]["NAME"])
    problems: list[str] = []
    try:
        context = browser.new_context(ignore_https_errors=True)
        try:
            page = context.new_page()
            page.on(
                "console",
                lambda message: (
                    problems.append(message.text)
                    if message.type in ("error", "warning")
                    else None
                ),
            )
            page.on("pageerror", lambda error: problems.append(str(error)))
            response = page.goto(f"{base_url}/api/v1/docs", wait_until="networkidle")
            assert response is not None and response.status == 200
            title = page.locator(".swagger-ui .info .title")
            title.wait_for(timeout=15000)
            assert "Custodia API" in title.inner_text()
            # The operations from the OpenAPI document are listed.
            assert page.locator(".opblock").count() >= 22
        finally:
            context.close()
    finally:
        stop()
    violations = [p for p in problems if "Content Security Policy" in p or "Refused" in p]
    assert not violations, violations
