"""A request's authentication and context cost one database round trip (tenancy/0006).

Counted with Django's query log plus the context calls, which go through a cursor of their own
(the key never enters Django's log): a bearer-token or session request to the API sets its whole
context in one call, and reads neither the token nor the membership again.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from custodia.core import dbcontext as context
from tests.factories import TenantMatrix

AUTH_TABLES = ("accounts_apitoken", "tenancy_membership", "tenancy_business", "accounts_user")


def round_trips(
    monkeypatch: pytest.MonkeyPatch, request: Callable[[], Any]
) -> tuple[Any, list[str], list[str]]:
    """The response, the statements in Django's log, and the context calls."""
    calls: list[str] = []
    real = context._fetch_with_key

    def counting(using: str, sql: str, params: Any) -> Any:
        calls.append(sql.split("(")[0].split()[-1])
        return real(using, sql, params)

    monkeypatch.setattr(context, "_fetch_with_key", counting)
    with CaptureQueriesContext(connection) as log:
        # As on a server's thread: no actor of the test's around the request (leaving its
        # acting scope, the request would put that one back, a call a server never makes).
        response = contextvars.Context().run(request)
    monkeypatch.setattr(context, "_fetch_with_key", real)
    return response, [query["sql"] for query in log.captured_queries], calls


def test_a_token_request_authenticates_in_one_call(
    matrix: TenantMatrix, api_as: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = api_as(matrix.a.owner)
    path = f"/api/v1/clients/{matrix.a.client.pk}"
    assert api.get(path).status_code == 200  # its first use writes the last use
    response, queries, calls = round_trips(monkeypatch, lambda: api.get(path))
    assert response.status_code == 200
    assert calls == ["custodia_activate_token"]
    assert not [q for q in queries if any(f'"{table}"' in q for table in AUTH_TABLES)], queries


def test_a_refused_token_sets_an_empty_context_in_the_same_call(
    matrix: TenantMatrix, api_as: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = api_as(matrix.a.owner)
    api.defaults["HTTP_AUTHORIZATION"] = api.defaults["HTTP_AUTHORIZATION"][:-2] + "AA"
    response, _queries, calls = round_trips(monkeypatch, lambda: api.get("/api/v1/clients"))
    assert response.status_code == 401
    assert calls == ["custodia_activate_token"]


def test_a_session_request_sets_its_context_in_one_call(
    matrix: TenantMatrix, web_as: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    web = web_as(matrix.a.owner)
    path = f"/api/v1/clients/{matrix.a.client.pk}"
    assert web.get(path).status_code == 200
    response, queries, calls = round_trips(monkeypatch, lambda: web.get(path))
    assert response.status_code == 200
    assert calls == ["custodia_activate_member"]
    assert not [q for q in queries if '"tenancy_membership"' in q], queries
