"""One address over the failed-sign-in limit: a right password meets an emailed code it can pass,
never a flat refusal, and the address gets no cheaper guesses (accounts/challenge.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import time_machine
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.test import TestCase
from django.urls import reverse

from custodia.accounts import hashers
from custodia.accounts.models import LoginThrottle
from custodia.accounts.throttle import code_throttle_key, throttle_key
from tests.accounts.test_enumeration import ROUNDS, assert_similar_timing, run_interleaved
from tests.conftest import HttpsClient
from tests.factories import PASSWORD, UserFactory

START = dt.datetime(2030, 1, 7, 9, 0, tzinfo=dt.UTC)
TOTP_NOW = 1_900_000_015.0  # the middle of a 30-second step
OFFICE = "198.51.100.20"  # everyone behind one shared address
TOO_MANY = b"Too many failed login attempts"
CONFIRM = reverse("account_confirm_login_code")
# The address limit lives in the cache: every test runs on the UNLOGGED table and on Redis.
pytestmark = pytest.mark.usefixtures("cache_backend")


@pytest.fixture(autouse=True)
def own_hash_slots(settings: Any, tmp_path: Any) -> None:
    """This process's own hashing slots: other test runs on the machine share var/run's."""
    settings.PASSWORD_HASH_SLOT_DIR = tmp_path / "hash-slots"


def attempt(client: HttpsClient, email: str, password: str, **extra: str) -> Any:
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(
            reverse("account_login"), {"login": email, "password": password, **extra}
        )


def cookie_shapes(response: Any) -> dict[str, dict[str, Any]]:
    """The cookies an answer sets, without their values: names, lifetimes, flags."""
    return {
        name: {key: morsel[key] for key in ("max-age", "path", "secure", "httponly", "samesite")}
        | {"expires": bool(morsel["expires"])}
        for name, morsel in response.cookies.items()
    }


def enter_code(client: HttpsClient, code: str) -> Any:
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(CONFIRM, {"code": code})


def start_over(client: HttpsClient) -> None:
    """Leave the pending sign-in, as the page's "Start over" button does."""
    answer = client.post(reverse("account_logout"), {"next": reverse("account_login")})
    assert answer.status_code == 302 and client.get(reverse("account_login")).status_code == 200


def office() -> HttpsClient:
    return HttpsClient(REMOTE_ADDR=OFFICE)


def throttle_the_office() -> None:
    """Ten wrong passwords for other names in a minute: the address is over its limit."""
    stuffer = office()
    for n in range(10):
        answer = attempt(stuffer, f"stuffed{n}@example.test", "not the password at all")
        assert answer.status_code == 200 and TOO_MANY not in answer.content


def code_in(message: Any) -> str:
    match = re.search(r"^\s*([A-Z0-9-]{6,})\s*$", message.body, re.MULTILINE)
    assert match is not None, message.body
    return match.group(1)


def signed_in(client: HttpsClient) -> bool:
    return "_auth_user_id" in client.session


def page_text(response: Any) -> str:
    """The page without its per-request CSRF token, to compare two answers."""
    return re.sub(r'value="[^"]{20,}"', 'value=""', response.content.decode())


# --- A right password from a throttled address gets a challenge it can pass -------------------


def test_a_right_password_from_a_throttled_address_gets_an_emailed_code(db, smtp_server):
    user = UserFactory()
    colleague = UserFactory()
    with time_machine.travel(START, tick=False):
        throttle_the_office()
        me = office()
        answer = attempt(me, user.email, PASSWORD)
        assert answer.status_code == 302 and answer["Location"] == CONFIRM
        assert not signed_in(me)
        page = me.get(CONFIRM)
        assert page.status_code == 200 and b"sign-in code" in page.content
        mail = smtp_server.wait_for(1)[-1]
        assert mail.recipients == [user.email]
        code = code_in(mail)
        done = enter_code(me, code)
        assert done.status_code == 302 and signed_in(me)
        # The code is used up; and a colleague at the same desk gets a code of their own.
        again = office()
        assert attempt(again, colleague.email, PASSWORD)["Location"] == CONFIRM
        assert smtp_server.wait_for(2)[-1].recipients == [colleague.email]
        assert enter_code(again, code).status_code == 200 and not signed_in(again)


def test_below_the_limit_a_right_password_signs_in_at_once(db, smtp_server):
    user = UserFactory()
    with time_machine.travel(START, tick=False):
        stuffer = office()
        for n in range(9):
            attempt(stuffer, f"stuffed{n}@example.test", "not the password at all")
        answer = attempt(office(), user.email, PASSWORD)
        assert answer.status_code == 302 and answer["Location"] != CONFIRM
    assert smtp_server.messages == []


