"""Brute force: the client address behind proxies, allauth's per-address limits keyed on it, and
the per-account lockout (exponential back-off, never permanent, lifted by a single-use link)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import subprocess
import sys
import time
from typing import Any

import pytest
import time_machine
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.contrib.sessions.models import Session
from django.db import transaction
from django.test import RequestFactory, TestCase
from django.urls import reverse
from django.utils import timezone

from custodia.accounts.access import recent_security_events
from custodia.accounts.models import LoginThrottle, SecurityEventKind, User
from custodia.accounts.notifications import notify_lockout
from custodia.accounts.throttle import (
    code_throttle_key,
    forget_failures,
    record_failure,
    throttle_key,
)
from custodia.core.requestctx import client_ip
from custodia.web.accounts.unlock import TOKEN_COOKIE
from tests.conftest import HttpsClient
from tests.factories import PASSWORD, UserFactory


@pytest.fixture(autouse=True)
def own_hash_slots(settings: Any, tmp_path: Any) -> None:
    """This process's own hashing slots: other test runs on the machine share var/run's."""
    settings.PASSWORD_HASH_SLOT_DIR = tmp_path / "hash-slots"


START = dt.datetime(2030, 1, 7, 9, 0, tzinfo=dt.UTC)
TOO_MANY = b"Too many failed login attempts"


def kinds_of(user: User) -> list[str]:
    """The person's event kinds, newest first, as their security panel reads them."""
    return [e.kind for e in recent_security_events(user, limit=100)]


def request_from(peer: str, forwarded: str | None = None) -> Any:
    extra = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def attempt(client: HttpsClient, email: str, password: str, **extra: str) -> Any:
    # Run what the request left for its commit (the lockout notice), as a real request does.
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(
            reverse("account_login"), {"login": email, "password": password}, **extra
        )


def fail(client: HttpsClient, email: str, times: int) -> None:
    for _ in range(times):
        response = attempt(client, email, "not the password at all")
        assert response.status_code == 200


def logs_in(email: str, client: HttpsClient | None = None) -> bool:
    response = attempt(client or HttpsClient(), email, PASSWORD)
    return response.status_code == 302


# --- Client address --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("proxies", "peer", "forwarded", "expected"),
    [
        # No proxy configured: whatever the client writes in X-Forwarded-For is ignored.
        (0, "203.0.113.9", "198.51.100.1", "203.0.113.9"),
        (0, "203.0.113.9", "198.51.100.1, 192.0.2.7", "203.0.113.9"),
        # One proxy: the entry it appended (rightmost); the client's own prefix proves nothing.
        (1, "10.0.0.2", "198.51.100.1, 192.0.2.7", "192.0.2.7"),
        (1, "10.0.0.2", "192.0.2.7", "192.0.2.7"),
        # Two proxies: the address the outer one saw.
        (2, "10.0.0.2", "6.6.6.6, 192.0.2.7, 10.0.0.1", "192.0.2.7"),
        # Two proxies, but the inner one was reached straight from a client: that client.
        (2, "10.0.0.2", "192.0.2.7", "192.0.2.7"),
        # Fewer entries than proxies, or garbage where the client should be: the peer.
        (2, "10.0.0.2", "10.0.0.1", "10.0.0.2"),
        (1, "10.0.0.2", "", "10.0.0.2"),
        (1, "10.0.0.2", "not-an-address", "10.0.0.2"),
        (1, "10.0.0.2", "192.0.2.7:5555", "192.0.2.7"),
        (1, "10.0.0.2", "[2001:db8::1]:443", "2001:db8::1"),
    ],
)
def test_client_ip_trusts_only_the_configured_proxies(settings, proxies, peer, forwarded, expected):
    settings.CUSTODIA_TRUSTED_PROXIES = proxies
    settings.CUSTODIA_TRUSTED_PROXY_NETWORKS = (ipaddress.ip_network("10.0.0.0/8"),)
    assert client_ip(request_from(peer, forwarded)) == expected


def test_forwarded_for_from_a_direct_client_is_ignored(settings):
    """A proxy count is not enough: the header counts only from a trusted proxy's address."""
    settings.CUSTODIA_TRUSTED_PROXIES = 1  # default networks: the loopback proxy only
    assert client_ip(request_from("203.0.113.9", "198.51.100.1")) == "203.0.113.9"
    assert client_ip(request_from("2001:db8::9", "198.51.100.1")) == "2001:db8::9"
    settings.CUSTODIA_TRUSTED_PROXIES = 2
    assert client_ip(request_from("203.0.113.9", "198.51.100.1, 127.0.0.1")) == "203.0.113.9"


