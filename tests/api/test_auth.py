"""Who gets in: bearer tokens (and their scopes), the session with CSRF, and everyone else: 401."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from custodia.accounts.actions import do_create_api_token, do_revoke_api_token
from custodia.accounts.models import ApiToken, User
from custodia.tenancy.actions import do_deactivate_member
from tests.acting import act
from tests.api.conftest import assert_error, fill, names, send, snapshot
from tests.api.test_matrix import CASES
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix


def bearer(value: str) -> HttpsClient:
    return HttpsClient(HTTP_AUTHORIZATION=value)


def token_of(matrix: TenantMatrix, role: str = "owner", **options: Any) -> tuple[ApiToken, str]:
    actor = getattr(matrix.a, role)
    act(actor)
    return do_create_api_token(actor=actor, name="test", **options)


def no_header(matrix: TenantMatrix) -> HttpsClient:
    return HttpsClient()


def not_bearer(matrix: TenantMatrix) -> HttpsClient:
    return bearer("Basic b3duZXI6cGFzc3dvcmQ=")


def garbage(matrix: TenantMatrix) -> HttpsClient:
    return bearer("Bearer not-a-token")


def unknown_prefix(matrix: TenantMatrix) -> HttpsClient:
    return bearer("Bearer cst_000000000000_" + "x" * 43)


def wrong_secret(matrix: TenantMatrix) -> HttpsClient:
    token, plain = token_of(matrix)
    return bearer(f"Bearer cst_{token.prefix}_{'A' * 43}")


def revoked(matrix: TenantMatrix) -> HttpsClient:
    token, plain = token_of(matrix)
    do_revoke_api_token(token, actor=matrix.a.owner)
    return bearer(f"Bearer {plain}")


def expired(matrix: TenantMatrix) -> HttpsClient:
    token, plain = token_of(matrix)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    return bearer(f"Bearer {plain}")


def deactivated_member(matrix: TenantMatrix) -> HttpsClient:
    token, plain = token_of(matrix, "manager")
    act(matrix.a.owner)
    do_deactivate_member(matrix.a.manager.membership, actor=matrix.a.owner)
    return bearer(f"Bearer {plain}")


def deactivated_user(matrix: TenantMatrix) -> HttpsClient:
    token, plain = token_of(matrix)
    User.objects.filter(pk=matrix.a.owner.user.pk).update(is_active=False)
    return bearer(f"Bearer {plain}")


UNAUTHENTICATED = [
    no_header,
    not_bearer,
    garbage,
    unknown_prefix,
    wrong_secret,
    revoked,
    expired,
    deactivated_member,
    deactivated_user,
]


@pytest.mark.parametrize("make_client", UNAUTHENTICATED, ids=lambda f: f.__name__)
def test_every_endpoint_refuses_without_valid_credentials(
    matrix: TenantMatrix, make_client: Callable[[TenantMatrix], HttpsClient]
) -> None:
    client = make_client(matrix)
    values = names(matrix)
    before = snapshot(matrix)
    for case in CASES:
        response = send(client, case.method, fill(case.path, values), fill(case.body, values))
        body = assert_error(response, 401)
        assert "Authentication required" in body["detail"], case.name
        assert response["WWW-Authenticate"] == "Bearer"
    assert snapshot(matrix) == before


def test_a_token_works_until_revoked(matrix: TenantMatrix) -> None:
    token, plain = token_of(matrix)
    client = bearer(f"Bearer {plain}")
    assert send(client, "GET", "/clients").status_code == 200
    act(matrix.a.owner)
    do_revoke_api_token(token, actor=matrix.a.owner)
    assert_error(send(client, "GET", "/clients"), 401)


def test_a_token_never_reaches_another_business(matrix: TenantMatrix) -> None:
    """B's owner's token, presented for A's objects, sees nothing of A."""
    act(matrix.b.owner)
    _b_token, b_plain = do_create_api_token(actor=matrix.b.owner, name="b")
    client = bearer(f"Bearer {b_plain}")
    for path in (
        f"/clients/{matrix.a.client.pk}",
        f"/visits/{matrix.a.visit.pk}",
        f"/services/{matrix.a.service.pk}",
        f"/staff/{matrix.a.staff.membership.pk}",
    ):
        assert send(client, "GET", path).json() == {"detail": "Not found."}


# --- Scopes -----------------------------------------------------------------------------------

NARROW = [
    # (scopes, method, path, body, expected)
    (["clients:record:read"], "GET", "/clients", None, 200),
    (["clients:record:read"], "GET", "/clients/{client}", None, 200),
    (["clients:record:read"], "POST", "/clients", {"name": "X"}, 403),
    (["clients:record:read"], "PATCH", "/clients/{client}", {"notes": "x"}, 403),
    (["clients:record:read"], "DELETE", "/clients/{client}", None, 403),
    (
        ["clients:record:read"],
        "POST",
        "/clients/{client}/staff",
        {"membership_id": "{other_staff}"},
        403,
    ),
    (["clients:record:read"], "GET", "/visits", None, 403),
    (["clients:record:read"], "GET", "/services", None, 403),
    (["clients:record:read"], "GET", "/staff", None, 403),
    (
        ["clients:record:read"],
        "POST",
        "/staff/invitations",
        {"email": "n@example.test", "role": "staff"},
        403,
    ),
    # Writing is not reading: the record must be found before it is changed.
    (["clients:record:write"], "PATCH", "/clients/{client}", {"notes": "x"}, 403),
    (["clients:record:write"], "GET", "/clients", None, 403),
    (["scheduling:visit:read"], "GET", "/visits", None, 200),
    (
        ["scheduling:visit:read"],
        "POST",
        "/visits",
        {"client_id": "{client}", "starts_at": "{soon}", "service_id": "{service}"},
        403,
    ),
    (["scheduling:visit:read"], "PATCH", "/visits/{visit}", {"report": "x"}, 403),
    (["scheduling:visit:read"], "DELETE", "/visits/{visit}", None, 403),
    (["scheduling:service:read"], "PATCH", "/services/{service}", {"price_cents": 1}, 403),
    (["staff:member:read"], "PATCH", "/staff/{staff}", {"role": "manager"}, 403),
    (["staff:member:read"], "PATCH", "/staff/{staff}", {"is_active": False}, 403),
]


