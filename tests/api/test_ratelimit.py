"""The API's rate limit, attacked: one token or session cannot write audit events without bound,
parallel requests are counted exactly, a stranger cannot spend someone else's allowance, and a
refusal is a 429 with Retry-After that writes nothing but one security event a minute."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from custodia.accounts.models import ApiRateLimit, SecurityEvent, SecurityEventKind
from custodia.api import ratelimit
from custodia.audit.models import AuditEvent
from tests.acting import act
from tests.api.conftest import assert_error, send
from tests.factories import TenantMatrix

LIMIT = 5
limited = override_settings(API_RATE_LIMIT_PER_MINUTE=LIMIT)


def business_events(matrix: TenantMatrix) -> int:
    """Audit events of business A (as its owner sees them)."""
    act(matrix.a.owner)
    return AuditEvent.objects.count()


def notices(user: Any) -> int:
    return SecurityEvent.objects.filter(
        user_id=user.pk, kind=SecurityEventKind.API_RATE_LIMITED
    ).count()


@limited
@pytest.mark.parametrize("auth", ["token", "session"])
def test_over_the_limit_is_a_429_that_writes_no_audit_event(
    matrix: TenantMatrix, api_as: Any, web_as: Any, auth: str
) -> None:
    actor = matrix.a.staff
    client = api_as(actor) if auth == "token" else web_as(actor)
    for _ in range(LIMIT):
        assert send(client, "GET", "/visits").status_code == 200
    written = business_events(matrix)
    for _ in range(3):
        response = send(client, "GET", "/visits")
        body = assert_error(response, 429)
        assert f"at most {LIMIT} a minute" in body["detail"]
        # One request frees up every 60/LIMIT seconds.
        assert 1 <= int(response["Retry-After"]) <= 60 // LIMIT
    assert business_events(matrix) == written
    # The first refusal is on record, once: refusals cannot flood the trail either.
    assert notices(actor.user) == 1
    act(actor)
    assert (
        AuditEvent.objects.filter(action="auth.rate_limited", actor_user_id=actor.user.pk).count()
        == 1
    )


@limited
def test_a_token_and_a_session_each_have_their_own_allowance(
    matrix: TenantMatrix, api_as: Any, web_as: Any
) -> None:
    token, other_token, session = (
        api_as(matrix.a.owner),
        api_as(matrix.a.owner),
        web_as(matrix.a.owner),
    )
    for _ in range(LIMIT):
        assert send(token, "GET", "/services").status_code == 200
    assert send(token, "GET", "/services").status_code == 429
    assert send(other_token, "GET", "/services").status_code == 200
    assert send(session, "GET", "/services").status_code == 200


@limited
def test_a_stranger_with_the_public_prefix_cannot_spend_the_tokens_allowance(
    matrix: TenantMatrix, api_as: Any
) -> None:
    victim = api_as(matrix.a.owner)
    prefix = victim.defaults["HTTP_AUTHORIZATION"].split("_")[1]
    forger = type(victim)(HTTP_AUTHORIZATION=f"Bearer cst_{prefix}_{'x' * 43}")
    answers = [send(forger, "GET", "/services").status_code for _ in range(LIMIT + 2)]
    assert answers == [401] * LIMIT + [429, 429]
    # Nobody's security panel learns of the forger's refusals (the token was not theirs).
    assert notices(matrix.a.owner.user) == 0
    assert send(victim, "GET", "/services").status_code == 200


@limited
def test_anonymous_and_malformed_credentials_are_not_counted(
    matrix: TenantMatrix, web: Any
) -> None:
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer nonsense"}):
        for _ in range(LIMIT + 2):
            assert send(web, "GET", "/services", **headers).status_code == 401
    assert ApiRateLimit.objects.count() == 0


@limited
def test_web_pages_are_not_counted(matrix: TenantMatrix, web_as: Any) -> None:
    browser = web_as(matrix.a.owner)
    for _ in range(LIMIT + 2):
        assert browser.get("/app/").status_code == 200
    assert send(browser, "GET", "/services").status_code == 200


@limited
def test_allowance_comes_back_over_time_and_refusals_do_not_use_it(db: None) -> None:
    key = "k" * 64
    start = timezone.now()
    verdicts = [ratelimit.take(key, now=start) for _ in range(LIMIT + 3)]
    assert [v.allowed for v in verdicts] == [True] * LIMIT + [False] * 3
    assert [v.notify for v in verdicts] == [False] * LIMIT + [True, False, False]
    assert verdicts[-1].retry_after == 60 // LIMIT
    # One interval later exactly one more fits (the refusals did not push it further away).
    later = start + dt.timedelta(seconds=60 / LIMIT)
    assert ratelimit.take(key, now=later).allowed
    assert not ratelimit.take(key, now=later).allowed
    # A quiet minute restores the whole allowance; a new refusal is noticed again.
    quiet = later + dt.timedelta(minutes=1)
    again = [ratelimit.take(key, now=quiet) for _ in range(LIMIT + 1)]
    assert [v.allowed for v in again] == [True] * LIMIT + [False]
    assert again[-1].notify


@limited
def test_rows_of_idle_callers_are_purged(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    start = timezone.now()
    ratelimit.take("idle", now=start)
    ratelimit.take("busy", now=start + dt.timedelta(minutes=5))
    monkeypatch.setattr(ratelimit, "PURGE_ONE_IN", 1)
    ratelimit.take("busy", now=start + dt.timedelta(minutes=5))
    assert set(ApiRateLimit.objects.values_list("key", flat=True)) == {"busy"}


@override_settings(API_RATE_LIMIT_PER_MINUTE=50)
def test_parallel_requests_of_one_caller_are_counted_exactly(db: None) -> None:
    """Six threads, 120 requests in the same instant, one key: exactly 50 allowed (a read then
    a write of the count would let lost updates through).

    Each thread has its own connection, committing as the middleware's statement does (outside
    the test's transaction); the key is new and its row is deleted at the end."""
    now = timezone.now()
    key = f"parallel-{uuid.uuid4().hex}"
    allowed: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def hammer() -> None:
        try:
            barrier.wait()
            for _ in range(20):
                verdict = ratelimit.take(key, now=now)
                with lock:
                    allowed.append(verdict.allowed)
        finally:
            connection.close()

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    def forget() -> None:
        try:
            ApiRateLimit.objects.filter(key=key).delete()
        finally:
            connection.close()

    cleanup = threading.Thread(target=forget)
    cleanup.start()
    cleanup.join()
    assert len(allowed) == 120
    assert allowed.count(True) == 50


