"""The audit API: the owner's events, a client's own record's, and the SIEM feed (JSON lines)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from custodia.audit import access
from custodia.audit.access import EventFilters
from custodia.core.actor import Actor
from custodia.core.audit import AuditAction, record
from tests.acting import act
from tests.api import conftest as api_fixtures
from tests.api.conftest import actor_for, assert_error, send
from tests.factories import TenantMatrix

# tests/api's `caller` fixture: a bearer token for roles that have one, else a session.
caller = api_fixtures.caller


def read_by(actor: Actor, target: Any) -> None:
    act(actor)
    record(AuditAction.CLIENT_READ, actor=actor, target=target)


def exports_of(owner: Actor) -> list[Any]:
    act(owner)
    return list(access.list_events(owner, EventFilters(action=AuditAction.AUDIT_EXPORT)))


def lines(response: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.content.decode().splitlines()]


@pytest.fixture
def trail(matrix: TenantMatrix) -> TenantMatrix:
    """Staff of each business read its client; A's manager lists A's two clients."""
    for business in (matrix.a, matrix.b):
        read_by(business.staff, business.client)
    act(matrix.a.manager)
    record(
        AuditAction.CLIENT_LIST,
        actor=matrix.a.manager,
        subject_ids=[matrix.a.client.pk, matrix.a.other_client.pk],
    )
    return matrix


@pytest.fixture
def no_settling(monkeypatch: pytest.MonkeyPatch) -> None:
    """The feed serves events as soon as they are written (a test's events are milliseconds old)."""
    monkeypatch.setattr(access, "FEED_SETTLE", dt.timedelta(0))


# --- GET /audit/events ------------------------------------------------------------------------


def test_owner_lists_and_filters(caller: Any, trail: TenantMatrix) -> None:
    a = trail.a
    api = caller(a.owner)
    body = send(api, "GET", "/audit/events").json()
    ids = [item["id"] for item in body["items"]]
    assert ids == sorted(ids, reverse=True) and body["next_before"] is None
    assert {item["action"] for item in body["items"]} >= {"client.read", "client.list"}

    by_staff = send(api, "GET", f"/audit/events?person={a.staff.user.pk}").json()["items"]
    assert [item["action"] for item in by_staff] == ["client.read"]
    about = send(api, "GET", f"/audit/events?client={a.other_client.pk}").json()["items"]
    assert "client.list" in {item["action"] for item in about}
    assert "client.read" not in {item["action"] for item in about}
    listed = send(api, "GET", "/audit/events?action=client.list").json()["items"]
    assert [item["actor_user_id"] for item in listed] == [str(a.manager.user.pk)]
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    since = send(api, "GET", "/audit/events", data={"since": later}).json()
    assert since["items"] == []


def test_owner_pages_by_id(caller: Any, trail: TenantMatrix) -> None:
    api = caller(trail.a.owner)
    first = send(api, "GET", "/audit/events?limit=2").json()
    assert len(first["items"]) == 2 and first["next_before"] == first["items"][-1]["id"]
    second = send(api, "GET", f"/audit/events?limit=2&before={first['next_before']}").json()
    assert second["items"][0]["id"] < first["next_before"]


def test_reading_events_is_an_event(caller: Any, trail: TenantMatrix) -> None:
    a = trail.a
    send(caller(a.owner), "GET", "/audit/events?action=client.read")
    act(a.owner)
    (event,) = access.list_events(a.owner, EventFilters(action=AuditAction.AUDIT_READ))
    assert event.detail == {"count": 1, "filters": ["action"]}


def test_another_business_never_appears(caller: Any, trail: TenantMatrix) -> None:
    a, b = trail.a, trail.b
    items = send(caller(b.owner), "GET", "/audit/events").json()["items"]
    assert items
    assert str(a.client.pk) not in json.dumps(items)
    assert {item["actor_user_id"] for item in items}.isdisjoint(
        {str(a.staff.user.pk), str(a.manager.user.pk), str(a.owner.user.pk)}
    )
    # Naming A's client or A's staff from B finds nothing.
    for query in (f"client={a.client.pk}", f"person={a.staff.user.pk}"):
        assert send(caller(b.owner), "GET", f"/audit/events?{query}").json()["items"] == []


@pytest.mark.parametrize("role", ["manager", "staff", "other_staff", "client"])
def test_lesser_roles_are_refused(caller: Any, trail: TenantMatrix, role: str) -> None:
    response = send(caller(actor_for(trail, role)), "GET", "/audit/events")
    assert_error(response, 403)
    assert str(trail.a.client.pk) not in response.content.decode()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("client=nope", "client"),
        ("person=123", "person"),
        ("action=client.steal", "action"),
        ("since=yesterday", "since"),
        ("since=2026-05-01T00:00:00", "since"),  # no time zone
        ("since=2026-05-02T00:00:00Z&until=2026-05-01T00:00:00Z", "until"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("before=0", "before"),
        ("before=x", "before"),
    ],
)
def test_bad_filters_are_a_422(caller: Any, trail: TenantMatrix, query: str, field: str) -> None:
    body = assert_error(send(caller(trail.a.owner), "GET", f"/audit/events?{query}"), 422)
    assert field in body["errors"]


