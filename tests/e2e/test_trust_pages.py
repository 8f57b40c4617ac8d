"""The public transparency pages (docs/transparency.md) and a business's published page, on a
390 px phone and a 1280 px desktop in Chromium: no sideways scroll, no CSP violation, and no
serious or critical axe-core finding (the checks of test_every_page.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.e2e.support import CSP_MARKER
from tests.e2e.test_every_page import DESKTOP, PHONE, axe_source, checked, log_in
from tests.servers import run_django

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage

pytestmark = pytest.mark.e2e

__all__ = ["axe_source"]  # the fixture, used here by name

PASSWORD = "trust pages e2e password"
PUBLISH = """
from allauth.account.models import EmailAddress
from django.db import transaction
from custodia.accounts.models import User
from custodia.core.actor import acting_as
from custodia.tenancy.actions import do_create_business
from custodia.transparency.actions import do_publish_security_page
with transaction.atomic():
    owner = User.objects.create_user("{email}", "{password}", full_name="Trust Owner")
    EmailAddress.objects.create(user=owner, email=owner.email, verified=True, primary=True)
    actor = do_create_business(name="Trust Pages Test", owner=owner)
    with acting_as(actor):
        do_publish_security_page(actor=actor)
    print(actor.business.slug)
"""


@pytest.fixture(scope="module")
def published(e2e_database: str) -> tuple[str, str]:
    """A business of this module's own, with its page published: (owner's email, slug)."""
    email = f"trust-{uuid.uuid4().hex[:8]}@example.com"
    code = PUBLISH.format(email=email, password=PASSWORD)
    return email, run_django(e2e_database, code).strip().splitlines()[-1]


@pytest.fixture
def contexts(browser: Browser, e2e_server: str) -> Iterator[dict[str, BrowserContext]]:
    opened = {
        name: browser.new_context(ignore_https_errors=True, base_url=e2e_server, viewport=size)
        for name, size in (("phone", PHONE), ("desktop", DESKTOP))
    }
    try:
        yield opened
    finally:
        for context in opened.values():
            context.close()


def test_the_public_pages_fit_and_pass_axe(
    contexts: dict[str, BrowserContext], axe_source: str, published: tuple[str, str]
) -> None:
    email, slug = published
    paths = [
        "/security/",
        "/security/subprocessors/",
        "/security/retention/",
        "/privacy/",
        f"/b/{slug}/security/",
    ]
    problems: list[str] = []
    for name, context in contexts.items():
        csp: list[str] = []

        def on_console(message: ConsoleMessage, seen: list[str] = csp) -> None:
            if CSP_MARKER in message.text:
                seen.append(message.text)

        context.on("console", on_console)
        page = context.new_page()
        for path in paths:
            answer = page.goto(path)
            assert answer is not None and answer.status == 200, (name, path)
            problems += [f"{name} {path}: {problem}" for problem in checked(page, axe_source)]
        # Every page's footer leads to the privacy policy.
        page.goto("/security/")
        page.get_by_role("link", name="Privacy", exact=True).click()
        assert page.url.endswith("/privacy/")
        # The owner's switch for it, signed in.
        page = log_in(context, email, PASSWORD)
        answer = page.goto("/app/business/transparency/")
        assert answer is not None and answer.status == 200, name
        problems += [f"{name} switch: {problem}" for problem in checked(page, axe_source)]
        problems += [f"{name}: {message}" for message in csp]
    assert problems == [], "\n".join(problems)
