"""Regressions for what `make scan` (schemathesis) found in the API: 500s on extreme but
schema-valid input, and an OpenAPI document that did not say what the API answers."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from custodia.api.inputs import NO_NUL, NON_BLANK_TEXT
from tests.factories import TenantMatrix

API = "/api/v1"


@pytest.fixture
def openapi(web: Any) -> dict[str, Any]:
    response = web.get(f"{API}/openapi.json")
    assert response.status_code == 200
    return json.loads(response.content)


@pytest.mark.parametrize("path", ["/clients", "/services", "/visits", "/staff"])
@pytest.mark.parametrize("offset", [10**24, 1])
def test_huge_offset_is_a_422_not_a_500(
    matrix: TenantMatrix, api_as: Any, path: str, offset: int
) -> None:
    """`?offset=1036601711879011151380480` overflowed PostgreSQL's bigint: a 500. Lists are now
    paged by cursor (tests/api/test_cursor_paging.py): any offset is refused, and says so."""
    response = api_as(matrix.a.owner).get(f"{API}{path}?offset={offset}")
    assert response.status_code == 422
    assert "cursor" in response.json()["errors"]["offset"][0]


@pytest.mark.parametrize(
    "moment",
    ["0112-01-18T21:10:48+23:36", "2030-05-01T09:00:00-23:59", "0697-11-29T03:43:46+22:12"],
)
def test_any_rfc3339_offset_is_accepted_in_a_filter(
    matrix: TenantMatrix, api_as: Any, moment: str
) -> None:
    """Offsets past PostgreSQL's +-15:59 were a 500 ("time zone displacement out of range")."""
    response = api_as(matrix.a.owner).get(f"{API}/visits", {"end": moment})
    assert response.status_code == 200


def test_a_visit_with_a_far_offset_is_stored_as_the_same_instant(
    matrix: TenantMatrix, api_as: Any
) -> None:
    body = {"client_id": str(matrix.a.client.id), "starts_at": "2031-03-01T23:00:00+20:00"}
    body["ends_at"] = "2031-03-02T00:00:00+20:00"
    response = api_as(matrix.a.owner).post(
        f"{API}/visits", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 201, response.content
    starts_at = dt.datetime.fromisoformat(response.json()["starts_at"])
    assert starts_at == dt.datetime(2031, 3, 1, 3, 0, tzinfo=dt.UTC)


def test_out_of_range_datetime_is_a_422(matrix: TenantMatrix, api_as: Any) -> None:
    response = api_as(matrix.a.owner).get(f"{API}/visits", {"end": "0001-01-01T00:00:00+14:00"})
    assert response.status_code == 422
    assert "end" in response.json()["errors"]


def test_every_operation_documents_its_errors(openapi: dict[str, Any]) -> None:
    """schemathesis: 401/403/404/422 were answered but undocumented (ST103)."""
    assert openapi["components"]["schemas"]["Error"]["required"] == ["detail"]
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            documented = set(operation["responses"])
            assert {"401", "403", "404", "422"} <= documented, f"{method} {path}"


def _schema(openapi: dict[str, Any], name: str) -> dict[str, Any]:
    return openapi["components"]["schemas"][name]["properties"]


def test_patch_schemas_offer_null_only_where_it_means_something(openapi: dict[str, Any]) -> None:
    """`{"is_active": null}` was schema-valid but refused with a 422 (ST202)."""
    service = _schema(openapi, "ServicePatch")
    assert service["is_active"] == {"title": "Is Active", "type": "boolean"}
    assert "anyOf" not in service["name"] and service["name"]["type"] == "string"
    client = _schema(openapi, "ClientPatch")
    assert all("anyOf" not in prop for prop in client.values())
    visit = _schema(openapi, "VisitPatch")
    assert {"type": "null"} in visit["staff_id"]["anyOf"]  # null: no staff member
    assert {"type": "null"} in visit["service_id"]["anyOf"]
    assert "anyOf" not in visit["starts_at"]


def test_service_bounds_are_in_the_schema(openapi: dict[str, Any]) -> None:
    """A duration of 0 was schema-valid but refused by the action (ST202)."""
    for name in ("ServiceIn", "ServicePatch"):
        service = _schema(openapi, name)
        assert (service["duration_minutes"]["minimum"], service["duration_minutes"]["maximum"]) == (
            5,
            1440,
        )
        assert (service["price_cents"]["minimum"], service["price_cents"]["maximum"]) == (
            0,
            10_000_000,
        )
        assert service["name"]["pattern"] == NON_BLANK_TEXT
    assert _schema(openapi, "ClientIn")["name"]["pattern"] == NON_BLANK_TEXT
    assert _schema(openapi, "ClientIn")["notes"]["pattern"] == NO_NUL
    assert _schema(openapi, "ClientPatch")["notes"]["pattern"] == NO_NUL


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Walk", "duration_minutes": 0, "price_cents": 0}, "duration_minutes"),
        ({"name": "Walk", "duration_minutes": 30, "price_cents": -1}, "price_cents"),
        ({"name": "   ", "duration_minutes": 30, "price_cents": 0}, "name"),
    ],
)
def test_out_of_bounds_service_is_still_a_422(
    matrix: TenantMatrix, api_as: Any, body: dict[str, Any], field: str
) -> None:
    response = api_as(matrix.a.owner).post(
        f"{API}/services", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 422
    assert field in response.json()["errors"]


def test_nul_in_the_client_search_is_a_422_not_a_500(matrix: TenantMatrix, api_as: Any) -> None:
    """schemathesis (stateful): `GET /clients?q=%00` reached PostgreSQL, which refuses NUL."""
    response = api_as(matrix.a.owner).get(f"{API}/clients", {"q": "Ann\x00"})
    assert response.status_code == 422
    assert "q" in response.json()["errors"]
    assert api_as(matrix.a.owner).get(f"{API}/clients", {"q": "Ann"}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/clients", {"name": "Ann\x00"}),
        ("POST", "/clients", {"name": "Ann", "notes": "a\x00b"}),
        ("POST", "/services", {"name": "W\x00", "duration_minutes": 30, "price_cents": 0}),
        ("POST", "/staff/invitations", {"email": "a\x00@example.com", "role": "staff"}),
    ],
)
def test_nul_in_a_body_is_never_a_500(
    matrix: TenantMatrix, api_as: Any, method: str, path: str, body: dict[str, Any]
) -> None:
    response = api_as(matrix.a.owner).generic(
        method, f"{API}{path}", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 422


def test_the_service_form_refuses_a_php_filter_chain_and_only_echoes_what_was_sent(
    matrix: Any,
) -> None:
    """wapiti (full scan) reported "PHP local inclusion" on the service editor: its marker '¸' was
    in the random name it sent, and the invalid form shows the submitted name again. Nothing is
    read from a file, nothing is saved."""
    from custodia.scheduling.models import Service
    from tests.acting import act
    from tests.web.support import logged_in

    service = matrix.a.service
    browser = logged_in(matrix.a.owner)
    chain = "php://filter/convert.base64-decode/resource=php://temp"
    answer = browser.post(
        f"/app/services/{service.pk}/edit/",
        {"name": "Walk \u00b8 long", "duration_minutes": chain, "price": chain},
    )
    assert answer.status_code == 400
    page = answer.content.decode()
    assert "Walk \u00b8 long" in page  # the echo wapiti saw
    assert "root:x:0:0" not in page
    act(matrix.a.owner)
    assert Service.objects.get(pk=service.pk).name == service.name