# --- GET /audit/events/mine -------------------------------------------------------------------


def test_a_client_lists_events_about_their_record(caller: Any, trail: TenantMatrix) -> None:
    a, b = trail.a, trail.b
    read_by(a.staff, a.other_client)
    response = send(caller(a.client_login), "GET", "/audit/events/mine")
    items = response.json()["items"]
    actions = [(item["action"], item["person"]) for item in items]
    assert ("client.list", a.manager.user.full_name) in actions
    assert ("client.read", a.staff.user.full_name) in actions
    # Who, what and when; never the staff's address or browser, nor the other records a list
    # showed them.
    assert set(items[0]) == {
        "id",
        "occurred_at",
        "person",
        "actor_role",
        "action",
        "action_label",
        "outcome",
        "by_you",
    }
    text = response.content.decode()
    for hidden in (str(a.other_client.pk), str(b.client.pk), "127.0.0.1", a.staff.user.email):
        assert hidden not in text


@pytest.mark.parametrize("role", ["outsider", "owner", "manager", "staff"])
def test_only_a_client_has_own_events(caller: Any, trail: TenantMatrix, role: str) -> None:
    assert_error(send(caller(actor_for(trail, role)), "GET", "/audit/events/mine"), 403)


# --- GET /audit/feed --------------------------------------------------------------------------


def test_feed_is_json_lines_in_id_order_and_resumable(
    caller: Any, trail: TenantMatrix, no_settling: None
) -> None:
    a = trail.a
    api = caller(a.owner)
    response = send(api, "GET", "/audit/feed?after=0&limit=5000")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    events = lines(response)
    ids = [event["id"] for event in events]
    assert ids == sorted(ids) and len(ids) == int(response["X-Event-Count"])
    assert response["X-Next-After"] == str(ids[-1])
    assert {event["action"] for event in events} >= {"client.read", "client.list"}
    assert str(trail.b.client.pk) not in response.content.decode()

    # Resuming from the header: only what came after, i.e. the first fetch's own event.
    resumed = send(api, "GET", f"/audit/feed?after={response['X-Next-After']}")
    (export,) = lines(resumed)
    assert export["action"] == "audit.export" and export["id"] > ids[-1]
    assert export["detail"] == {"format": "jsonl", "count": len(ids), "after": 0}

    # A limit cuts the batch; the header resumes exactly after it.
    two = send(api, "GET", "/audit/feed?after=0&limit=2")
    assert [event["id"] for event in lines(two)] == ids[:2]
    assert two["X-Next-After"] == str(ids[1])


def test_feed_holds_back_events_until_they_settle(caller: Any, trail: TenantMatrix) -> None:
    a = trail.a
    response = send(caller(a.owner), "GET", "/audit/feed?after=0")
    assert response.status_code == 200 and response.content == b""
    assert response["X-Next-After"] == "0"
    (event,) = exports_of(a.owner)
    assert event.detail == {"format": "jsonl", "count": 0, "after": 0}


@pytest.mark.parametrize("role", ["manager", "staff", "other_staff", "client"])
def test_feed_is_for_owners(caller: Any, trail: TenantMatrix, role: str, no_settling: None) -> None:
    response = send(caller(actor_for(trail, role)), "GET", "/audit/feed")
    assert_error(response, 403)
    assert exports_of(trail.a.owner) == []


def test_outsider_feed_holds_only_their_business(
    caller: Any, trail: TenantMatrix, no_settling: None
) -> None:
    a, b = trail.a, trail.b
    response = send(caller(b.owner), "GET", "/audit/feed")
    content = response.content.decode()
    assert str(b.client.pk) in content
    for marker in (str(a.client.pk), str(a.owner.tenant_id), str(a.staff.user.pk)):
        assert marker not in content


@pytest.mark.parametrize(
    ("query", "field"),
    [("after=-1", "after"), ("after=x", "after"), ("limit=0", "limit"), ("limit=5001", "limit")],
)
def test_feed_bad_parameters_are_a_422(
    caller: Any, trail: TenantMatrix, query: str, field: str
) -> None:
    body = assert_error(send(caller(trail.a.owner), "GET", f"/audit/feed?{query}"), 422)
    assert field in body["errors"]
    assert exports_of(trail.a.owner) == []


def test_the_feed_is_documented(caller: Any, trail: TenantMatrix) -> None:
    schema = send(caller(trail.a.owner), "GET", "/openapi.json").json()
    feed = schema["paths"]["/api/v1/audit/feed"]["get"]
    assert "application/x-ndjson" in feed["responses"]["200"]["content"]