@pytest.mark.parametrize(("scopes", "method", "path", "body", "expected"), NARROW)
def test_a_narrowed_token_is_refused_beyond_its_scopes(
    matrix: TenantMatrix, scopes: list[str], method: str, path: str, body: Any, expected: int
) -> None:
    _token, plain = token_of(matrix, scopes=scopes)
    values = names(matrix)
    before = snapshot(matrix)
    response = send(bearer(f"Bearer {plain}"), method, fill(path, values), fill(body, values))
    assert response.status_code == expected, response.content
    if expected == 403:
        assert_error(response, 403)
    assert snapshot(matrix) == before


def test_a_token_without_the_access_scope_sees_no_door_codes(matrix: TenantMatrix) -> None:
    _token, plain = token_of(matrix, scopes=["clients:record:read"])
    response = send(bearer(f"Bearer {plain}"), "GET", f"/clients/{matrix.a.client.pk}")
    assert response.json()["home_access"] is None
    assert "4711" not in response.content.decode()


# --- Session and CSRF -------------------------------------------------------------------------


def session(actor: Any, *, csrf: bool = True) -> HttpsClient:
    return HttpsClient(enforce_csrf_checks=csrf).act_as(actor)


def csrf_token(client: HttpsClient) -> str:
    """The CSRF secret the docs page hands out (as the web app's pages do)."""
    client.get("/api/v1/docs", secure=True)
    return client.cookies["__Host-csrftoken"].value


UNSAFE = [
    ("POST", "/clients", {"name": "Via session"}),
    ("PATCH", "/clients/{client}", {"notes": "Via session"}),
    ("DELETE", "/visits/{visit}", None),
    ("POST", "/staff/invitations", {"email": "s@example.test", "role": "staff"}),
    ("PATCH", "/staff/{staff}", {"is_active": False}),
]


@pytest.mark.parametrize(("method", "path", "body"), UNSAFE)
def test_session_writes_without_csrf_token_are_refused(
    matrix: TenantMatrix, method: str, path: str, body: Any
) -> None:
    client = session(matrix.a.owner)
    values = names(matrix)
    before = snapshot(matrix)
    response = send(client, method, fill(path, values), fill(body, values))
    assert "CSRF" in assert_error(response, 403)["detail"]
    assert snapshot(matrix) == before


def test_session_write_with_csrf_token_is_accepted(matrix: TenantMatrix) -> None:
    client = session(matrix.a.owner)
    token = csrf_token(client)
    response = send(
        client,
        "POST",
        "/clients",
        {"name": "Via session"},
        HTTP_X_CSRFTOKEN=token,
        HTTP_REFERER="https://testserver/app/",
    )
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "Via session"


def test_session_write_with_a_forged_csrf_token_is_refused(matrix: TenantMatrix) -> None:
    client = session(matrix.a.owner)
    csrf_token(client)
    before = snapshot(matrix)
    response = send(
        client,
        "POST",
        "/clients",
        {"name": "Forged"},
        HTTP_X_CSRFTOKEN="x" * 32,
        HTTP_REFERER="https://testserver/app/",
    )
    assert_error(response, 403)
    assert snapshot(matrix) == before


def test_session_reads_need_no_csrf_token(matrix: TenantMatrix) -> None:
    response = send(session(matrix.a.staff), "GET", "/clients")
    assert response.status_code == 200
    assert [c["name"] for c in response.json()["items"]] == ["Alpha Client"]


def test_logged_out_write_is_401_not_a_csrf_403(matrix: TenantMatrix) -> None:
    client = HttpsClient(enforce_csrf_checks=True)
    assert_error(send(client, "POST", "/clients", {"name": "X"}), 401)


def test_a_bad_token_does_not_fall_back_to_the_session(matrix: TenantMatrix) -> None:
    client = session(matrix.a.owner, csrf=False)
    response = send(client, "GET", "/clients", HTTP_AUTHORIZATION="Bearer cst_nope_nope")
    assert_error(response, 401)


def test_a_token_wins_over_a_session_of_someone_else(matrix: TenantMatrix) -> None:
    """The token's actor (staff) is who acts, not the session's (owner)."""
    _token, plain = token_of(matrix, "staff")
    client = session(matrix.a.owner, csrf=False)
    response = send(client, "GET", "/clients", HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert [c["name"] for c in response.json()["items"]] == ["Alpha Client"]


def test_the_session_of_a_logged_in_person_without_membership_is_401(matrix: TenantMatrix) -> None:
    from tests.factories import UserFactory

    client = HttpsClient()
    client.force_login(UserFactory())
    assert_error(send(client, "GET", "/clients"), 401)
