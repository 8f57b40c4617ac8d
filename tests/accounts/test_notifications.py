"""Security notifications: sign-ins from a new device, password, MFA and email changes, lockouts;
each is an entry in the person's security events and an email over real SMTP."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import pytest
import time_machine
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from custodia.accounts.access import recent_security_events
from custodia.accounts.actions import do_record_security_event
from custodia.accounts.models import SecurityEvent, SecurityEventKind, User
from tests.conftest import HttpsClient
from tests.factories import PASSWORD, UserFactory


@pytest.fixture(autouse=True)
def own_hash_slots(settings: Any, tmp_path: Any) -> None:
    """This process's own hashing slots: other test runs on the machine share var/run's."""
    settings.PASSWORD_HASH_SLOT_DIR = tmp_path / "hash-slots"


CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"
NEW_PASSWORD = "violet harbour kettle 5523"  # noqa: S105


def sign_in(user: User, *, agent: str = CHROME_LINUX, ip: str = "192.0.2.10") -> HttpsClient:
    browser = HttpsClient(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    response = browser.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return browser


def reauthenticate(browser: HttpsClient) -> None:
    """allauth asks for the password again before a factor is added or removed."""
    response = browser.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert response.status_code == 302


def step_up(browser: HttpsClient, secret: str) -> None:
    """The password and the current code again, as a change of factors asks."""
    reauthenticate(browser)
    code = format_hotp_value(hotp_value(secret, int(time.time()) // 30))
    response = browser.post(reverse("mfa_reauthenticate"), {"code": code})
    assert response.status_code == 302


def events_as(user: User, limit: int = 20) -> list[SecurityEvent]:
    """The person's events as their security panel reads them."""
    return recent_security_events(user, limit=limit)


def kinds(user: User) -> list[str]:
    return [e.kind for e in events_as(user)]


def test_first_and_familiar_sign_ins_are_recorded_without_mail(db, smtp_server):
    user = UserFactory()
    sign_in(user)
    sign_in(user, ip="192.0.2.99")  # same browser, same /24 network
    assert kinds(user) == [SecurityEventKind.LOGIN, SecurityEventKind.LOGIN]
    time.sleep(0.2)  # give a (wrong) mail the chance to arrive
    assert smtp_server.messages == []


def test_a_sign_in_from_another_browser_is_mailed_and_recorded(db, smtp_server):
    user = UserFactory()
    sign_in(user)
    sign_in(user, agent=FIREFOX_WINDOWS)
    assert kinds(user)[0] == SecurityEventKind.NEW_DEVICE_LOGIN
    message = smtp_server.wait_for(1)[-1]
    assert message.recipients == [user.email]
    assert "New sign-in" in message.subject
    assert "Firefox 121 on Windows" in message.body and "192.0.2.10" in message.body
    assert PASSWORD not in message.body


def test_a_sign_in_from_another_network_is_a_new_device(db, smtp_server):
    user = UserFactory()
    sign_in(user)
    sign_in(user, ip="198.51.100.7")
    assert kinds(user)[0] == SecurityEventKind.NEW_DEVICE_LOGIN
    smtp_server.wait_for(1)


