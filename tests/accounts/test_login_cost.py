"""What a sign-in costs beyond its hash, and that the cheaper way keeps every guarantee.

A new session's key is not looked up before it is inserted (the insert itself refuses a
collision, and a colliding key never takes over another's session); the new session is listed
with one INSERT; allauth's "signed in" message is rendered without the page's context processors
(no database read for a line of text).
"""

from __future__ import annotations

from typing import Any

import pytest
from allauth.account.adapter import get_adapter
from allauth.usersessions.models import UserSession
from django.contrib import messages
from django.contrib.auth.hashers import make_password
from django.contrib.messages.storage import default_storage
from django.contrib.sessions.backends.base import CreateError
from django.db import connection
from django.test.client import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from custodia.accounts import sessionstore
from custodia.accounts.sessionlist import track_login
from custodia.accounts.sessionstore import SessionStore, stored_key
from tests.factories import PASSWORD, UserFactory
from tests.web.support import anonymous

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"


def sign_in(user: Any) -> tuple[Any, list[dict[str, Any]]]:
    browser = anonymous()
    with CaptureQueriesContext(connection) as captured:
        answer = browser.post(
            reverse("account_login"),
            {"login": user.email, "password": PASSWORD},
            headers={"User-Agent": BROWSER},
        )
    assert answer.status_code == 302
    return browser, captured.captured_queries


def test_a_new_session_is_inserted_without_a_lookup_first(db: None) -> None:
    store = SessionStore()
    store["note"] = "x"
    with CaptureQueriesContext(connection) as captured:
        store.create()
    touching = [q["sql"] for q in captured.captured_queries if "django_session" in q["sql"]]
    assert len(touching) == 1
    assert touching[0].startswith("INSERT")


def test_a_colliding_key_never_takes_over_another_session(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = SessionStore()
    victim["_auth_user_id"] = "victim"
    victim.create()
    victim_key = victim.session_key
    assert victim_key is not None
    keys = iter([victim_key, "a" * 32])
    monkeypatch.setattr(sessionstore, "get_random_string", lambda *_: next(keys))
    attacker = SessionStore()
    attacker["_auth_user_id"] = "attacker"
    attacker.create()  # the first key collides: refused by the insert, the next one is taken
    assert attacker.session_key == "a" * 32
    assert SessionStore(victim_key).load()["_auth_user_id"] == "victim"
    # And a forced insert of a taken key is refused, not merged.
    clash = SessionStore(victim_key)
    clash["_auth_user_id"] = "attacker"
    with pytest.raises(CreateError):
        clash.save(must_create=True)
    assert SessionStore(victim_key).load()["_auth_user_id"] == "victim"


def test_a_sign_in_lists_its_session_in_one_statement(db: None) -> None:
    user = UserFactory(password=make_password(PASSWORD))
    browser, queries = sign_in(user)
    listing = [q["sql"] for q in queries if "usersessions_usersession" in q["sql"]]
    kinds = [sql.split(None, 1)[0] for sql in listing]
    # The stale-row purge, the one INSERT, and the check for sessions past the limit.
    assert kinds == ["DELETE", "INSERT", "SELECT"]
    row = UserSession.objects.get(session_key=stored_key(browser.session.session_key))
    assert (row.user_id, row.user_agent) == (user.pk, BROWSER)
    assert row.ip


def test_a_sign_in_over_a_listed_key_rewrites_the_row_for_this_person(db: None) -> None:
    """Should a listed row carry the new session's key (a leftover), it is taken over whole:
    nothing of its person, address or browser survives."""
    user, other = (UserFactory(password=make_password(PASSWORD)) for _ in range(2))
    browser, _ = sign_in(user)
    key = stored_key(browser.session.session_key)
    UserSession.objects.filter(session_key=key).update(
        user_id=other.pk, ip="203.0.113.9", user_agent="old"
    )
    request = RequestFactory().post("/", HTTP_USER_AGENT=BROWSER)
    request.session = browser.session
    request.user = user
    track_login(request, user)
    row = UserSession.objects.get(session_key=key)
    assert (row.user_id, row.user_agent) == (user.pk, BROWSER)
    assert row.ip != "203.0.113.9"


def test_the_signed_in_message_is_shown_and_reads_nothing(db: None) -> None:
    user = UserFactory(password=make_password(PASSWORD))
    request = RequestFactory().get("/")
    request.session = SessionStore()
    request.user = user

    request._messages = default_storage(request)
    with CaptureQueriesContext(connection) as captured:
        get_adapter(request).add_message(
            request,
            messages.SUCCESS,
            "account/messages/logged_in.txt",
            {"user": user},
        )
    assert captured.captured_queries == []
    shown = [str(m) for m in messages.get_messages(request)]
    assert len(shown) == 1
    assert "Successfully signed in" in shown[0]
    # A template that does not exist adds nothing, as allauth's own does.
    get_adapter(request).add_message(request, messages.INFO, "account/messages/nothing.txt")
    assert len(list(messages.get_messages(request))) == 1


def test_after_a_real_sign_in_the_message_is_on_the_next_page(db: None) -> None:
    user = UserFactory(password=make_password(PASSWORD))
    browser, _ = sign_in(user)
    page = browser.get(reverse("account_email"), follow=True)
    assert "Successfully signed in" in page.content.decode()
