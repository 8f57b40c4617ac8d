"""Two-factor authentication in a real browser, against the real server over TLS.

An owner signs up, enrols an authenticator app (TOTP) and logs in with it; then registers a
passkey with Chromium's virtual authenticator (DevTools WebAuthn domain) and logs in with the
passkey alone. allauth's WebAuthn scripts load as static files: no CSP violation on the way.

The steps run in order and share one `story`; a step whose predecessor failed is skipped.
"""

from __future__ import annotations

import re
import time

import pytest
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from playwright.sync_api import Page, expect

from tests.e2e.support import Person, Story

pytestmark = pytest.mark.e2e

BUSINESS = "Keystone Cleaning"
OWNER_NAME = "Kim Keystone"
OWNER_EMAIL = "kim@keystone-cleaning.example.com"
OWNER_PASSWORD = "saffron-harbour-quartz-58"


def current_totp(secret: str) -> str:
    """The code the person's authenticator app shows now, with a few seconds of the step left.

    The server accepts a code only in its own 30-second step; near the end of a step the person
    (like anyone reading their phone) waits for the next code rather than race the clock.
    """
    left = 30 - time.time() % 30
    if left < 4:
        time.sleep(left + 0.2)
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("banner").get_by_role("link", name="Log in")).to_be_visible()


def reauthenticate_if_asked(page: Page) -> None:
    """allauth asks for the password again before a factor is added or removed."""
    if "/accounts/reauthenticate/" in page.url:
        page.get_by_label("Password").fill(OWNER_PASSWORD)
        page.get_by_role("button", name="Confirm").click()


def test_01_owner_signs_up(story: Story) -> None:
    with story.step("signup"):
        owner = story.person("owner")
        page = owner.page
        page.goto("/accounts/signup/")
        page.get_by_label("Business name").fill(BUSINESS)
        page.get_by_label("Your name").fill(OWNER_NAME)
        page.get_by_label("Email", exact=True).fill(OWNER_EMAIL)
        page.get_by_label("Password", exact=True).fill(OWNER_PASSWORD)
        page.get_by_label("Password (again)").fill(OWNER_PASSWORD)
        page.get_by_role("button", name="Create my business").click()
        page.goto(story.mailbox.link(OWNER_EMAIL, "/accounts/confirm-email/"))
        page.get_by_role("button", name="Confirm").click()
        expect(page).to_have_title("Dashboard · Custodia")


def test_02_owner_enrols_an_authenticator_app(story: Story) -> None:
    with story.step("totp", after=("signup",)):
        owner = story.people["owner"]
        page = owner.page
        page.goto("/accounts/2fa/")
        page.get_by_role("link", name="Activate").click()
        reauthenticate_if_asked(page)
        expect(page).to_have_url(re.compile(r"/accounts/2fa/totp/activate/$"))
        expect(page.locator("img[src^='data:image/svg+xml']")).to_be_visible()
        secret = page.get_by_label("Authenticator secret").input_value()
        assert re.fullmatch(r"[A-Z2-7]{32}", secret), "a base32 secret"
        story.urls["totp_secret"] = secret
        story.snap(owner, "mfa-totp-activate")
        page.get_by_label("Authenticator code").fill(current_totp(secret))
        page.get_by_role("button", name="Activate").click()
        # The 10 recovery codes are shown once.
        expect(page).to_have_url(re.compile(r"/accounts/2fa/recovery-codes/$"))
        codes = page.get_by_label("Unused codes").input_value().split()
        code_format = r"[a-z2-7]{4}(-[a-z2-7]{4}){3}"  # 80 random bits (accounts/recoverycodes.py)
        assert len(codes) == 10 and all(re.fullmatch(code_format, code) for code in codes)
        story.snap(owner, "mfa-recovery-codes")
        page.get_by_role("link", name="I have saved them: continue").click()
        expect(page).to_have_url(re.compile(r"/accounts/2fa/$"))
        expect(
            page.get_by_text("Authentication using an authenticator app is active.")
        ).to_be_visible()


def test_03_owner_logs_in_with_the_authenticator_app(story: Story) -> None:
    with story.step("totp-login", after=("totp",)):
        owner = story.people["owner"]
        page = owner.page
        log_out(page)
        page.goto("/accounts/login/")
        page.get_by_label("Email").fill(OWNER_EMAIL)
        page.get_by_label("Password").fill(OWNER_PASSWORD)
        page.get_by_role("button", name="Log in", exact=True).click()
        # The password alone is not enough.
        expect(page).to_have_url(re.compile(r"/accounts/2fa/authenticate/$"))
        # Not logged in yet: the app sends them back to finish logging in.
        page.goto("/app/")
        expect(page).to_have_url(re.compile(r"/accounts/(login|2fa/authenticate)/"))
        page.goto("/accounts/2fa/authenticate/")
        story.snap(owner, "mfa-authenticate")
        page.get_by_label("Code").fill(current_totp(story.urls["totp_secret"]))
        page.get_by_role("button", name="Sign In").click()
        expect(page).to_have_title("Dashboard · Custodia")
        expect(page.locator(".who")).to_have_text(OWNER_NAME)


def add_virtual_authenticator(person: Person) -> None:
    """Chromium's virtual platform authenticator: resident keys, user verified (a passkey)."""
    cdp = person.context.new_cdp_session(person.page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    # Keep the session (and so the authenticator) alive for the rest of the story.
    person.__dict__["cdp"] = cdp


def test_04_owner_registers_a_passkey(story: Story) -> None:
    with story.step("passkey", after=("totp-login",)):
        owner = story.people["owner"]
        page = owner.page
        add_virtual_authenticator(owner)
        page.goto("/accounts/2fa/webauthn/add/")
        reauthenticate_if_asked(page)
        expect(page).to_have_url(re.compile(r"/accounts/2fa/webauthn/add/$"))
        page.get_by_label("Name").fill("Laptop passkey")
        page.get_by_label("Passwordless").check()
        story.snap(owner, "mfa-passkey-add")
        page.get_by_role("button", name="Add").click()
        expect(page).not_to_have_url(re.compile(r"/webauthn/add/$"))
        page.goto("/accounts/2fa/webauthn/")
        row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="Laptop passkey"))
        expect(row).to_contain_text("Passkey (logs in without a password)")


def test_05_owner_logs_in_with_the_passkey_alone(story: Story) -> None:
    with story.step("passkey-login", after=("passkey",)):
        owner = story.people["owner"]
        page = owner.page
        log_out(page)
        page.goto("/accounts/login/")
        story.snap(owner, "mfa-login-page")
        page.get_by_role("button", name="Log in with a passkey").click()
        expect(page).to_have_title("Dashboard · Custodia")
        expect(page.locator(".who")).to_have_text(OWNER_NAME)
        # Neither a password nor a code was typed.
        assert page.get_by_label("Password").count() == 0


def test_06_no_csp_violations_or_script_errors(story: Story) -> None:
    with story.step("clean", after=("signup",)):
        visited = [path for path in story.visited if path.startswith("/accounts/2fa/")]
        assert visited, "the MFA pages were visited"
        assert not story.csp_violations, story.csp_violations
        assert not story.page_errors, story.page_errors
