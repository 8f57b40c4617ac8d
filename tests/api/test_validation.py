"""Bad input gets a 422 that names the field, other tenants' ids in a body read as unknown, and
nothing is written, nor half-written."""

from __future__ import annotations

from typing import Any

import pytest

from custodia.core.permissions import Role
from tests.api.conftest import assert_error, fill, names, send, snapshot
from tests.factories import TenantMatrix, UserFactory, add_member

INVALID = [
    # (method, path, body, field with an error)
    ("POST", "/clients", "{bad json", "__all__"),
    ("POST", "/clients", b"\xff\xfe", "__all__"),
    ("POST", "/clients", [{"name": "A list"}], "__all__"),
    ("POST", "/clients", {}, "name"),
    ("POST", "/clients", {"name": 5}, "name"),
    ("POST", "/clients", {"name": ""}, "name"),
    ("POST", "/clients", {"name": "x" * 121}, "name"),
    ("POST", "/clients", {"name": "X", "door_code": 4711}, "door_code"),
    ("POST", "/clients", {"name": "X", "tenant_id": "{b_client}"}, "tenant_id"),
    ("POST", "/clients", {"name": "X", "email": "not-an-email"}, "email"),
    ("PATCH", "/clients/{client}", {"name": None}, "name"),
    ("PATCH", "/clients/{client}", {"nickname": "Mo"}, "nickname"),
    ("PATCH", "/services/{service}", {"price_cents": None}, "price_cents"),
    ("PATCH", "/visits/{visit}", {"starts_at": None}, "starts_at"),
    ("PATCH", "/staff/{staff}", {"role": None}, "role"),
    ("PATCH", "/clients/{client}", {"phone": "12"}, "phone"),
    ("POST", "/clients/{client}/staff", {"membership_id": "nope"}, "membership_id"),
    ("POST", "/clients/{client}/staff", {}, "membership_id"),
    ("POST", "/staff/invitations", {"email": "nobody", "role": "staff"}, "email"),
    ("POST", "/staff/invitations", {"email": "c@example.test", "role": "client"}, "role"),
    ("POST", "/staff/invitations", {"email": "c@example.test", "role": "staff", "x": 1}, "x"),
    ("PATCH", "/staff/{staff}", {"role": "overlord"}, "role"),
    ("PATCH", "/staff/{staff}", {"is_active": "false"}, "is_active"),
    (
        "POST",
        "/services",
        {"name": "Bath", "duration_minutes": "30", "price_cents": 100},
        "duration_minutes",
    ),
    (
        "POST",
        "/services",
        {"name": "Bath", "duration_minutes": 30.0, "price_cents": 100},
        "duration_minutes",
    ),
    (
        "POST",
        "/services",
        {"name": "Bath", "duration_minutes": 2, "price_cents": 100},
        "duration_minutes",
    ),
    (
        "POST",
        "/services",
        {"name": "Bath", "duration_minutes": 30, "price_cents": -1},
        "price_cents",
    ),
    ("PATCH", "/services/{service}", {"is_active": 0}, "is_active"),
    ("PATCH", "/services/{service}", {"price_cents": True}, "price_cents"),
    (
        "POST",
        "/visits",
        {"client_id": "{client}", "starts_at": 1900000000, "ends_at": "{soon}"},
        "starts_at",
    ),
    (
        "POST",
        "/visits",
        {"client_id": "{client}", "starts_at": "2030-01-01T10:00:00", "service_id": "{service}"},
        "starts_at",
    ),
    (
        "POST",
        "/visits",
        {"client_id": "{client}", "starts_at": "2030-01-01", "service_id": "{service}"},
        "starts_at",
    ),
    ("POST", "/visits", {"client_id": "nope", "starts_at": "{soon}"}, "client_id"),
    ("POST", "/visits", {"starts_at": "{soon}", "service_id": "{service}"}, "client_id"),
    ("POST", "/visits", {"client_id": "{client}", "starts_at": "{soon}"}, "ends_at"),
    (
        "POST",
        "/visits",
        {
            "client_id": "{client}",
            "starts_at": "2030-01-01T10:00:00Z",
            "ends_at": "2030-01-01T09:00:00Z",
        },
        "ends_at",
    ),
    (
        "POST",
        "/visits",
        {
            "client_id": "{client}",
            "staff_id": "{other_staff}",
            "starts_at": "{soon}",
            "service_id": "{service}",
        },
        "staff",
    ),
    ("PATCH", "/visits/{visit}", {"status": "bogus"}, "status"),
    ("PATCH", "/visits/{visit}", {"report": ["a"]}, "report"),
    ("PATCH", "/visits/{visit}", {"ends_at": "2000-01-01T00:00:00Z"}, "ends_at"),
    ("GET", "/visits?start=yesterday", None, "start"),
    ("GET", "/visits?client_id=zzz", None, "client_id"),
    ("GET", "/visits?limit=1000", None, "limit"),
    ("GET", "/clients?offset=-1", None, "offset"),
    ("GET", "/clients?q=" + "x" * 121, None, "q"),
    # Other tenants' objects named in a body are simply unknown here.
    (
        "POST",
        "/visits",
        {"client_id": "{b_client}", "starts_at": "{soon}", "service_id": "{service}"},
        "client_id",
    ),
    (
        "POST",
        "/visits",
        {
            "client_id": "{client}",
            "staff_id": "{b_staff}",
            "starts_at": "{soon}",
            "service_id": "{service}",
        },
        "staff_id",
    ),
    (
        "POST",
        "/visits",
        {"client_id": "{client}", "starts_at": "{soon}", "service_id": "{b_service}"},
        "service_id",
    ),
    ("POST", "/clients/{client}/staff", {"membership_id": "{b_staff}"}, "membership_id"),
    ("PATCH", "/visits/{visit}", {"staff_id": "{b_staff}"}, "staff_id"),
    ("PATCH", "/visits/{visit}", {"service_id": "{b_service}"}, "service_id"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), INVALID)
