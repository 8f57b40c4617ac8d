"""Password reset and email change: reset links work once, for an hour, and die with any password
change; a reset never skips the second factor; an email change is confirmed at the new address
and reported to the old one."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.urls import reverse

from custodia.accounts.access import recent_security_events
from custodia.accounts.models import SecurityEventKind, User
from tests.conftest import HttpsClient
from tests.factories import PASSWORD, UserFactory


@pytest.fixture(autouse=True)
def own_hash_slots(settings: Any, tmp_path: Any) -> None:
    """This process's own hashing slots: other test runs on the machine share var/run's."""
    settings.PASSWORD_HASH_SLOT_DIR = tmp_path / "hash-slots"


START = dt.datetime(2030, 1, 7, 9, 0, 15, tzinfo=dt.UTC)
NEW_PASSWORD = "violet harbour kettle 5523"  # noqa: S105


def kinds_of(user: User) -> list[str]:
    """The person's event kinds, newest first, as their security panel reads them."""
    return [e.kind for e in recent_security_events(user, limit=100)]


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def request_reset(smtp_server: Any, user: User) -> str:
    """Ask for a reset; returns the path of the link in the mail."""
    before = len(smtp_server.messages)
    response = HttpsClient().post(reverse("account_reset_password"), {"email": user.email})
    assert response.status_code == 302
    message = smtp_server.wait_for(before + 1)[-1]
    assert message.recipients == [user.email]
    links = [link for link in message.links() if "/password/reset/key/" in link]
    assert len(links) == 1
    return path_of(links[0])


def use_reset_link(path: str, password: str = NEW_PASSWORD) -> tuple[bool, Any]:
    """Follow the link in a fresh browser and set `password`; True when it was accepted."""
    browser = HttpsClient()
    response = browser.get(path)
    if response.status_code == 302:  # the key moves into the session
        response = browser.get(response["Location"])
    if response.context and response.context.get("token_fail"):
        return False, response
    assert response.status_code == 200
    response = browser.post(
        response.request["PATH_INFO"], {"password1": password, "password2": password}
    )
    return response.status_code == 302, response


def can_log_in(user: User, password: str) -> bool:
    response = HttpsClient().post(
        reverse("account_login"), {"login": user.email, "password": password}
    )
    return response.status_code == 302


def test_a_reset_link_works_once(db, smtp_server):
    user = UserFactory()
    path = request_reset(smtp_server, user)
    accepted, _ = use_reset_link(path)
    assert accepted and can_log_in(user, NEW_PASSWORD) and not can_log_in(user, PASSWORD)
    again, response = use_reset_link(path, "another password entirely 77")
    assert not again and response.status_code == 200
    assert can_log_in(user, NEW_PASSWORD)


def test_a_reset_link_expires_after_an_hour(db, smtp_server):
    user = UserFactory()
    with time_machine.travel(START, tick=False) as clock:
        path = request_reset(smtp_server, user)
        clock.shift(dt.timedelta(minutes=59))
        early = HttpsClient().get(path)
        assert early.status_code == 302  # still valid just before the hour
        clock.shift(dt.timedelta(minutes=1, seconds=1))
        accepted, _ = use_reset_link(path)
    assert not accepted
    assert can_log_in(user, PASSWORD)


def test_a_password_change_voids_earlier_reset_links(db, smtp_server):
    user = UserFactory()
    path = request_reset(smtp_server, user)
    user.set_password("a completely different one 31")
    user.save(update_fields=["password"])
    accepted, _ = use_reset_link(path)
    assert not accepted


def test_a_newer_reset_voids_the_older_link_once_used(db, smtp_server):
    user = UserFactory()
    first = request_reset(smtp_server, user)
    second = request_reset(smtp_server, user)
    assert use_reset_link(second)[0]
    assert not use_reset_link(first, "yet another password 9090")[0]


def test_a_reset_does_not_log_in_and_the_login_still_asks_for_the_second_factor(db, smtp_server):
    user = UserFactory()
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    with time_machine.travel(START, tick=False):
        path = request_reset(smtp_server, user)
        accepted, response = use_reset_link(path)
        assert accepted
        assert reverse("dashboard") not in response["Location"]
        browser = HttpsClient()
        response = browser.post(
            reverse("account_login"), {"login": user.email, "password": NEW_PASSWORD}
        )
        assert response.status_code == 302 and response["Location"] == reverse("mfa_authenticate")
        assert browser.get(reverse("dashboard")).status_code == 302, "not in before the code"
        code = format_hotp_value(hotp_value(secret, int(START.timestamp()) // 30))
        response = browser.post(reverse("mfa_authenticate"), {"code": code})
        assert response.status_code == 302
        assert browser.session["_auth_user_id"] == str(user.pk)


def test_a_reset_is_recorded_and_notified(db, smtp_server):
    user = UserFactory()
    accepted, _ = use_reset_link(request_reset(smtp_server, user))
    assert accepted
    assert SecurityEventKind.PASSWORD_RESET in kinds_of(user)
    notice = smtp_server.wait_for(2)[-1]
    assert notice.recipients == [user.email] and "password" in notice.subject.lower()
    assert NEW_PASSWORD not in notice.body


# --- Email change -------------------------------------------------------------------------------


def logged_in(user: User) -> HttpsClient:
    browser = HttpsClient()
    response = browser.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return browser


def test_an_email_change_is_confirmed_at_the_new_address_and_reported_to_the_old(db, smtp_server):
    user = UserFactory(email="old@example.test")
    browser = logged_in(user)
    # Changing the address is a takeover path: it asks for the password again first.
    assert (
        browser.post(reverse("account_reauthenticate"), {"password": PASSWORD}).status_code == 302
    )
    response = browser.post(
        reverse("account_email"), {"email": "new@example.test", "action_add": ""}
    )
    assert response.status_code == 302, response.content[:300]
    confirmation = smtp_server.wait_for(1)[-1]
    assert confirmation.recipients == ["new@example.test"]
    # Until it is confirmed, the old address is still the login.
    user.refresh_from_db()
    assert user.email == "old@example.test"
    link = next(link for link in confirmation.links() if "/confirm-email/" in link)
    assert browser.post(path_of(link)).status_code == 302
    user.refresh_from_db()
    assert user.email == "new@example.test"
    assert list(EmailAddress.objects.filter(user=user).values_list("email", flat=True)) == [
        "new@example.test"
    ]
    notice = smtp_server.wait_for(2)[-1]
    assert notice.recipients == ["old@example.test"]
    assert "new@example.test" in notice.body
    assert SecurityEventKind.EMAIL_CHANGED in kinds_of(user)


def test_a_session_that_has_not_re_authenticated_cannot_change_the_address(db, smtp_server):
    user = UserFactory(email="old@example.test")
    browser = logged_in(user)  # a stolen session cookie, say
    response = browser.post(
        reverse("account_email"), {"email": "attacker@example.test", "action_add": ""}
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert not EmailAddress.objects.filter(email="attacker@example.test").exists()
    assert smtp_server.messages == []


def test_an_unconfirmed_change_changes_nothing(db, smtp_server):
    user = UserFactory(email="old@example.test")
    browser = logged_in(user)
    browser.post(reverse("account_email"), {"email": "new@example.test", "action_add": ""})
    user.refresh_from_db()
    assert user.email == "old@example.test"
    assert can_log_in(user, PASSWORD)
    assert SecurityEventKind.EMAIL_CHANGED not in kinds_of(user)
