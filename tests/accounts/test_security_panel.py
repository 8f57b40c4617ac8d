"""The security panel: each session with device, IP, times and a marker for this one; ending one,
the others or all; API tokens with last use."""

from __future__ import annotations

import re

from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.sessions.models import Session

from custodia.accounts.actions import do_create_api_token
from custodia.accounts.sessionstore import stored_key
from tests.acting import act
from tests.conftest import HttpsClient
from tests.web.support import anonymous, logged_in, text, title

CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
COOKIE = settings.SESSION_COOKIE_NAME


def browser_of(actor, user_agent: str, ip: str) -> HttpsClient:
    client = logged_in(actor)
    client.defaults.update(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)
    assert client.get("/app/").status_code == 200
    return client


def session_ids(page) -> list[int]:
    return [int(n) for n in re.findall(r"/app/security/sessions/(\d+)/end/", page.content.decode())]


def is_logged_in(client: HttpsClient) -> bool:
    return client.get("/app/").status_code == 200


def test_the_panel_lists_each_session_and_marks_this_one(matrix):
    laptop = browser_of(matrix.a.owner, CHROME_LINUX, "192.0.2.10")
    browser_of(matrix.a.owner, FIREFOX_WINDOWS, "198.51.100.7")
    page = laptop.get("/app/security/")
    assert page.status_code == 200 and title(page) == "Security · Custodia"
    words = text(page)
    assert "Chrome on Linux (this session)" in words
    assert "Firefox on Windows" in words and "Firefox on Windows (this session)" not in words
    assert "192.0.2.10" in words and "198.51.100.7" in words
    assert len(session_ids(page)) == 2
    assert "End all other sessions" in words and "End all sessions" in words
    assert "Recent security activity" in words  # accounts/security_events.html
    # Nobody else's sessions, and the link in the navigation.
    browser_of(matrix.b.owner, CHROME_LINUX, "203.0.113.5")
    assert "203.0.113.5" not in text(laptop.get("/app/security/"))
    assert 'href="/app/security/"' in laptop.get("/app/").content.decode()


def test_ending_another_session_logs_that_browser_out_on_its_next_request(matrix):
    laptop = browser_of(matrix.a.owner, CHROME_LINUX, "192.0.2.10")
    phone = browser_of(matrix.a.owner, FIREFOX_WINDOWS, "198.51.100.7")
    phone_key = phone.cookies[COOKIE].value
    phone_row = UserSession.objects.get(session_key=stored_key(phone_key))
    response = laptop.post(f"/app/security/sessions/{phone_row.pk}/end/")
    assert response.status_code == 302 and response["Location"] == "/app/security/"
    assert "Session ended" in text(laptop.get("/app/security/"))
    assert not Session.objects.filter(session_key=stored_key(phone_key)).exists()
    assert not is_logged_in(phone)
    assert is_logged_in(laptop)


def test_ending_this_session_logs_out_here(matrix):
    laptop = browser_of(matrix.a.owner, CHROME_LINUX, "192.0.2.10")
    row = UserSession.objects.get(session_key=stored_key(laptop.cookies[COOKIE].value))
    response = laptop.post(f"/app/security/sessions/{row.pk}/end/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert not is_logged_in(laptop)
    assert not UserSession.objects.filter(pk=row.pk).exists()


def test_nobody_ends_someone_elses_session(matrix):
    victim = browser_of(matrix.a.manager, CHROME_LINUX, "192.0.2.10")
    row = UserSession.objects.get(session_key=stored_key(victim.cookies[COOKIE].value))
    for attacker in (matrix.a.owner, matrix.b.owner, matrix.a.staff):
        response = browser_of(attacker, FIREFOX_WINDOWS, "198.51.100.7").post(
            f"/app/security/sessions/{row.pk}/end/"
        )
        assert response.status_code == 404
    assert anonymous().post(f"/app/security/sessions/{row.pk}/end/").status_code == 302
    assert is_logged_in(victim)


def test_end_all_others_and_end_all(matrix):
    here = browser_of(matrix.a.owner, CHROME_LINUX, "192.0.2.10")
    others = [browser_of(matrix.a.owner, FIREFOX_WINDOWS, f"198.51.100.{n}") for n in (1, 2)]
    untouched = browser_of(matrix.a.manager, FIREFOX_WINDOWS, "198.51.100.9")
    response = here.post("/app/security/sessions/end-others/")
    assert response.status_code == 302
    assert "Ended 2 other sessions." in text(here.get("/app/security/"))
    assert not any(is_logged_in(other) for other in others)
    assert is_logged_in(here)

    again = browser_of(matrix.a.owner, FIREFOX_WINDOWS, "198.51.100.3")
    response = here.post("/app/security/sessions/end-all/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert "All your sessions have ended." in text(here.get("/accounts/login/"))
    assert not is_logged_in(here) and not is_logged_in(again)
    assert not UserSession.objects.filter(user=matrix.a.owner.user).exists()
    assert is_logged_in(untouched)


def test_ending_sessions_needs_post_and_the_csrf_token(matrix):
    strict = HttpsClient(enforce_csrf_checks=True)
    strict.act_as(matrix.a.owner)
    other = browser_of(matrix.a.owner, FIREFOX_WINDOWS, "198.51.100.7")
    assert strict.get("/app/").status_code == 200
    assert strict.post("/app/security/sessions/end-others/").status_code == 403
    assert strict.get("/app/security/sessions/end-all/").status_code == 405
    assert is_logged_in(other) and is_logged_in(strict)


def test_the_panel_needs_a_login(db):
    response = anonymous().get("/app/security/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_panel_lists_api_tokens_with_last_use_and_revokes_them(matrix):
    staff = matrix.a.staff
    act(staff)
    token, plain = do_create_api_token(actor=staff, name="Spreadsheet")
    page = logged_in(staff)
    words = text(page.get("/app/security/"))
    assert "Spreadsheet" in words and "Never" in words
    api = HttpsClient(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert api.get("/api/v1/clients").status_code == 200
    listing = page.get("/app/security/").content.decode()
    assert "Never" not in text(page.get("/app/security/"))
    assert f"/app/tokens/{token.pk}/revoke/" in listing and plain not in listing
    assert page.post(f"/app/tokens/{token.pk}/revoke/").status_code == 302
    assert "Revoked" in text(page.get("/app/security/"))
    assert api.get("/api/v1/clients").status_code == 401
    # A client login has no tokens: no section.
    assert "API tokens" not in text(logged_in(matrix.a.client_login).get("/app/security/"))
