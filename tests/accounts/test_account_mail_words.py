"""allauth's mails speak as Custodia: the signup confirmation names the product, never an
empty site name ("Hello from !"), in the product's own words, through a real SMTP server."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from tests.conftest import HttpsClient
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_the_signup_confirmation_mail(smtp_server: Any) -> None:
    before = len(smtp_server.messages)
    response = HttpsClient().post(
        "/accounts/signup/",
        {
            "business_name": "Paws & Co",
            "full_name": "Pat Owner",
            "email": "pat@example.test",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response.status_code == 302
    message = smtp_server.wait_for(before + 1)[-1]
    assert message.recipients == ["pat@example.test"]
    assert message.subject == "[Custodia] Confirm your email address"
    body = message.body.replace("\r\n", "\n")
    assert body.startswith("Hello from Custodia.\n")
    assert "Hello from !" not in body and "Hello from  " not in body
    assert "Welcome, Pat Owner. To finish setting up your Custodia account" in body
    assert "nobody can sign in with this address until it is confirmed" in body
    [link] = [link for link in message.links() if "/accounts/confirm-email/" in link]
    assert link.startswith("https://")
    # None of allauth's own words are left.
    for theirs in ("You're receiving", "Thank you for using", "Please Confirm"):
        assert theirs not in body and theirs not in message.subject


def test_the_password_reset_mail(smtp_server: Any) -> None:
    user = UserFactory()
    before = len(smtp_server.messages)
    response = HttpsClient().post(reverse("account_reset_password"), {"email": user.email})
    assert response.status_code == 302
    message = smtp_server.wait_for(before + 1)[-1]
    assert message.subject == "[Custodia] Reset your password"
    assert "it works once, within the hour" in message.body
    assert "your password stays as it is" in message.body


@pytest.mark.parametrize(
    ("path", "heading", "words"),
    [
        ("/accounts/password/reset/", "Reset your password", "the link works once"),
        ("/accounts/password/reset/done/", "Check your inbox", "check your spam folder"),
        (
            "/accounts/password/reset/key/1-bad-key/",
            "This link does not work any more",
            "Ask for a new link",
        ),
        (
            "/accounts/confirm-email/not-a-key/",
            "Confirm your email address",
            "does not work any more",
        ),
        ("/accounts/login/", "Log in", "Forgot your password?"),
        ("/accounts/signup/", "Start your business", "Create my business"),
    ],
)
def test_the_account_pages_speak_as_custodia(path: str, heading: str, words: str) -> None:
    browser = HttpsClient()
    page = browser.get(path)
    if page.status_code == 302:  # the reset key moves into the session first
        page = browser.get(page["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert f"<title>{heading} · Custodia</title>" in html
    assert f"<h1>{heading}</h1>" in html and words in html
    for theirs in ("Bad Token", "Password Reset", "Reset My Password", "contact us"):
        assert theirs not in html
