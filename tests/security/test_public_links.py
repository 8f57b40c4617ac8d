"""Email links come from CUSTODIA_PUBLIC_URL, never from the Host header; a Host naming a port
other than the public URL's is refused with a 400 (issue 12, item 3).

The attack: `Host: localhost:31337` on the reset form made the genuine reset email point at
port 31337 of the real host, because allauth builds links from the request and ALLOWED_HOSTS
ignores ports.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from custodia.accounts.links import public_mail_context
from tests.conftest import HttpsClient
from tests.factories import UserFactory
from tests.mail import Received
from tests.web.support import logged_in

PUBLIC = "https://custodia.example.com:8443"
# An allowed name on the public URL's port: a request may arrive this way (an internal name,
# an address), and its mail must still name the public URL.
OTHER_ALLOWED = "localhost:8443"
SIGNUP_PASSWORD = "grey lantern orchard 8812"  # noqa: S105


@pytest.fixture(autouse=True)
def public_url(settings: Any, tmp_path: Any) -> None:
    settings.PUBLIC_URL = PUBLIC
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "custodia.example.com"]
    settings.PASSWORD_HASH_SLOT_DIR = tmp_path / "hash-slots"


def assert_public_links_only(message: Received) -> None:
    """Every link on the public URL, and no other host or port anywhere in the mail."""
    links = message.links()
    assert links, message.body
    assert all(link.startswith(f"{PUBLIC}/") for link in links), links
    for foreign in ("localhost", "31337", "testserver", "127.0.0.1"):
        assert foreign not in message.body, foreign
    assert "custodia.example.com:8443" in message.body  # the footer's site domain too


def post_reset(email: str, host: str) -> Any:
    return HttpsClient().post(reverse("account_reset_password"), {"email": email}, HTTP_HOST=host)


def post_signup(email: str, host: str) -> Any:
    return HttpsClient().post(
        reverse("account_signup"),
        {
            "business_name": "Tails Ltd",
            "full_name": "Pat Doe",
            "email": email,
            "password1": SIGNUP_PASSWORD,
            "password2": SIGNUP_PASSWORD,
        },
        HTTP_HOST=host,
    )


# --- A foreign port is refused ----------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["localhost:31337", "custodia.example.com:31337", "[::1]:443", "localhost:0"]
)
def test_a_reset_asked_through_a_foreign_port_is_refused_and_sends_nothing(
    db: None, smtp_server: Any, host: str
) -> None:
    user = UserFactory()
    response = post_reset(user.email, host)
    assert response.status_code == 400
    page = response.content.decode()
    assert "Custodia does not answer at this address." in page
    assert f"{PUBLIC}/" in page
    assert "31337" not in page
    assert smtp_server.messages == []


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8443", "localhost.evil.example:8443"]
)
def test_a_host_name_outside_allowed_hosts_is_refused(db: None, host: str) -> None:
    response = HttpsClient().get(reverse("account_login"), HTTP_HOST=host)
    assert response.status_code == 400
    assert "Custodia does not answer at this address." in response.content.decode()


@pytest.mark.parametrize(
    "host", ["custodia.example.com:8443", "localhost:8443", "127.0.0.1:8443", "[::1]:8443"]
)
def test_the_public_port_on_an_allowed_name_is_served(db: None, host: str) -> None:
    assert HttpsClient().get(reverse("account_login"), HTTP_HOST=host).status_code == 200


def test_a_host_without_a_port_is_judged_by_its_name(db: None) -> None:
    """What browsers send for their scheme's default port, what proxies pass on, and what the
    test client sends."""
    assert HttpsClient().get(reverse("account_login")).status_code == 200
    assert HttpsClient().get(reverse("account_login"), HTTP_HOST="localhost").status_code == 200


def test_the_api_refuses_a_foreign_port_too(db: None) -> None:
    response = HttpsClient().get("/api/v1/clients/", HTTP_HOST="localhost:31337")
    assert response.status_code == 400


def test_the_refusal_carries_the_security_headers(db: None) -> None:
    response = HttpsClient().get(reverse("account_login"), HTTP_HOST="localhost:31337")
    assert response.status_code == 400
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["Strict-Transport-Security"].startswith("max-age=")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Request-ID"]


# --- Every mail's links name the public URL ---------------------------------------------------


def test_a_reset_link_names_the_public_url_whatever_allowed_host_was_used(
    db: None, smtp_server: Any
) -> None:
    user = UserFactory()
    assert post_reset(user.email, OTHER_ALLOWED).status_code == 302
    message = smtp_server.wait_for(1)[-1]
    assert any("/password/reset/key/" in link for link in message.links())
    assert_public_links_only(message)


def test_the_unknown_account_notice_names_the_public_url(db: None, smtp_server: Any) -> None:
    assert post_reset("nobody-here@example.test", OTHER_ALLOWED).status_code == 302
    message = smtp_server.wait_for(1)[-1]
    assert any(link.endswith("/accounts/signup/") for link in message.links())
    assert_public_links_only(message)


def test_the_signup_confirmation_names_the_public_url(db: None, smtp_server: Any) -> None:
    assert post_signup("new.person@example.test", OTHER_ALLOWED).status_code == 302
    message = smtp_server.wait_for(1)[-1]
    assert any("/confirm-email/" in link for link in message.links())
    assert_public_links_only(message)


def test_the_account_already_exists_notice_names_the_public_url(db: None, smtp_server: Any) -> None:
    user = UserFactory()
    assert post_signup(user.email, OTHER_ALLOWED).status_code == 302
    message = smtp_server.wait_for(1)[-1]
    assert message.recipients == [user.email]
    assert_public_links_only(message)


def test_an_invitation_names_the_public_url(matrix: Any, smtp_server: Any) -> None:
    response = logged_in(matrix.a.owner).post(
        "/app/staff/invite/",
        {"email": "someone.new@example.test", "role": "staff"},
        HTTP_HOST=OTHER_ALLOWED,
    )
    assert response.status_code == 302
    message = smtp_server.wait_for(1)[-1]
    assert any("/invite/" in link for link in message.links())
    assert all(link.startswith(f"{PUBLIC}/") for link in message.links())
    assert "localhost" not in message.body


def test_only_links_are_moved_not_the_words_a_notice_quotes(settings: Any) -> None:
    """A user agent that looks like a link is quoted as it came, not turned into one of ours."""
    context = public_mail_context(
        {
            "password_reset_url": "https://localhost:31337/accounts/password/reset/key/x-y/?a=1",
            "user_agent": "https://evil.example/agent",
            "ip": "203.0.113.9",
        }
    )
    assert context["password_reset_url"] == f"{PUBLIC}/accounts/password/reset/key/x-y/?a=1"
    assert context["user_agent"] == "https://evil.example/agent"
    assert context["ip"] == "203.0.113.9"
    assert context["current_site"].domain == "custodia.example.com:8443"