def test_sign_ins_behind_a_trusted_proxy_use_the_forwarded_address(db, settings, smtp_server):
    settings.CUSTODIA_TRUSTED_PROXIES = 1
    settings.CUSTODIA_TRUSTED_PROXY_NETWORKS = (ipaddress.ip_network("10.0.0.0/8"),)
    user = UserFactory()
    browser = HttpsClient(HTTP_USER_AGENT=CHROME_LINUX, REMOTE_ADDR="10.0.0.2")
    browser.post(
        reverse("account_login"),
        {"login": user.email, "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="203.0.113.50",
    )
    assert events_as(user)[0].ip == "203.0.113.50"


def test_a_password_change_is_recorded_and_mailed(db, smtp_server):
    user = UserFactory()
    browser = sign_in(user)
    response = browser.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert kinds(user)[0] == SecurityEventKind.PASSWORD_CHANGED
    message = smtp_server.wait_for(1)[-1]
    assert message.recipients == [user.email] and "password" in message.subject.lower()
    assert NEW_PASSWORD not in message.body and PASSWORD not in message.body


def test_adding_and_removing_a_second_factor_are_recorded_and_mailed(db, smtp_server, monkeypatch):
    """allauth sends its MFA signals and mails once the request's transaction commits (at the end
    of TenantMiddleware's block, still inside the request); the test's own transaction never
    commits, so the callbacks run at once instead."""
    monkeypatch.setattr(transaction, "on_commit", lambda callback, *a, **k: callback())
    user = UserFactory()
    browser = sign_in(user)
    reauthenticate(browser)
    with time_machine.travel(time.time(), tick=False):
        assert browser.get(reverse("mfa_activate_totp")).status_code == 200
        secret = browser.session["mfa.totp.secret"]
        code = format_hotp_value(hotp_value(secret, int(time.time()) // 30))
        response = browser.post(reverse("mfa_activate_totp"), {"code": code})
        assert response.status_code == 302
    # One thing was done, so one entry: not another for the recovery codes that came with it.
    added = [e.detail for e in events_as(user) if e.kind == SecurityEventKind.MFA_ADDED]
    assert added == ["totp"]
    mails = smtp_server.wait_for(1)
    assert any("authenticator" in m.subject.lower() or "totp" in m.body.lower() for m in mails)
    assert all(secret not in m.body for m in mails)
    before = len(smtp_server.messages)
    with time_machine.travel(time.time() + 60, tick=False):
        step_up(browser, secret)
        response = browser.post(reverse("mfa_deactivate_totp"), {})
        assert response.status_code == 302
    removed = [e.detail for e in events_as(user) if e.kind == SecurityEventKind.MFA_REMOVED]
    assert removed == ["totp"]  # the recovery codes removed with it are not a second entry
    assert smtp_server.wait_for(before + 1)[-1].recipients == [user.email]


def test_regenerating_recovery_codes_is_recorded_once(db, smtp_server, monkeypatch):
    """A deliberate regeneration is an event of its own (allauth signals it apart)."""
    monkeypatch.setattr(transaction, "on_commit", lambda callback, *a, **k: callback())
    user = UserFactory()
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    RecoveryCodes.activate(user)
    browser = HttpsClient()
    browser.force_login(user)
    with time_machine.travel(time.time(), tick=False):
        step_up(browser, secret)
        response = browser.post(reverse("mfa_generate_recovery_codes"), {})
        assert response.status_code == 302
    added = [e.detail for e in events_as(user) if e.kind == SecurityEventKind.MFA_ADDED]
    assert added == ["new recovery codes"]


def test_the_new_device_notice_links_to_the_security_page(db, smtp_server, settings):
    """The mail says "your security settings": the link goes there, and reset has its own."""
    user = UserFactory()
    sign_in(user)
    sign_in(user, agent=FIREFOX_WINDOWS)
    links = smtp_server.wait_for(1)[-1].links()
    assert f"{settings.PUBLIC_URL}{reverse('security_panel')}" in links
    assert f"{settings.PUBLIC_URL}{reverse('account_reset_password')}" in links


def test_events_hold_no_secret_and_the_panel_shows_only_ones_own(db, smtp_server):
    user, other = UserFactory(), UserFactory()
    sign_in(user, agent=FIREFOX_WINDOWS)
    do_record_security_event(other, SecurityEventKind.PASSWORD_CHANGED, request=None)
    events = events_as(user)
    assert [e.user_id for e in events] == [user.pk]
    row = SecurityEvent.objects.filter(user=user).values().get()
    assert PASSWORD not in str(row)
    assert row["user_agent"] == "Firefox 121 on Windows"  # a summary, not the raw header


def test_recent_events_are_newest_first_and_limited(db):
    user = UserFactory()
    for _ in range(25):
        do_record_security_event(user, SecurityEventKind.LOGIN, request=None)
    do_record_security_event(user, SecurityEventKind.PASSWORD_CHANGED, request=None)
    events = events_as(user)
    assert len(events) == 20 and events[0].kind == SecurityEventKind.PASSWORD_CHANGED
    assert len(events_as(user, limit=5)) == 5


def test_the_include_lists_the_events(db):
    user = UserFactory()
    do_record_security_event(user, SecurityEventKind.MFA_ADDED, request=None, detail="totp")
    html = render_to_string("accounts/security_events.html", {"security_events": events_as(user)})
    assert "Two-factor method added (totp)" in html
    empty = render_to_string("accounts/security_events.html", {"security_events": []})
    assert "No security activity" in empty


def test_mail_goes_out_over_the_configured_smtp_server(db, smtp_server, settings):
    """The smtp_server fixture points Django's SMTP backend at a real aiosmtpd server."""
    assert settings.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend"
    user = UserFactory()
    sign_in(user)
    sign_in(user, ip="198.51.100.7")
    message: Any = smtp_server.wait_for(1)[-1]
    assert message.envelope_from and message.recipients == [user.email]
