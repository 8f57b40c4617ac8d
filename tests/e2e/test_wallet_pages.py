"""A client's pass page and membership page in a real browser, on a 390 px phone without
JavaScript: the links to Apple Wallet and Google Wallet are there, the .pkpass downloads with
its content type, Google's link is a redirect to its save page; the pages fit the phone and the
desktop, the CSP reports nothing."""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from tests.e2e.test_payments_pages import DESKTOP, PHONE, fits
from tests.servers import create_business, run_django

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.e2e

OWNER_EMAIL = "olga.wallet@example.com"
CLIENT_EMAIL = "wanda.wallet@example.com"
PASSWORD = "violet-harbor-quartz-73"  # noqa: S105 (a test login's password, not a secret)
BUSINESS = "Wallet Walkers"

SEED = """
from allauth.account.models import EmailAddress
from django.db import transaction
from custodia.accounts.models import User
from custodia.clients.actions import do_create_client
from custodia.core.actor import acting_as
from custodia.payments.actions.catalog import do_create_pass_type, do_create_plan
from custodia.payments.actions.passes import do_sell_pass, do_start_membership
from custodia.tenancy.actors import console_actors, find_user
from custodia.tenancy.models import Membership

with transaction.atomic():
    (owner,) = console_actors(find_user({owner!r}), None)
    with acting_as(owner):
        client = do_create_client(actor=owner, name="Wanda Wallet")
        user = User.objects.create_user({client!r}, {password!r})
        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
        Membership.objects.create(
            tenant_id=owner.tenant_id, user=user, role="client", client=client
        )
        kind = do_create_pass_type(
            actor=owner, name="Five walks", credits=5, price_minor=10000, validity_days=60
        )
        client_pass, _ = do_sell_pass(client, kind, actor=owner)
        plan = do_create_plan(
            actor=owner, name="Unlimited mornings", monthly_price_minor=9000, credits_per_month=8
        )
        membership, _ = do_start_membership(client, plan, actor=owner)
        print(client_pass.pk, membership.pk)
"""


@pytest.fixture(scope="module")
def seeded(e2e_database: str) -> tuple[str, str]:
    create_business(e2e_database, BUSINESS, OWNER_EMAIL, PASSWORD)
    code = SEED.format(owner=OWNER_EMAIL, client=CLIENT_EMAIL, password=PASSWORD)
    pass_key, membership_key = run_django(e2e_database, code).strip().splitlines()[-1].split()
    return pass_key, membership_key


@pytest.fixture(scope="module")
def pass_id(seeded: tuple[str, str]) -> str:
    return seeded[0]


@pytest.fixture(scope="module")
def membership_id(seeded: tuple[str, str]) -> str:
    return seeded[1]


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


def log_in(phone: BrowserContext, e2e_server: str) -> Page:
    page = phone.new_page()
    page.goto("/accounts/login/")
    page.get_by_label("Email", exact=True).fill(CLIENT_EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).not_to_have_url(f"{e2e_server}/accounts/login/")
    return page


def test_the_client_adds_their_pass_to_a_wallet_without_javascript(
    pass_id: str, phone: BrowserContext, browser: Browser, e2e_server: str
) -> None:
    page = log_in(phone, e2e_server)

    page.goto(f"/app/passes/{pass_id}/")
    expect(page.locator("h1")).to_have_text("Five walks")
    apple = page.get_by_role("link", name="Add to Apple Wallet")
    expect(apple).to_have_attribute("href", f"/app/passes/{pass_id}/wallet.pkpass")
    expect(page.get_by_role("link", name="Save to Google Wallet")).to_have_count(1)

    with page.expect_download() as download_info:
        apple.click()
    with tempfile.TemporaryDirectory() as directory:
        path = f"{directory}/pass.pkpass"
        download_info.value.save_as(path)
        with zipfile.ZipFile(path) as archive:
            document = json.loads(archive.read("pass.json"))
    assert document["storeCard"]["primaryFields"][0]["value"] == 5
    assert document["organizationName"] == BUSINESS

    answer = phone.request.get(f"/app/passes/{pass_id}/wallet.pkpass")
    assert answer.headers["content-type"] == "application/vnd.apple.pkpass"
    assert zipfile.ZipFile(io.BytesIO(answer.body())).namelist()
    google = phone.request.get(f"/app/passes/{pass_id}/google-wallet/", max_redirects=0)
    assert google.status == 302
    assert google.headers["location"].startswith("https://pay.google.com/gp/v/save/")

    assert DESKTOP["width"] == 1280
    fits(browser, e2e_server, phone.cookies(), [f"/app/passes/{pass_id}/", "/app/passes/"])


def test_the_client_adds_their_membership_to_a_wallet_without_javascript(
    membership_id: str, phone: BrowserContext, browser: Browser, e2e_server: str
) -> None:
    page = log_in(phone, e2e_server)
    page.goto("/app/passes/")
    # The client's own membership (the plan is also offered to buy, under the same name).
    page.locator('a[href^="/app/memberships/"]', has_text="Unlimited mornings").click()
    expect(page).to_have_url(f"{e2e_server}/app/memberships/{membership_id}/")
    expect(page.locator("h1")).to_have_text("Unlimited mornings")
    apple = page.get_by_role("link", name="Add to Apple Wallet")
    expect(apple).to_have_attribute("href", f"/app/memberships/{membership_id}/wallet.pkpass")
    expect(page.get_by_role("link", name="Save to Google Wallet")).to_have_count(1)

    with page.expect_download() as download_info:
        apple.click()
    with tempfile.TemporaryDirectory() as directory:
        path = f"{directory}/pass.pkpass"
        download_info.value.save_as(path)
        with zipfile.ZipFile(path) as archive:
            document = json.loads(archive.read("pass.json"))
    assert document["storeCard"]["primaryFields"][0]["value"] == 8
    assert document["storeCard"]["secondaryFields"][0]["value"] == "Unlimited mornings"
    assert document["organizationName"] == BUSINESS

    google = phone.request.get(f"/app/memberships/{membership_id}/google-wallet/", max_redirects=0)
    assert google.status == 302
    assert google.headers["location"].startswith("https://pay.google.com/gp/v/save/")
    fits(browser, e2e_server, phone.cookies(), [f"/app/memberships/{membership_id}/"])
