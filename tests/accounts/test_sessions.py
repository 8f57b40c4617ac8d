"""Sessions: new ids at login, re-authentication and business switch; idle and absolute expiry;
ending sessions server-side on password, MFA and membership changes."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from allauth.core import context as allauth_context
from allauth.mfa import signals as mfa_signals
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import RequestFactory
from django.utils import timezone

from custodia.accounts import sessionlist, sessions
from custodia.accounts.models import User
from custodia.accounts.sessions import ENDED, STARTED_KEY, TIMED_OUT, TOO_OLD
from custodia.accounts.sessionstore import stored_key
from custodia.core.permissions import Role
from custodia.tenancy.actions import do_change_role, do_deactivate_member
from custodia.tenancy.actors import ACTIVE_BUSINESS_SESSION_KEY
from custodia.tenancy.models import Business
from tests.acting import act
from tests.conftest import HttpsClient
from tests.factories import PASSWORD, TenantMatrix, add_member
from tests.web.support import logged_in, text

COOKIE = settings.SESSION_COOKIE_NAME
NEW_PASSWORD = "quartz-harbor-lantern-tundra-93"  # noqa: S105 (a test's password, not a secret)


class Clock:
    """The session clock, moved by the test (accounts/sessions.clock is the one seam)."""

    def __init__(self) -> None:
        self.now = timezone.now()

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock()
    monkeypatch.setattr(sessions, "clock", moved)
    return moved


def session_key(client: HttpsClient) -> str:
    return client.cookies[COOKIE].value


def is_logged_in(client: HttpsClient) -> bool:
    """The next request to the dashboard is answered as a logged-in person."""
    return client.get("/app/").status_code == 200


def log_in(client: HttpsClient, email: str, *, remember: bool = False) -> None:
    data = {"login": email, "password": PASSWORD}
    if remember:
        data["remember"] = "on"
    response = client.post("/accounts/login/", data)
    assert response.status_code == 302, text(response)


def set_idle_minutes(owner, minutes: int) -> None:
    act(owner)
    assert Business.objects.filter(pk=owner.tenant_id).update(session_idle_minutes=minutes) == 1


# --- New session ids ----------------------------------------------------------------------------


def test_a_pre_login_session_id_is_unusable_after_login(matrix):
    """Session fixation: an id planted before login never becomes a logged-in session."""
    attacker = HttpsClient()
    planted = attacker.session
    planted["planted"] = True
    planted.save()
    fixed_key = planted.session_key
    victim = HttpsClient()
    victim.cookies[COOKIE] = fixed_key

    log_in(victim, matrix.a.owner.user.email)

    assert session_key(victim) != fixed_key
    assert is_logged_in(victim)
    assert not Session.objects.filter(session_key=stored_key(fixed_key)).exists()
    assert not is_logged_in(attacker)  # the planted id is not the victim's session


def test_remember_me_keeps_the_session_14_days_otherwise_it_ends_with_the_browser(matrix):
    browser = HttpsClient()
    log_in(browser, matrix.a.owner.user.email)
    assert browser.cookies[COOKIE]["max-age"] == ""  # a browser-length cookie
    assert browser.session.get_expire_at_browser_close()

    remembered = HttpsClient()
    log_in(remembered, matrix.a.manager.user.email, remember=True)
    assert int(remembered.cookies[COOKIE]["max-age"]) == 14 * 24 * 3600
    assert not remembered.session.get_expire_at_browser_close()


def test_reauthentication_gives_the_session_a_new_id(matrix):
    browser = HttpsClient()
    log_in(browser, matrix.a.owner.user.email)
    browser.get("/app/")
    before = session_key(browser)
    response = browser.post("/accounts/reauthenticate/", {"password": PASSWORD})
    assert response.status_code == 302, text(response)
    after = session_key(browser)
    assert after != before
    assert not Session.objects.filter(session_key=stored_key(before)).exists()
    assert is_logged_in(browser)
    # The session list follows the new id rather than losing the entry.
    assert UserSession.objects.filter(session_key=stored_key(after)).exists()


def test_switching_business_gives_a_new_id_and_the_list_follows(matrix):
    user = matrix.a.staff.user
    add_member(matrix.b.owner, user, Role.STAFF)
    browser = logged_in(matrix.a.staff)
    browser.get("/app/")
    before = session_key(browser)
    started = UserSession.objects.get(session_key=stored_key(before)).created_at
    response = browser.post("/app/switch/", {"business": str(matrix.b.owner.tenant_id)})
    assert response.status_code == 302
    after = session_key(browser)
    assert after != before and not Session.objects.filter(session_key=stored_key(before)).exists()
    row = UserSession.objects.get(user=user)
    assert row.session_key == stored_key(after) and row.created_at == started


# --- Idle and absolute expiry ------------------------------------------------------------------


def test_an_idle_session_ends_on_its_next_request(matrix, clock):
    browser = logged_in(matrix.a.owner)
    assert is_logged_in(browser)
    key = session_key(browser)
    clock.advance(minutes=29)
    assert is_logged_in(browser)  # activity resets the idle timer
    clock.advance(minutes=31)

    response = browser.get("/app/clients/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/app/clients/"
    assert TIMED_OUT in text(browser.get(response["Location"]))
    assert not Session.objects.filter(session_key=stored_key(key)).exists()
    assert not UserSession.objects.filter(session_key=stored_key(key)).exists()
    assert not is_logged_in(browser)


def test_the_idle_limit_is_the_acting_businesss(matrix, clock):
    set_idle_minutes(matrix.a.owner, 5)
    set_idle_minutes(matrix.b.owner, 120)
    a_browser = logged_in(matrix.a.manager)
    b_browser = logged_in(matrix.b.manager)
    assert is_logged_in(a_browser) and is_logged_in(b_browser)
    clock.advance(minutes=4)
    assert is_logged_in(a_browser)
    clock.advance(minutes=6)
    assert not is_logged_in(a_browser)
    clock.advance(minutes=100)  # 110 minutes since B's manager was last active
    assert is_logged_in(b_browser)
    clock.advance(minutes=121)
    assert not is_logged_in(b_browser)


def test_without_a_chosen_business_the_strictest_limit_applies(matrix, clock):
    user = matrix.a.staff.user
    add_member(matrix.b.owner, user, Role.STAFF)
    set_idle_minutes(matrix.a.owner, 90)
    set_idle_minutes(matrix.b.owner, 10)
    browser = logged_in(matrix.a.staff)
    session = browser.session
    del session[ACTIVE_BUSINESS_SESSION_KEY]
    session.save()
    assert is_logged_in(browser)
    clock.advance(minutes=11)
    assert not is_logged_in(browser)


def test_a_session_of_someone_without_a_business_idles_out_after_30_minutes(db, clock):
    user = User.objects.create_user("nobody@example.test", PASSWORD)
    browser = HttpsClient()
    browser.force_login(user)
    assert browser.get("/app/security/").status_code == 200
    clock.advance(minutes=29)
    assert browser.get("/app/security/").status_code == 200
    clock.advance(minutes=31)
    assert browser.get("/app/security/").status_code == 302


def test_a_browser_session_ends_12_hours_after_login_however_active(matrix, clock):
    browser = logged_in(matrix.a.owner)
    assert is_logged_in(browser)
    for _ in range(12 * 3):  # a request every 20 minutes for 12 hours
        clock.advance(minutes=20)
        assert is_logged_in(browser)
    clock.advance(minutes=2)
    response = browser.get("/app/")
    assert response.status_code == 302
    assert TOO_OLD in text(browser.get(response["Location"]))


def test_a_remembered_session_ends_14_days_after_login(matrix, clock):
    browser = HttpsClient()
    log_in(browser, matrix.a.owner.user.email, remember=True)
    assert is_logged_in(browser)
    session = browser.session
    started = session[STARTED_KEY]
    # Kept active (the idle limit still applies) up to just short of 14 days.
    session[STARTED_KEY] = started - (14 * 24 * 3600 - 120)
    session.save()
    assert is_logged_in(browser)
    clock.advance(minutes=3)
    assert not is_logged_in(browser)


def test_a_timed_out_session_on_the_api_is_a_401_in_json(matrix, clock):
    browser = logged_in(matrix.a.owner)
    assert browser.get("/api/v1/clients").status_code == 200
    clock.advance(minutes=31)
    response = browser.get("/api/v1/clients")
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()
    assert browser.get("/api/v1/clients").status_code == 401


def test_an_api_token_is_not_refused_for_a_timed_out_cookie_riding_along(matrix, clock, api_as):
    api = api_as(matrix.a.owner)
    browser = logged_in(matrix.a.owner)
    browser.get("/app/")
    api.cookies[COOKIE] = session_key(browser)
    clock.advance(minutes=31)
    assert api.get("/api/v1/clients").status_code == 200


# --- Ending sessions server-side ---------------------------------------------------------------


def two_sessions(actor) -> tuple[HttpsClient, HttpsClient]:
    first, second = logged_in(actor), logged_in(actor)
    assert is_logged_in(first) and is_logged_in(second)
    return first, second


def test_an_ended_session_is_rejected_on_its_next_request(matrix):
    first, second = two_sessions(matrix.a.owner)
    second_key = session_key(second)
    sessions.end_sessions(matrix.a.owner.user, keep=session_key(first))
    response = second.get("/app/clients/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert ENDED in text(second.get(response["Location"]))
    assert not Session.objects.filter(session_key=stored_key(second_key)).exists()
    assert is_logged_in(first)


def test_a_password_change_ends_every_session(matrix):
    first, second = two_sessions(matrix.a.owner)
    second_key = session_key(second)
    response = first.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, text(response)
    # Ended on the server at once, not only refused later by Django's password-hash check.
    assert not Session.objects.filter(session_key=stored_key(second_key)).exists()
    assert not is_logged_in(second)
    assert not is_logged_in(first)  # ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE
    assert not UserSession.objects.filter(user=matrix.a.owner.user).exists()


def test_a_password_reset_ends_every_session(matrix):
    from allauth.account.signals import password_reset

    first, second = two_sessions(matrix.a.owner)
    keys = [session_key(first), session_key(second)]
    request = RequestFactory().post("/accounts/password/reset/key/done/")
    password_reset.send(sender=User, request=request, user=matrix.a.owner.user)
    assert not Session.objects.filter(session_key__in=[stored_key(key) for key in keys]).exists()
    assert not is_logged_in(first) and not is_logged_in(second)


def test_an_mfa_change_ends_the_other_sessions_and_renews_this_ones_id(matrix):
    from custodia.accounts.sessionstore import SessionStore

    user = matrix.a.owner.user
    first, second = two_sessions(matrix.a.owner)
    first_key = session_key(first)
    request = RequestFactory().post("/accounts/2fa/totp/activate")
    request.user = user
    request.session = SessionStore(first_key)
    with allauth_context.request_context(request):
        mfa_signals.authenticator_added.send(
            sender=object, request=request, user=user, authenticator=SimpleNamespace(type="totp")
        )
    assert not is_logged_in(second)
    renewed = request.session.session_key
    assert renewed != first_key
    assert not Session.objects.filter(session_key=stored_key(first_key)).exists()
    assert Session.objects.filter(session_key=stored_key(renewed)).exists()
    assert UserSession.objects.filter(user=user).get().session_key == stored_key(renewed)


def test_deactivation_ends_the_members_sessions_for_that_business_only(matrix):
    a = matrix.a
    user = a.staff.user
    b_actor = add_member(matrix.b.owner, user, Role.STAFF)
    in_a, in_b = logged_in(a.staff), logged_in(b_actor)
    assert is_logged_in(in_a) and is_logged_in(in_b)
    act(a.owner)
    do_deactivate_member(a.staff.membership, actor=a.owner)
    assert not is_logged_in(in_a)
    assert is_logged_in(in_b)


def test_a_role_change_ends_the_members_sessions(matrix):
    a = matrix.a
    first, second = two_sessions(a.staff)
    act(a.owner)
    do_change_role(a.staff.membership, Role.MANAGER, actor=a.owner)
    assert not is_logged_in(first) and not is_logged_in(second)


def test_changing_ones_own_role_keeps_this_session_and_ends_the_others(matrix):
    a = matrix.a
    owner = a.owner
    second_owner = add_member(owner, User.objects.create_user("co@example.test"), Role.OWNER)
    assert second_owner.role == Role.OWNER
    here, elsewhere = two_sessions(owner)
    before = session_key(here)
    page = here.get("/app/staff/")
    assert page.status_code == 200
    response = here.post(f"/app/staff/{owner.membership.pk}/role/", {"role": "manager"})
    assert response.status_code == 302, text(response)
    assert session_key(here) == before
    assert is_logged_in(here)
    assert not is_logged_in(elsewhere)


# --- Devices ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36",
            "Chrome on Linux",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox on Windows",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Mobile Safari on iOS",
        ),
        ("", "Unknown device"),
        ("curl/8.5.0", "curl"),
    ],
)
def test_devices_are_described_in_plain_words(user_agent, device):
    assert sessionlist.describe_device(user_agent) == device


def _log_in_through_the_form(email: str) -> HttpsClient:
    from tests.factories import PASSWORD

    browser = HttpsClient()
    answer = browser.post("/accounts/login/", {"login": email, "password": PASSWORD})
    assert answer.status_code == 302
    return browser


def test_a_login_costs_the_same_however_many_sessions_the_person_has(
    matrix: TenantMatrix, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from custodia.accounts import hashers

    # The hash is not the question here (and must not wait for a slot between logins).
    monkeypatch.setattr(hashers.OwaspArgon2PasswordHasher, "verify", lambda *a: True)
    email = matrix.a.owner.user.email

    def queries_of_one_login() -> int:
        with CaptureQueriesContext(connection) as captured:
            _log_in_through_the_form(email)
        return len(captured.captured_queries)

    _log_in_through_the_form(email)
    few = queries_of_one_login()
    for _ in range(12):
        _log_in_through_the_form(email)
    assert queries_of_one_login() == few  # allauth's purge was three queries per listed session


def test_past_the_cap_a_login_ends_the_least_recently_used_session(
    matrix: TenantMatrix, monkeypatch: pytest.MonkeyPatch
) -> None:
    from allauth.usersessions.models import UserSession

    from custodia.accounts import hashers, sessionlist

    monkeypatch.setattr(hashers.OwaspArgon2PasswordHasher, "verify", lambda *a: True)
    monkeypatch.setattr(sessionlist, "MAX_SESSIONS_PER_USER", 3)
    user = matrix.a.owner.user
    browsers = [_log_in_through_the_form(user.email) for _ in range(4)]
    assert UserSession.objects.filter(user=user).count() == 3
    assert browsers[0].get("/app/").status_code == 302  # the oldest was ended
    assert all(b.get("/app/").status_code == 200 for b in browsers[1:])