def test_the_default_limit_and_the_429_are_documented(web: Any) -> None:
    document = json.loads(web.get("/api/v1/openapi.json").content)
    for operations in document["paths"].values():
        for operation in operations.values():
            assert "429" in operation["responses"]
    from django.conf import settings

    assert settings.API_RATE_LIMIT_PER_MINUTE == 120


@limited
def test_a_429_names_no_secret(matrix: TenantMatrix, api_as: Any) -> None:
    client = api_as(matrix.a.owner)
    secret = client.defaults["HTTP_AUTHORIZATION"].split("_", 2)[2]
    for _ in range(LIMIT):
        send(client, "GET", "/services")
    response = send(client, "GET", "/services")
    assert response.status_code == 429
    assert secret not in response.content.decode()
    event = SecurityEvent.objects.get(kind=SecurityEventKind.API_RATE_LIMITED)
    assert secret not in event.detail
    assert ApiRateLimit.objects.filter(key__contains=secret[:10]).count() == 0


def test_the_security_page_claim_holds(web: Any) -> None:
    """/security/ says the API is rate-limited: the middleware is in place, before the tenant's
    transaction (so the count does not hold a lock for the whole request)."""
    from django.conf import settings

    page = web.get("/security/").content.decode()
    assert "The API is rate-limited per token and per signed-in session" in page
    order = settings.MIDDLEWARE
    limiter = order.index("custodia.web.middleware.ApiRateLimitMiddleware")
    assert limiter < order.index("custodia.web.middleware.TenantMiddleware")
    assert limiter > order.index("custodia.web.middleware.SessionLifetimeMiddleware")
