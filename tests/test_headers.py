"""Security headers, cookies, methods and error pages, as the Django app sends them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import include, path

from tests.factories import PASSWORD


def explode(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom: secret-detail-4711 in /srv/custodia/internal.py")


# A URLconf for the 500 test only (selected with @pytest.mark.urls): the app's URLs plus one
# view that fails, so the error page renders as it would in production.
urlpatterns = [path("explode/", explode), path("", include("custodia.urls"))]
handler404 = "custodia.web.views.not_found"
handler500 = "custodia.web.views.server_error"

CSP_DIRECTIVES = {
    "default-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}


def csp_of(response: HttpResponse) -> dict[str, list[str]]:
    directives = {}
    for part in response["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def test_every_page_carries_the_security_headers(web):
    response = web.get("/")
    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["Cross-Origin-Resource-Policy"] == "same-origin"
    permissions = response["Permissions-Policy"]
    for feature in ("camera=()", "geolocation=()", "microphone=()", "payment=()"):
        assert feature in permissions


def test_content_security_policy_is_strict(web):
    response = web.get("/")
    directives = csp_of(response)
    for name, value in CSP_DIRECTIVES.items():
        assert directives[name] == [value], name
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "unsafe-eval" not in response["Content-Security-Policy"]
    # Scripts and styles fall back to, or are set to, 'self' only.
    for name in ("script-src", "style-src"):
        assert directives.get(name, ["'self'"]) == ["'self'"]


def test_pages_for_a_logged_in_person_are_not_stored(web_as, matrix):
    client = web_as(matrix.a.owner)
    for url in ("/app/", "/security/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Cache-Control"] == "no-store", url


def test_public_pages_are_not_cached_without_revalidation(web):
    assert web.get("/")["Cache-Control"] in {"no-cache", "no-store"}


def assert_host_cookie(morsel: Any) -> None:
    assert morsel.key.startswith("__Host-")
    assert morsel["secure"] is True
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["path"] == "/"
    assert not morsel["domain"]  # __Host- cookies must not name a domain


def test_login_sets_host_prefixed_secure_cookies(web, matrix):
    page = web.get("/accounts/login/")
    assert page.status_code == 200
    assert_host_cookie(page.cookies["__Host-csrftoken"])
    response = web.post(
        "/accounts/login/", {"login": matrix.a.owner.user.email, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert_host_cookie(response.cookies["__Host-sessionid"])
    # The CSRF secret rotates at login; the new cookie has the same protections.
    assert_host_cookie(response.cookies["__Host-csrftoken"])
    assert "sessionid" not in response.cookies and "csrftoken" not in response.cookies


def test_flash_messages_travel_in_the_session_not_a_cookie(web, matrix):
    user = matrix.a.owner.user
    response = web.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302
    # allauth's "Successfully signed in as <person>." is waiting for the next page: it names the
    # person, so it must not ride in a cookie (signed is not secret), prefixed or not.
    assert set(response.cookies) <= {"__Host-sessionid", "__Host-csrftoken"}
    for morsel in response.cookies.values():
        assert user.email not in morsel.value
    page = web.get(response["Location"], follow=True)
    assert b"Successfully signed in" in page.content
    assert "messages" not in page.cookies


@pytest.mark.parametrize("method", ["TRACE", "TRACK", "CONNECT"])
def test_trace_and_friends_are_refused(web, method):
    response = web.generic(method, "/")
    assert response.status_code == 405
    assert b"TRACE" not in response.content


def test_plain_http_is_redirected_to_https(db):
    response = Client().get("/app/clients/?q=x")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/app/clients/?q=x"


def test_plain_http_post_is_redirected_without_acting(db):
    response = Client().post("/accounts/login/", {"login": "a@example.com", "password": "x"})
    assert response.status_code == 301
    assert response["Location"].startswith("https://")
    assert "__Host-sessionid" not in response.cookies


def test_not_found_reveals_nothing(web, matrix):
    marker = f"probe-{uuid.uuid4()}"
    response = web.get(f"/no-such-page/{marker}/")
    assert response.status_code == 404
    body = response.content.decode()
    assert marker not in body
    for leak in ("Traceback", "URLconf", "urlpatterns", "DEBUG", "Page not found at"):
        assert leak not in body


def test_another_tenants_record_is_a_bare_404(web_as, matrix):
    foreign = str(matrix.b.client.pk)
    response = web_as(matrix.a.owner).get(f"/app/clients/{foreign}/")
    assert response.status_code == 404
    body = response.content.decode()
    assert foreign not in body
    assert matrix.b.client.name not in body
    assert "Traceback" not in body


@pytest.mark.urls("tests.test_headers")
def test_server_error_reveals_nothing(web):
    web.raise_request_exception = False
    response = web.get("/explode/")
    assert response.status_code == 500
    body = response.content.decode()
    for leak in ("secret-detail-4711", "RuntimeError", "Traceback", "/srv/custodia", "boom"):
        assert leak not in body
    # Even the error page keeps the security headers.
    assert response["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response["Content-Security-Policy"]


def test_a_form_without_csrf_token_gets_our_plain_403(db: None) -> None:
    """The CSRF failure page uses the site layout and names no internal reason."""
    from tests.conftest import HttpsClient

    strict = HttpsClient(enforce_csrf_checks=True)
    response = strict.post("/accounts/login/", {"login": "a@example.test", "password": "x"})
    body = response.content.decode()
    assert response.status_code == 403
    assert "Form expired" in body and "CSRF" not in body and "Referer" not in body


@pytest.mark.parametrize("path", ["/static/custodia.css", "/static/favicon.svg"])
def test_static_files_carry_the_security_headers(web, path):
    response = web.get(path)
    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert csp_of(response)["default-src"] == ["'self'"]
    assert response["Cross-Origin-Resource-Policy"] == "same-origin"
    assert response["Referrer-Policy"] == "same-origin"
    b"".join(response.streaming_content)


def test_static_files_touch_no_session_or_database(web, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = web.get("/static/custodia.css")
        b"".join(response.streaming_content)
    assert response.status_code == 200
    assert "Set-Cookie" not in response