def test_a_second_factor_is_still_asked_after_the_code(db, smtp_server):
    """The code adds to the sign-in; it never replaces the second factor (nor does the address
    limit block the second factor, as allauth's shared counter used to)."""
    user = UserFactory()
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    with time_machine.travel(TOTP_NOW, tick=False):
        throttle_the_office()
        me = office()
        assert attempt(me, user.email, PASSWORD)["Location"] == CONFIRM
        after_code = enter_code(me, code_in(smtp_server.wait_for(1)[-1]))
        assert after_code.status_code == 302
        assert after_code["Location"] == reverse("mfa_authenticate") and not signed_in(me)
        totp = format_hotp_value(hotp_value(secret, int(TOTP_NOW) // 30))
        with TestCase.captureOnCommitCallbacks(execute=True):
            done = me.post(reverse("mfa_authenticate"), {"code": totp})
        assert done.status_code == 302 and signed_in(me)


# --- ... and the throttled address gets no cheaper guesses ----------------------------------------


def test_a_wrong_password_looks_the_same_counts_and_never_passes(db, smtp_server):
    user = UserFactory()
    with time_machine.travel(START, tick=False):
        throttle_the_office()
        right, wrong = office(), office()
        right_answer = attempt(right, user.email, PASSWORD, remember="on")
        wrong_answer = attempt(wrong, user.email, "a wrong password, guessed", remember="on")
        assert (wrong_answer.status_code, wrong_answer["Location"]) == (
            right_answer.status_code,
            right_answer["Location"],
        )
        assert cookie_shapes(wrong_answer) == cookie_shapes(right_answer)
        assert wrong.session.get_expiry_age() == right.session.get_expiry_age()
        assert page_text(wrong.get(CONFIRM)) == page_text(right.get(CONFIRM))
        # Only the right password sent a code; the look-alike page accepts none, not even that.
        mails = smtp_server.wait_for(1)
        assert len(mails) == 1
        code = code_in(mails[0])
        assert b"Incorrect code" in enter_code(wrong, code).content
        assert b"Incorrect code" in enter_code(wrong, "ABCDEF").content
        third = enter_code(wrong, code)
        assert third.status_code == 302 and third["Location"] == reverse("account_login")
        assert not signed_in(wrong)
        # Both counted in the name's series (the right one until its code is entered).
        assert LoginThrottle.objects.get(key=throttle_key(user.email)).failures == 2
        # An unknown name gets the same page and no mail.
        stranger = office()
        assert attempt(stranger, "nobody@example.test", PASSWORD)["Location"] == CONFIRM
    assert len(smtp_server.messages) == 1


def test_the_names_pause_still_refuses_before_the_password(db, smtp_server):
    """Five tries of one name from the throttled address, right or wrong, pause the name:
    the pause gives no hint which was right, and then refuses without a password check."""
    user = UserFactory()
    with time_machine.travel(START, tick=False):
        throttle_the_office()
        for password in ["guess one xx", PASSWORD, "guess two xx", "guess three", "guess four x"]:
            assert attempt(office(), user.email, password)["Location"] == CONFIRM
        refused = attempt(office(), user.email, PASSWORD)
        assert refused.status_code == 200 and TOO_MANY in refused.content


def test_entering_the_code_ends_the_names_series(db, smtp_server):
    user = UserFactory()
    with time_machine.travel(START, tick=False):
        throttle_the_office()
        attempt(office(), user.email, "a wrong one, first")
        me = office()
        attempt(me, user.email, PASSWORD)
        assert LoginThrottle.objects.get(key=throttle_key(user.email)).failures == 2
        enter_code(me, code_in(smtp_server.wait_for(1)[-1]))
        assert signed_in(me)
        assert LoginThrottle.objects.get(key=throttle_key(user.email)).failures == 0


def test_wrong_codes_pause_the_users_codes_with_a_notice(db, smtp_server):
    """Three tries per code, then the password again; five wrong codes in a row pause every
    code of the user, the right one too, and the owner is told someone has the password."""
    user = UserFactory()
    with time_machine.travel(START, tick=False):
        throttle_the_office()
        attacker = office()
        attempt(attacker, user.email, PASSWORD)
        for _ in range(2):
            assert b"Incorrect code" in enter_code(attacker, "BCDFGH").content
        assert enter_code(attacker, "BCDFGH")["Location"] == reverse("account_login")
        attempt(attacker, user.email, PASSWORD)
        for _ in range(2):
            enter_code(attacker, "BCDFGH")
        assert LoginThrottle.objects.get(key=code_throttle_key(user)).locked_until is not None
        notice = [m for m in smtp_server.wait_for(3) if "emailed sign-in codes" in m.body]
        assert notice and notice[0].recipients == [user.email]
        # Starting over, a fresh password step sends a fresh code, and the pause refuses it too.
        start_over(attacker)
        attempt(attacker, user.email, PASSWORD)
        fresh = [m for m in smtp_server.wait_for(4) if "sign-in code" in m.subject][-1]
        refused = enter_code(attacker, code_in(fresh))
        assert refused.status_code == 200 and TOO_MANY in refused.content
        assert not signed_in(attacker)


def test_second_factor_success_no_longer_wipes_the_address_limit(db):
    """allauth's code check cleared its per-address counter on success: an attacker who signs in
    to their own account with a second factor must not get ten fresh guesses."""
    own = UserFactory()
    secret = generate_totp_secret()
    TOTP.activate(own, secret)
    victim = UserFactory()
    # The clock ticks: allauth's rollback of a success drops every entry of the same instant.
    with time_machine.travel(TOTP_NOW, tick=True):
        stuffer = office()
        for n in range(9):
            attempt(stuffer, f"stuffed{n}@example.test", "not the password at all")
        mine = office()
        attempt(mine, own.email, PASSWORD)
        with TestCase.captureOnCommitCallbacks(execute=True):
            mine.post(
                reverse("mfa_authenticate"),
                {"code": format_hotp_value(hotp_value(secret, int(TOTP_NOW) // 30))},
            )
        assert signed_in(mine)
        attempt(stuffer, "stuffed9@example.test", "not the password at all")
        # The tenth failure stands: the next right password from here meets the code.
        assert attempt(office(), victim.email, PASSWORD)["Location"] == CONFIRM


@contextmanager
def counting_hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Count argon2 hashes (each takes a slot of accounts/hashers.py)."""
    taken: list[int] = []
    real = hashers.hashing_slot

    @contextmanager
    def counted() -> Iterator[None]:
        taken.append(1)
        with real():
            yield

    monkeypatch.setattr(hashers, "hashing_slot", counted)
    yield taken


def test_a_throttled_request_hashes_at_most_once(db, smtp_server, monkeypatch):
    """No request from a throttled address costs more hashing than any sign-in did before:
    one password check, none for a paused name or for a code."""
    user = UserFactory()
    with time_machine.travel(START, tick=False):
        throttle_the_office()
        with counting_hashes(monkeypatch) as taken:
            me = office()
            attempt(me, user.email, PASSWORD)
            assert len(taken) == 1
            attempt(office(), user.email, "a wrong one, guessed")
            assert len(taken) == 2
            attempt(office(), "nobody@example.test", "a wrong one, guessed")
            assert len(taken) == 3
            enter_code(me, "BCDFGH")
            assert len(taken) == 3


def test_a_mistyped_password_can_start_over_and_then_pass(db, smtp_server):
    """The look-alike page does not trap a person who mistyped: "Start over", then the right
    password gets its code."""
    user = UserFactory()
    with time_machine.travel(START, tick=False):
        throttle_the_office()
        me = office()
        assert attempt(me, user.email, "mistyped password")["Location"] == CONFIRM
        assert b"Start over" in me.get(CONFIRM).content
        start_over(me)
        assert attempt(me, user.email, PASSWORD)["Location"] == CONFIRM
        assert enter_code(me, code_in(smtp_server.wait_for(1)[-1])).status_code == 302
        assert signed_in(me)


@pytest.mark.mail_after_commit  # the code's mail waits for the commit, beside the answer
def test_a_right_password_takes_as_long_as_a_wrong_one(db, smtp_server, settings):
    """The look-alike must not be told apart by its timing either: the code's mail goes out after
    the answer, through a relay as slow as a distant one (100 ms a message)."""
    handle = smtp_server.handler.handle_DATA

    async def slow_relay(server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.1)
        return await handle(server, session, envelope)

    smtp_server.handler.handle_DATA = slow_relay  # type: ignore[method-assign]
    # The address is over its limit from the first failure; no other limit cuts the sample short.
    settings.ACCOUNT_RATE_LIMITS = {
        **settings.ACCOUNT_RATE_LIMITS,
        "login": "",
        "login_failed_address": "1/h/ip",
    }
    attempt(office(), "stuffed@example.test", "not the password at all")

    def sign_in(email: str) -> Any:
        password = PASSWORD if email.startswith("right") else "a wrong one, guessed"
        answer = attempt(office(), email, password)
        assert answer["Location"] == CONFIRM
        return answer

    measured = 0

    def measure() -> tuple[list[float], list[float]]:
        # A fresh account each round, so no name reaches its pause during the sample.
        nonlocal measured
        measured += 1
        right = [
            UserFactory(email=f"right{measured}-{n}@example.test").email for n in range(ROUNDS)
        ]
        wrong = [
            UserFactory(email=f"wrong{measured}-{n}@example.test").email for n in range(ROUNDS)
        ]
        return run_interleaved(sign_in, right, wrong)

    assert_similar_timing(measure)
    assert len(smtp_server.wait_for(ROUNDS * measured)) >= ROUNDS * measured


def test_a_throttled_address_does_not_block_a_signed_in_persons_step_up(db, smtp_server):
    """Re-authentication skips the address limit (it was a flat refusal for the whole office);
    allauth's per-user limit still bounds a stolen session guessing there."""
    user = UserFactory()
    with time_machine.travel(START, tick=False):
        me = office()
        assert attempt(me, user.email, PASSWORD).status_code == 302 and signed_in(me)
        throttle_the_office()
        url = reverse("account_reauthenticate")
        assert me.post(url, {"password": PASSWORD}).status_code == 302
        for _ in range(9):
            wrong = me.post(url, {"password": "not it at all"})
            assert wrong.status_code == 200 and TOO_MANY not in wrong.content
        refused = me.post(url, {"password": PASSWORD})
        assert refused.status_code in (200, 429) and not refused.has_header("Location")
