"""Lists are paged by opaque cursor (tenancy/paging.py, api/pagination.py): every row once, in a
stable order, both ways; a count that stops at the cap; and a cursor that is only a position:
tampered, foreign or replayed in another business or role, it never widens what is seen."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from custodia.clients.actions import do_create_client
from custodia.tenancy import paging
from tests.acting import act
from tests.api.conftest import send
from tests.factories import TenantMatrix

API = "/api/v1"
LISTS = ["/clients", "/services", "/visits", "/staff"]


def _pages(client: Any, path: str, limit: int, **query: str) -> list[dict[str, Any]]:
    pages = [send(client, "GET", path, data={"limit": limit, **query}).json()]
    while pages[-1]["next_cursor"]:
        data = {"limit": limit, "cursor": pages[-1]["next_cursor"], **query}
        pages.append(send(client, "GET", path, data=data).json())
        assert len(pages) < 50, "the pages never end"
    return pages


def _names(page: dict[str, Any]) -> list[str]:
    return [item["name"] for item in page["items"]]


def test_every_client_once_in_order_forward_and_back(matrix: TenantMatrix, api_as: Any) -> None:
    owner = matrix.a.owner
    act(owner)
    # Equal names straddle page boundaries: the id decides between them.
    for name in ["Zoe", "Same Name", "Same Name", "Same Name", "same name", "Émile", "Al"]:
        do_create_client(actor=owner, name=name)
    client = api_as(owner)
    pages = _pages(client, "/clients", 2)
    ids = [item["id"] for page in pages for item in page["items"]]
    assert len(ids) == len(set(ids)) == 9
    assert all(page["count"] == 9 and not page["count_capped"] for page in pages)
    assert pages[0]["previous_cursor"] is None and pages[-1]["next_cursor"] is None
    # The same order as one long page.
    whole = send(client, "GET", "/clients", data={"limit": 100}).json()
    assert [item["id"] for item in whole["items"]] == ids

    # Back from the last page, page by page: the same pages.
    back = [pages[-1]]
    while back[-1]["previous_cursor"]:
        data = {"limit": 2, "cursor": back[-1]["previous_cursor"]}
        back.append(send(client, "GET", "/clients", data=data).json())
    assert [page["items"] for page in reversed(back)] == [page["items"] for page in pages]
    assert back[-1]["previous_cursor"] is None


def test_search_results_page_too(matrix: TenantMatrix, api_as: Any) -> None:
    owner = matrix.a.owner
    act(owner)
    for n in range(5):
        do_create_client(actor=owner, name=f"Alpha Extra {n}")
    pages = _pages(api_as(owner), "/clients", 2, q="alpha e")
    assert [name for page in pages for name in _names(page)] == [
        f"Alpha Extra {n}" for n in range(5)
    ]


def test_the_count_stops_at_the_cap(
    matrix: TenantMatrix, api_as: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paging, "COUNT_CAP", 3)
    owner = matrix.a.owner
    act(owner)
    for n in range(3):
        do_create_client(actor=owner, name=f"Extra {n}")
    page = send(api_as(owner), "GET", "/clients").json()
    assert len(page["items"]) == 5
    assert page["count"] == 3 and page["count_capped"] is True
    staff_page = send(api_as(matrix.a.staff), "GET", "/clients").json()
    assert staff_page["count"] == 1 and staff_page["count_capped"] is False


def test_a_cursor_shows_no_name(matrix: TenantMatrix, api_as: Any) -> None:
    """The client list is ordered by name: its cursor is encrypted, not just encoded, so that no
    name ends up in an address bar, a proxy's log or a browser's history."""
    page = send(api_as(matrix.a.owner), "GET", "/clients", data={"limit": 1}).json()
    cursor = page["next_cursor"]
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    assert b"alpha" not in raw.lower() and "alpha" not in cursor.lower()


def _tampered(cursor: str) -> list[str]:
    flipped = cursor[:20] + ("A" if cursor[20] != "A" else "B") + cursor[21:]
    forged = base64.urlsafe_b64encode(json.dumps(["next", ["a", "b"]]).encode()).decode()
    return [
        flipped,
        cursor[:-3],  # truncated
        cursor + "AAAA",  # extended
        "x",
        "****",  # not base64
        "é",
        forged,  # what a plainly encoded cursor would look like
        "A" * 1000,
    ]


@pytest.mark.parametrize("path", LISTS)
def test_a_tampered_cursor_is_a_400_with_a_message(
    matrix: TenantMatrix, api_as: Any, path: str
) -> None:
    owner = matrix.a.owner
    client = api_as(owner)
    cursor = send(client, "GET", "/clients", data={"limit": 1}).json()["next_cursor"]
    for bad in _tampered(cursor):
        response = send(client, "GET", path, data={"cursor": bad})
        assert response.status_code == 400, (bad, response.content)
        assert response.json()["detail"].startswith("Invalid cursor")
    too_long = send(client, "GET", path, data={"cursor": "A" * 2000})
    assert too_long.status_code == 422 and "cursor" in too_long.json()["errors"]


@pytest.mark.parametrize("path", ["/services", "/visits", "/staff"])
def test_a_cursor_of_another_list_is_refused(matrix: TenantMatrix, api_as: Any, path: str) -> None:
    client = api_as(matrix.a.owner)
    cursor = send(client, "GET", "/clients", data={"limit": 1}).json()["next_cursor"]
    response = send(client, "GET", path, data={"cursor": cursor})
    assert response.status_code == 400


def test_a_cursor_only_positions(matrix: TenantMatrix, api_as: Any) -> None:
    """Another business's cursor, or a manager's handed to staff, is a valid position in the
    reader's own list: what it shows is still only what the reader may see."""
    outsider = api_as(matrix.outsider)
    foreign = send(outsider, "GET", "/clients", data={"limit": 1}).json()
    assert [item["name"] for item in foreign["items"]] == ["Bravo Client"]
    # "Bravo Client" sorts after both of A's clients: A's owner sees nothing after it.
    replayed = send(
        api_as(matrix.a.owner), "GET", "/clients", data={"cursor": foreign["next_cursor"]}
    )
    assert replayed.status_code == 200 and replayed.json()["items"] == []

    before_all = send(outsider, "GET", "/clients", data={"cursor": foreign["next_cursor"]}).json()
    back = send(
        api_as(matrix.a.owner), "GET", "/clients", data={"cursor": before_all["previous_cursor"]}
    )
    assert {item["name"] for item in back.json()["items"]} == {"Alpha Client", "Alpha Other"}

    manager = send(api_as(matrix.a.manager), "GET", "/clients", data={"limit": 1}).json()
    assert _names(manager) == ["Alpha Client"]
    # The manager's next page holds a client the staff member is not assigned: not shown.
    after = send(api_as(matrix.a.staff), "GET", "/clients", data={"cursor": manager["next_cursor"]})
    assert after.status_code == 200 and after.json()["items"] == []


def test_the_openapi_document_describes_cursor_paging(web: Any) -> None:
    document = json.loads(web.get(f"{API}/openapi.json").content)
    for path in LISTS:
        operation = document["paths"][f"{API}{path}"]["get"]
        params = {param["name"] for param in operation["parameters"]}
        assert {"cursor", "limit"} <= params and "offset" not in params
        assert "400" in operation["responses"]
        schema_ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        page = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
        assert set(page["required"]) >= {
            "items",
            "count",
            "count_capped",
            "next_cursor",
            "previous_cursor",
        }
