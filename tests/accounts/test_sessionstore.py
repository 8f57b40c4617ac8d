"""Session data is encrypted at rest: a dump of django_session shows no secret kept in a session."""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from django.core import signing
from django.db import connection
from django.urls import reverse

from custodia.accounts.sessionstore import SessionStore, stored_key
from tests.factories import PASSWORD, TenantMatrix
from tests.web.support import logged_in

pytestmark = pytest.mark.django_db

MARKER = "a-secret-kept-in-the-session-7f3a"


def stored(session_key: str) -> str:
    """What someone holding a dump can read of a session row: its payload, decoded as Django
    encodes it (base64, zlib-compressed when marked with "."), not just the raw text."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT session_data FROM django_session WHERE session_key = %s",
            [stored_key(session_key)],
        )
        row = cursor.fetchone()
    assert row is not None
    payload = str(row[0]).split(":", 1)[0]
    compressed = payload.startswith(".")
    raw = signing.b64_decode(payload.removeprefix(".").encode())
    return (zlib.decompress(raw) if compressed else raw).decode("latin-1")


def test_what_a_session_holds_is_not_readable_in_the_database() -> None:
    session = SessionStore()
    session["secret"] = MARKER
    session.save()
    assert MARKER not in stored(session.session_key or "")
    assert SessionStore(session.session_key)["secret"] == MARKER


def test_a_totp_secret_being_enrolled_is_not_in_the_database(matrix: TenantMatrix) -> None:
    browser = logged_in(matrix.a.owner)
    browser.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    page = browser.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    secret = browser.session["mfa.totp.secret"]
    assert secret and secret not in stored(browser.session.session_key or "")
    assert secret not in stored(browser.session.session_key or "").upper()


def test_session_data_under_another_key_reads_as_an_empty_session(settings: Any) -> None:
    session = SessionStore()
    session["secret"] = MARKER
    session.save()
    settings.SECRET_KEY = "another key " * 6
    assert SessionStore(session.session_key).get("secret") is None


def test_the_previous_secret_key_still_opens_sessions_after_a_rotation(settings: Any) -> None:
    session = SessionStore()
    session["secret"] = MARKER
    session.save()
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "the new key " * 6
    assert SessionStore(session.session_key)["secret"] == MARKER


# --- Keys at rest ------------------------------------------------------------------------------

COOKIE = "__Host-sessionid"


def test_the_database_holds_no_session_key_that_logs_in(matrix: TenantMatrix) -> None:
    """Someone who reads django_session and the session list (a dump, the app role's password)
    copies every key they find into the cookie: none of them is a logged-in session."""
    from allauth.usersessions.models import UserSession

    from tests.conftest import HttpsClient

    browser = HttpsClient()
    response = browser.post(
        "/accounts/login/", {"login": matrix.a.owner.user.email, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert browser.get("/app/").status_code == 200
    cookie = browser.cookies[COOKIE].value
    with connection.cursor() as cursor:
        cursor.execute("SELECT session_key FROM django_session")
        found = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT session_key FROM usersessions_usersession")
        listed = {row[0] for row in cursor.fetchall()}
    assert stored_key(cookie) in found and stored_key(cookie) in listed
    assert cookie not in found | listed
    for key in found | listed:
        thief = HttpsClient()
        thief.cookies[COOKIE] = key
        answer = thief.get("/app/")
        assert answer.status_code == 302 and answer["Location"].startswith("/accounts/login/")
    assert UserSession.objects.filter(session_key=stored_key(cookie)).exists()


def test_a_stored_key_is_not_a_session_key() -> None:
    session = SessionStore()
    session["secret"] = MARKER
    session.save()
    key = session.session_key or ""
    assert SessionStore(key)["secret"] == MARKER
    assert SessionStore(stored_key(key)).get("secret") is None
    assert not SessionStore().exists(stored_key(key))
    SessionStore().delete(stored_key(key))  # a stored key names nothing to delete either
    assert SessionStore().exists(key)
    SessionStore().delete(key)
    assert not SessionStore().exists(key)