def test_forwarded_for_via_a_trusted_proxy_is_honoured(settings):
    settings.CUSTODIA_TRUSTED_PROXIES = 1
    assert client_ip(request_from("127.0.0.1", "198.51.100.1")) == "198.51.100.1"
    assert client_ip(request_from("::1", "198.51.100.1")) == "198.51.100.1"
    settings.CUSTODIA_TRUSTED_PROXY_NETWORKS = (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
    )
    assert client_ip(request_from("fd00::2", "192.0.2.7")) == "192.0.2.7"
    assert client_ip(request_from("127.0.0.1", "192.0.2.7")) == "127.0.0.1"  # not listed now


def test_a_chain_with_an_untrusted_hop_stops_at_that_hop(settings):
    """Two proxies configured, but the outer "proxy" is a stranger: its own address is the
    client, and what it wrote further left (a forged client) is ignored."""
    settings.CUSTODIA_TRUSTED_PROXIES = 2
    settings.CUSTODIA_TRUSTED_PROXY_NETWORKS = (ipaddress.ip_network("10.0.0.0/8"),)
    forged = "6.6.6.6, 203.0.113.66"
    assert client_ip(request_from("10.0.0.2", forged)) == "203.0.113.66"
    # Through two trusted proxies the walk reaches the client the outer one saw.
    assert client_ip(request_from("10.0.0.2", "6.6.6.6, 192.0.2.7, 10.0.0.1")) == "192.0.2.7"


def test_a_malformed_trusted_network_fails_at_start_up():
    env = {**os.environ, "CUSTODIA_TRUSTED_PROXY_NETWORKS": "10.0.0.0/8, not-a-network"}
    result = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-c", "import custodia.settings"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "CUSTODIA_TRUSTED_PROXY_NETWORKS" in result.stderr