def test_invalid_input_is_422_with_field_errors(
    matrix: TenantMatrix, api_as: Any, method: str, path: str, body: Any, field: str
) -> None:
    client = api_as(matrix.a.owner)
    values = names(matrix)
    before = snapshot(matrix)
    response = send(client, method, fill(path, values), fill(body, values))
    errors = assert_error(response, 422)["errors"]
    assert field in errors, errors
    assert all(isinstance(m, str) and m for messages in errors.values() for m in messages)
    assert snapshot(matrix) == before


def test_messages_are_plain_words(matrix: TenantMatrix, api_as: Any) -> None:
    client = api_as(matrix.a.owner)
    body = send(client, "POST", "/clients", {"name": "X", "colour": "red"}).json()
    assert body == {"detail": "Invalid input.", "errors": {"colour": ["Unknown field."]}}
    body = send(client, "POST", "/clients", "{").json()
    assert body["errors"]["__all__"][0].startswith("Malformed JSON")
    body = send(client, "POST", "/services", {"name": "Bath"}).json()
    assert body["errors"]["duration_minutes"] == ["This field is required."]


def test_a_client_request_must_not_name_client_staff_or_end(
    matrix: TenantMatrix, web_as: Any
) -> None:
    values = names(matrix)
    before = snapshot(matrix)
    body = {
        "starts_at": values["soon"],
        "client_id": values["other_client"],
        "staff_id": values["staff"],
    }
    response = send(web_as(matrix.a.client_login), "POST", "/visits", body)
    assert set(assert_error(response, 422)["errors"]) == {"client_id", "staff_id"}
    assert snapshot(matrix) == before


@pytest.mark.parametrize(
    "path",
    [
        "/clients/not-a-uuid",
        "/visits/123",
        "/services/%20",
        "/staff/' OR 1=1 --",
        "/clients/{b_client}/staff",
        "/no-such-endpoint",
        "/clients/{client}/nothing/here",
    ],
)
def test_unknown_ids_and_paths_are_json_404(matrix: TenantMatrix, api_as: Any, path: str) -> None:
    response = send(api_as(matrix.a.owner), "GET", fill(path, names(matrix)))
    assert assert_error(response, 404) == {"detail": "Not found."}


def test_a_failed_step_undoes_the_earlier_ones(matrix: TenantMatrix, web_as: Any) -> None:
    """Role change succeeds, then deactivating oneself is refused: the role change is undone."""
    add_member(matrix.a.owner, UserFactory(), Role.OWNER)  # so the first owner may step down
    client = web_as(matrix.a.owner)  # a role change needs a recently confirmed session
    before = snapshot(matrix)
    response = send(
        client,
        "PATCH",
        f"/staff/{matrix.a.owner.membership.pk}",
        {"role": "manager", "is_active": False},
    )
    assert "__all__" in assert_error(response, 422)["errors"]
    assert snapshot(matrix) == before


def test_reactivation_is_refused(matrix: TenantMatrix, web_as: Any) -> None:
    client = web_as(matrix.a.owner)
    path = f"/staff/{matrix.a.other_staff.membership.pk}"
    assert send(client, "PATCH", path, {"is_active": False}).json()["is_active"] is False
    errors = assert_error(send(client, "PATCH", path, {"is_active": True}), 422)["errors"]
    assert "is_active" in errors


def test_an_unexpected_error_is_a_json_500_that_writes_nothing(
    matrix: TenantMatrix, api_as: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from custodia.clients import actions

    create = actions.do_create_client

    def create_then_fail(**kwargs: Any) -> Any:
        create(**kwargs)
        raise RuntimeError("door code 4711 must not reach the answer")

    monkeypatch.setattr(actions, "do_create_client", create_then_fail)
    client = api_as(matrix.a.owner)
    before = snapshot(matrix)
    response = send(client, "POST", "/clients", {"name": "Half written"})
    body = assert_error(response, 500)
    assert "4711" not in response.content.decode() and "RuntimeError" not in body["detail"]
    assert snapshot(matrix) == before
