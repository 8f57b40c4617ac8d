"""The session list's tracking costs no write on most requests and one statement a minute; a new
browser or address still goes through allauth (its row updated, `session_client_changed` sent)."""

from __future__ import annotations

from allauth.usersessions.models import UserSession
from allauth.usersessions.signals import session_client_changed
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from custodia.accounts.sessionstore import stored_key
from tests.accounts.test_sessions import clock, session_key  # noqa: F401 (a fixture)
from tests.web.support import logged_in

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
OTHER_BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Safari/604.1"


def statements(browser, **headers: str) -> list[str]:
    """The statements of a page view that wrote, or touched the session list."""
    with CaptureQueriesContext(connection) as captured:
        assert browser.get("/app/", **headers).status_code == 200
    return [
        query["sql"]
        for query in captured.captured_queries
        if "audit_auditevent" not in query["sql"]
        and (
            query["sql"].split(None, 1)[0] in {"INSERT", "UPDATE", "DELETE"}
            or "usersessions_usersession" in query["sql"]
        )
    ]


def listed(browser) -> UserSession:
    return UserSession.objects.get(session_key=stored_key(session_key(browser)))


def test_activity_is_written_once_a_minute_in_one_statement_each(matrix, clock):  # noqa: F811
    browser = logged_in(matrix.a.owner)
    browser.get("/app/", headers={"User-Agent": BROWSER})  # the first request lists the session
    seen = listed(browser).last_seen_at
    for _ in range(3):
        clock.advance(seconds=15)
        assert statements(browser, headers={"User-Agent": BROWSER}) == []
    clock.advance(seconds=15)  # a minute since the last write
    # The session's new last-seen stamp, and one UPDATE of its list row (no read, no savepoint).
    written = statements(browser, headers={"User-Agent": BROWSER})
    assert [sql.split('"', 2)[:2] for sql in written] == [
        ["UPDATE ", "usersessions_usersession"],
        ["UPDATE ", "django_session"],
    ]
    assert listed(browser).last_seen_at > seen


def test_a_new_browser_is_recorded_through_allauth(matrix, clock):  # noqa: F811
    changes = []

    def receiver(sender, request, from_session, to_session, **_):
        changes.append((from_session.user_agent, to_session.user_agent))

    session_client_changed.connect(receiver)
    try:
        browser = logged_in(matrix.a.owner)
        browser.get("/app/", headers={"User-Agent": BROWSER})
        clock.advance(minutes=1)
        browser.get("/app/", headers={"User-Agent": OTHER_BROWSER})
    finally:
        session_client_changed.disconnect(receiver)
    assert changes == [(BROWSER, OTHER_BROWSER)]
    row = listed(browser)
    assert row.user_agent == OTHER_BROWSER and row.user_id == matrix.a.owner.user.pk
    assert settings.SESSION_COOKIE_NAME in browser.cookies