@pytest.mark.usefixtures("cache_backend")  # the limit lives in the cache
def test_a_direct_client_cannot_escape_the_per_address_limit_behind_a_proxy_count(db, settings):
    """With a proxy configured, a client reaching Custodia directly still cannot pick an address."""
    settings.CUSTODIA_TRUSTED_PROXIES = 1
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login": "5/m/ip"}
    client = HttpsClient(REMOTE_ADDR="203.0.113.9")
    codes = [
        attempt(client, f"p{n}@example.test", "x" * 12, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
        for n in range(7)
    ]
    assert [c.status_code for c in codes[:5]] == [200] * 5
    assert codes[-1].status_code == 429


@pytest.mark.usefixtures("cache_backend")  # the limit lives in the cache
def test_spoofed_forwarded_for_does_not_escape_the_per_address_limit(db, settings):
    """Without trusted proxies, a new X-Forwarded-For per request is still one address."""
    settings.CUSTODIA_TRUSTED_PROXIES = 0
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login": "5/m/ip"}
    client = HttpsClient()
    codes = [
        attempt(client, f"p{n}@example.test", "x" * 12, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
        for n in range(7)
    ]
    assert codes[-1].status_code == 429
    assert [c.status_code for c in codes[:5]] == [200] * 5


@pytest.mark.usefixtures("cache_backend")  # the limit lives in the cache
def test_behind_one_proxy_the_limit_follows_the_forwarded_client(db, settings):
    settings.CUSTODIA_TRUSTED_PROXIES = 1
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login": "5/m/ip"}
    client = HttpsClient()
    for n in range(5):
        response = attempt(client, f"p{n}@example.test", "x" * 12, HTTP_X_FORWARDED_FOR="192.0.2.7")
        assert response.status_code == 200
    assert (
        attempt(client, "p@example.test", "x" * 12, HTTP_X_FORWARDED_FOR="192.0.2.7").status_code
        == 429
    )
    # A forged left-hand entry does not help: the proxy's own (rightmost) entry counts.
    spoofed = attempt(client, "p@example.test", "x" * 12, HTTP_X_FORWARDED_FOR="1.2.3.4, 192.0.2.7")
    assert spoofed.status_code == 429
    # Another real client behind the same proxy is not blocked.
    other = attempt(client, "p@example.test", "x" * 12, HTTP_X_FORWARDED_FOR="192.0.2.8")
    assert other.status_code == 200


@pytest.mark.usefixtures("cache_backend")  # the limit lives in the cache
def test_failed_logins_per_address_are_limited(db, settings):
    """The per-address limit on failed sign-ins: 10 a minute across any names; then every
    password from there meets the emailed-code challenge (tests/accounts/test_throttled_address)."""
    client = HttpsClient()
    with time_machine.travel(START, tick=False):
        for n in range(10):
            response = attempt(client, f"p{n}@example.test", "x" * 12)
            assert response.status_code == 200 and TOO_MANY not in response.content
        over = attempt(client, "p99@example.test", "x" * 12)
        assert over.status_code == 302
        assert over["Location"] == reverse("account_confirm_login_code")


def test_the_bench_switch_turns_allauths_limits_off(db, settings):
    """bench/settings.py sets ACCOUNT_RATE_LIMITS = False: one setting, all per-address limits."""
    settings.ACCOUNT_RATE_LIMITS = False
    client = HttpsClient()
    with time_machine.travel(START, tick=False):
        for n in range(12):
            response = attempt(client, f"p{n}@example.test", "x" * 12)
            assert response.status_code == 200 and TOO_MANY not in response.content


# --- Lockout with back-off ---------------------------------------------------------------------


def test_five_failures_pause_the_account_then_the_pause_ends_by_itself(db):
    user = UserFactory()
    with time_machine.travel(START, tick=False) as clock:
        fail(HttpsClient(), user.email, 4)
        assert logs_in(user.email), "four failures do not lock"
        fail(HttpsClient(), user.email, 5)
        # Even the right password is refused now, with allauth's words.
        refused = attempt(HttpsClient(), user.email, PASSWORD)
        assert refused.status_code == 200 and TOO_MANY in refused.content
        clock.shift(dt.timedelta(seconds=59))
        assert not logs_in(user.email)
        clock.shift(dt.timedelta(seconds=2))
        assert logs_in(user.email)


def test_back_off_doubles_and_is_capped_at_an_hour(db, settings):
    user = UserFactory()
    attacker = HttpsClient()
    expected = [60, 120, 240, 480, 960, 1920, 3600, 3600]
    with time_machine.travel(START, tick=False) as clock:
        for seconds in expected:
            fail(attacker, user.email, 5)
            row = LoginThrottle.objects.get(key=throttle_key(user.email))
            assert row.locked_until == timezone.now() + dt.timedelta(seconds=seconds)
            clock.shift(dt.timedelta(seconds=seconds - 1))
            assert not logs_in(user.email)
            clock.shift(dt.timedelta(seconds=2))
            # The attacker tries again as soon as the pause ends (no success in between).
        assert logs_in(user.email)
    # A success ends the series: the next pause is a minute again.
    with time_machine.travel(START + dt.timedelta(days=1), tick=False) as clock:
        fail(attacker, user.email, 5)
        clock.shift(dt.timedelta(seconds=61))
        assert logs_in(user.email)


def test_a_quiet_day_forgets_the_series(db):
    user = UserFactory()
    with time_machine.travel(START, tick=False) as clock:
        fail(HttpsClient(), user.email, 5)
        clock.shift(dt.timedelta(seconds=61))
        fail(HttpsClient(), user.email, 5)  # second pause: two minutes
        row = LoginThrottle.objects.get(key=throttle_key(user.email))
        assert row.locked_until == timezone.now() + dt.timedelta(minutes=2)
        clock.shift(dt.timedelta(days=1, minutes=3))
        fail(HttpsClient(), user.email, 5)
        row.refresh_from_db()
        assert row.locked_until == timezone.now() + dt.timedelta(minutes=1)


def test_the_lockout_answer_is_the_same_for_an_unknown_name(db, smtp_server):
    user = UserFactory()
    with time_machine.travel(START, tick=False):
        fail(HttpsClient(), user.email, 5)
        fail(HttpsClient(), "nobody@example.test", 5)
        known = attempt(HttpsClient(), user.email, PASSWORD)
        unknown = attempt(HttpsClient(), "nobody@example.test", PASSWORD)
    assert known.status_code == unknown.status_code == 200
    assert TOO_MANY in known.content and TOO_MANY in unknown.content
    # Only the real account's owner is told (nothing is sent to an address without an account).
    messages = smtp_server.wait_for(1)
    assert [m.recipients for m in messages] == [[user.email]]


def test_the_throttle_table_holds_no_address(db):
    with time_machine.travel(START, tick=False):
        fail(HttpsClient(), "someone@example.test", 2)
    row = LoginThrottle.objects.get()
    assert "someone" not in row.key and row.key == throttle_key("SomeOne@Example.test ")


# --- Unlock by email link -----------------------------------------------------------------------


def unlock_link(smtp_server: Any, user: User) -> str:
    message = smtp_server.wait_for(1)[-1]
    assert message.recipients == [user.email]
    assert "paused" in message.subject
    links = [link for link in message.links() if "/unlock/" in link]
    assert len(links) == 1
    return links[0].split("://", 1)[1].split("/", 1)[1].join(["/", ""])


def follow_unlock(client: HttpsClient, path: str) -> Any:
    first = client.get(path)
    assert first.status_code == 302 and "/unlock/" in first["Location"]
    assert first["Location"] == reverse("account_unlock_confirm"), "token left in the address"
    assert client.get(first["Location"]).status_code == 200
    return client.post(reverse("account_unlock_confirm"))


def test_the_owner_unlocks_their_browser_with_the_emailed_link_once(db, smtp_server):
    user = UserFactory()
    with time_machine.travel(START, tick=False):
        fail(HttpsClient(), user.email, 5)
        assert SecurityEventKind.LOCKOUT in kinds_of(user)
        path = unlock_link(smtp_server, user)
        owner = HttpsClient()
        assert follow_unlock(owner, path).status_code == 200
        assert logs_in(user.email, owner)
        assert SecurityEventKind.UNLOCKED in kinds_of(user)
        # Recorded and emailed: the unlock notice names no link that could unlock again.
        notice = smtp_server.wait_for(2)[1]
        assert notice.recipients == [user.email]
        assert notice.subject.endswith("Sign-in to your account was unlocked")
        assert not [link for link in notice.links() if "/unlock/" in link]
        assert path.rstrip("/").rsplit("/", 1)[1] not in notice.body
        # The same link again: refused.
        reuse = HttpsClient()
        assert follow_unlock(reuse, path).status_code == 400


def test_an_unlocked_browser_stays_in_while_the_attacker_keeps_locking(db, smtp_server):
    user = UserFactory()
    with time_machine.travel(START, tick=False) as clock:
        fail(HttpsClient(), user.email, 5)
        owner = HttpsClient()
        follow_unlock(owner, unlock_link(smtp_server, user))
        clock.shift(dt.timedelta(minutes=2))
        fail(HttpsClient(), user.email, 5)  # the attacker locks the name again
        assert not logs_in(user.email)  # everyone else waits
        assert logs_in(user.email, owner)  # the owner's browser does not


def test_an_unlock_link_expires_after_an_hour(db, smtp_server):
    user = UserFactory()
    with time_machine.travel(START, tick=False) as clock:
        fail(HttpsClient(), user.email, 5)
        path = unlock_link(smtp_server, user)
        clock.shift(dt.timedelta(hours=1, seconds=1))
        assert follow_unlock(HttpsClient(), path).status_code == 400


def test_a_forged_or_tampered_unlock_link_is_refused(db, smtp_server):
    user = UserFactory()
    with time_machine.travel(START, tick=False):
        fail(HttpsClient(), user.email, 5)
        path = unlock_link(smtp_server, user)
        tampered = path[:-3] + ("AAA" if not path.endswith("AAA/") else "BBB") + "/"
        assert follow_unlock(HttpsClient(), tampered).status_code == 400
        assert follow_unlock(HttpsClient(), "/app/unlock/garbage/").status_code == 400
        assert HttpsClient().post(reverse("account_unlock_confirm")).status_code == 400
        assert not logs_in(user.email)


def test_a_password_reset_lifts_the_pause(db, smtp_server):
    from custodia.accounts.throttle import forget_failures

    user = UserFactory()
    with time_machine.travel(START, tick=False):
        fail(HttpsClient(), user.email, 5)
        assert not logs_in(user.email)
        forget_failures(user.email)
        assert logs_in(user.email)


def test_the_unlock_token_is_never_kept_in_the_database_session(db, smtp_server):
    """Sessions live in the database, which holds no token secrets: the token stays in the
    browser (a short-lived cookie for the confirmation page only) until the button spends it."""
    user = UserFactory()
    with time_machine.travel(START, tick=False):
        fail(HttpsClient(), user.email, 5)
        path = unlock_link(smtp_server, user)
        token = path.rstrip("/").rsplit("/", 1)[1]

        def stored() -> str:
            rows = list(Session.objects.all())
            return "".join(r.session_data + str(r.get_decoded()) for r in rows)

        owner = HttpsClient()
        first = owner.get(path)
        assert owner.get(first["Location"]).status_code == 200
        assert token not in stored()
        cookie = first.cookies[TOKEN_COOKIE]
        assert cookie["httponly"] and cookie["secure"]
        assert cookie["path"] == reverse("account_unlock_confirm")
        assert owner.post(reverse("account_unlock_confirm")).status_code == 200
        assert token not in stored()
        assert owner.cookies[TOKEN_COOKIE].value == ""  # spent: the browser forgets it too
        assert logs_in(user.email, owner)


# --- Re-authentication of the signed-in owner ----------------------------------------------------


def test_a_paused_name_does_not_keep_its_signed_in_owner_from_re_authenticating(db):
    """Five wrong passwords on the victim's address must not block the victim's step-up."""
    user = UserFactory()
    with time_machine.travel(START, tick=False):
        owner = HttpsClient()
        assert attempt(owner, user.email, PASSWORD).status_code == 302
        fail(HttpsClient(), user.email, 5)  # the attacker pauses the name
        assert not logs_in(user.email)  # sign-in stays paused for everyone else
        wrong = owner.post(reverse("account_reauthenticate"), {"password": "not it at all"})
        assert wrong.status_code == 200 and TOO_MANY not in wrong.content
        response = owner.post(reverse("account_reauthenticate"), {"password": PASSWORD})
        assert response.status_code == 302
        # The step-up lifted nothing for others, nor restarted the attacker's back-off.
        assert not logs_in(user.email)
        assert LoginThrottle.objects.get(key=throttle_key(user.email)).lockouts == 1


# --- Wrong second-factor codes ------------------------------------------------------------------

TOTP_NOW = 1_900_000_015.0  # the middle of a 30-second step


def totp_at(secret: str, at: float) -> str:
    return format_hotp_value(hotp_value(secret, int(at) // 30))


def post_code(client: HttpsClient, url: str, code: str, address: str) -> Any:
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(url, {"code": code}, REMOTE_ADDR=address)


@pytest.mark.usefixtures("cache_backend")  # the limit lives in the cache
def test_wrong_codes_from_many_addresses_pause_the_second_factor(db, smtp_server):
    """Someone with the password tries codes from a new address each time: after five wrong
    ones every code is refused, the right one too, until the pause ends."""
    user = UserFactory()
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    url = reverse("mfa_authenticate")
    with time_machine.travel(TOTP_NOW, tick=False) as clock:
        attacker = HttpsClient()
        assert attempt(attacker, user.email, PASSWORD).status_code == 302
        for n in range(5):
            wrong = post_code(attacker, url, "000000", f"198.51.100.{n}")
            assert wrong.status_code == 200 and b"Incorrect code" in wrong.content
        right = post_code(attacker, url, totp_at(secret, TOTP_NOW), "198.51.100.77")
        assert right.status_code == 200 and TOO_MANY in right.content
        assert attacker.get(reverse("dashboard")).status_code == 302  # not signed in
        # The owner is told: someone has the password.
        notice = smtp_server.wait_for(1)[-1]
        assert notice.recipients == [user.email] and "two-factor codes" in notice.body
        assert SecurityEventKind.LOCKOUT in kinds_of(user)
        # The pause ends by itself; then the right code works.
        clock.shift(dt.timedelta(seconds=61))
        later = TOTP_NOW + 61
        owner = HttpsClient()
        assert attempt(owner, user.email, PASSWORD).status_code == 302
        assert post_code(owner, url, totp_at(secret, later), "192.0.2.10").status_code == 302


def test_wrong_codes_keep_backing_off_across_fresh_password_steps(db):
    """A correct password does not end the code series: only a correct code does."""
    user = UserFactory()
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    url = reverse("mfa_authenticate")
    with time_machine.travel(TOTP_NOW, tick=False) as clock:
        for _ in range(2):
            attacker = HttpsClient()
            assert attempt(attacker, user.email, PASSWORD).status_code == 302
            for n in range(5):
                post_code(attacker, url, "000000", f"198.51.100.{n}")
            clock.shift(dt.timedelta(seconds=61))
        # Second pause of the series: two minutes, not one.
        row = LoginThrottle.objects.get(key=code_throttle_key(user))
        assert row.lockouts == 2
        assert row.locked_until == timezone.now() + dt.timedelta(seconds=120 - 61)


@pytest.mark.usefixtures("cache_backend")  # the limit lives in the cache
def test_wrong_codes_at_re_authentication_are_limited_per_account(db):
    """A stolen session guessing codes at the step-up from many addresses is stopped too."""
    user = UserFactory()
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    url = reverse("mfa_reauthenticate")
    with time_machine.travel(TOTP_NOW, tick=False):
        thief = HttpsClient()
        thief.force_login(user)
        for n in range(5):
            wrong = post_code(thief, url, "000000", f"198.51.100.{n}")
            assert wrong.status_code == 200 and b"Incorrect code" in wrong.content
        right = post_code(thief, url, totp_at(secret, TOTP_NOW), "198.51.100.99")
        assert right.status_code == 200 and TOO_MANY in right.content


def test_wrong_recovery_codes_count_too_and_a_reset_lifts_the_code_pause(db):
    user = UserFactory()
    TOTP.activate(user, generate_totp_secret())
    codes = RecoveryCodes.activate(user).generate_codes()
    url = reverse("mfa_authenticate")
    with time_machine.travel(TOTP_NOW, tick=False):
        attacker = HttpsClient()
        attempt(attacker, user.email, PASSWORD)
        for n in range(5):
            post_code(attacker, url, "12345678", f"198.51.100.{n}")
        refused = post_code(attacker, url, codes[0], "198.51.100.50")
        assert TOO_MANY in refused.content
        forget_failures(user.email)  # what a password reset does
        owner = HttpsClient()
        attempt(owner, user.email, PASSWORD)
        assert post_code(owner, url, codes[0], "192.0.2.10").status_code == 302


# --- Lockout notices --------------------------------------------------------------------------


def test_lockout_notices_do_not_flood_the_owner(db, smtp_server, settings):
    """The first pause of a series is mailed; later ones only once six hours have passed."""
    user = UserFactory()
    attacker = HttpsClient()
    pauses = 0
    with time_machine.travel(START, tick=False) as clock:
        while timezone.now() < START + dt.timedelta(hours=7):
            fail(attacker, user.email, 5)
            pauses += 1
            row = LoginThrottle.objects.get(key=throttle_key(user.email))
            clock.move_to(row.locked_until + dt.timedelta(seconds=1))
    assert pauses > 10
    time.sleep(0.3)  # give (wrong) extra mails the chance to arrive
    assert len(smtp_server.wait_for(2)) == 2
    assert kinds_of(user).count(SecurityEventKind.LOCKOUT) == 2


@pytest.mark.mail_after_commit  # the notice waits for the commit, beside the answer
def test_a_request_that_fails_after_wrong_passwords_keeps_their_count_and_pause(db, smtp_server):
    """The count is committed on its own connection: a request answered with an error after a
    wrong password rolls back its own transaction, not the count, so an attacker who can make
    requests fail cannot guess without end. The failed request's notice (sent with its commit)
    does not leave; the pause is short, and the next one is noticed."""
    user = UserFactory()
    request = RequestFactory().post("/accounts/login/", REMOTE_ADDR="192.0.2.5")
    with TestCase.captureOnCommitCallbacks(execute=True), time_machine.travel(START, tick=False):
        try:
            with transaction.atomic():
                for _ in range(5):
                    lockout = record_failure(user.email)
                assert lockout is not None
                notify_lockout(request, user.email, lockout)
                raise RuntimeError("the request failed after the pause began")
        except RuntimeError:
            pass
        row = LoginThrottle.objects.get(key=throttle_key(user.email))
        assert row.lockouts == 1 and row.locked_until == timezone.now() + dt.timedelta(minutes=1)
        assert not logs_in(user.email)
    time.sleep(0.3)
    assert smtp_server.messages == []
