"""Personal API tokens: what may be granted, what is stored, and who a presented token is."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import Http404
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from custodia.accounts import access as accounts_access
from custodia.accounts.actions import do_create_api_token, do_revoke_api_token
from custodia.accounts.digests import digest_secret
from custodia.accounts.models import ApiToken, User
from custodia.clients.access import list_clients
from custodia.clients.actions import do_create_client
from custodia.core.actor import Actor
from custodia.core.dbcontext import clear
from custodia.core.permissions import (
    EXPLICIT_SCOPES,
    NEVER_TOKEN_SCOPES,
    ROLE_PERMISSIONS,
    Permission,
    Role,
)
from custodia.tenancy.actions import do_change_role, do_deactivate_member
from tests.acting import act, resolve_token
from tests.factories import TenantMatrix

pytestmark = pytest.mark.django_db

# The resolver the API authenticates with (tenancy/actors.py), acting in the test's scope.
resolve: Callable[[str], Actor | None] = resolve_token


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_token(actor: Actor, **kwargs: Any) -> tuple[ApiToken, str]:
    act(actor)
    return do_create_api_token(actor=actor, name=kwargs.pop("name", "test"), **kwargs)


def present(plain: str) -> Actor | None:
    """What a request carrying `plain` would be, starting from a blank context."""
    clear()
    return resolve(plain)


# --- Creation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "manager", "staff"])
def test_default_scopes_are_the_roles_permissions(matrix: TenantMatrix, role: str) -> None:
    actor = getattr(matrix.a, role)
    token, plain = make_token(actor)
    # Everything the role allows but the scopes granted only by name (the business export) and
    # those no token may hold (cards).
    allowed = ROLE_PERMISSIONS[actor.role] - EXPLICIT_SCOPES - NEVER_TOKEN_SCOPES
    assert set(token.scopes) == {p.value for p in allowed}
    assert token.scopes == sorted(token.scopes)
    assert token.membership_id == actor.membership.pk
    assert token.tenant_id == actor.tenant_id
    assert plain.startswith(f"cst_{token.prefix}_")
    default_days = dt.timedelta(days=90)
    assert abs(token.expires_at - timezone.now() - default_days) < dt.timedelta(minutes=1)


def test_client_logins_cannot_create_tokens(matrix: TenantMatrix) -> None:
    act(matrix.a.client_login)
    with pytest.raises(PermissionDenied):
        do_create_api_token(actor=matrix.a.client_login, name="mine")


@pytest.mark.parametrize(
    ("role", "scopes", "field"),
    [
        ("staff", ["clients:record:write"], "scopes"),
        ("staff", ["clients:record:read", "staff:role:write"], "scopes"),
        ("manager", ["staff:role:write"], "scopes"),
        ("manager", ["business:settings:write"], "scopes"),
        ("owner", ["clients:record:delete"], "scopes"),
        ("owner", ["admin"], "scopes"),
        ("owner", ["CLIENTS:RECORD:READ"], "scopes"),
        ("owner", [""], "scopes"),
    ],
)
def test_scopes_beyond_the_role_or_unknown_are_refused(
    matrix: TenantMatrix, role: str, scopes: list[str], field: str
) -> None:
    actor = getattr(matrix.a, role)
    act(actor)
    with pytest.raises(ValidationError) as caught:
        do_create_api_token(actor=actor, name="x", scopes=scopes)
    assert field in caught.value.message_dict
    act(actor)
    assert ApiToken.objects.filter(user=actor.user).count() == 0


@pytest.mark.parametrize(
    "days",
    [
        -1,
        366,
        10_000,
        0,
    ],
)
def test_token_lifetime_is_bounded(matrix: TenantMatrix, days: int) -> None:
    act(matrix.a.owner)
    with pytest.raises(ValidationError) as caught:
        do_create_api_token(actor=matrix.a.owner, name="x", days=days)
    assert "days" in caught.value.message_dict


@pytest.mark.parametrize("days", [1, 365])
def test_token_lifetime_bounds_are_inclusive(matrix: TenantMatrix, days: int) -> None:
    token, _plain = make_token(matrix.a.owner, days=days)
    assert abs(token.expires_at - timezone.now() - dt.timedelta(days=days)) < dt.timedelta(
        minutes=1
    )


def test_the_plain_token_is_never_stored(matrix: TenantMatrix) -> None:
    token, plain = make_token(matrix.a.owner, scopes=["clients:record:read"])
    secret = plain.split("_", 2)[2]
    assert len(secret) >= 40
    act(matrix.a.owner)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken WHERE id = %s", [token.pk])
        row = cursor.fetchone()
    assert row is not None
    assert all(secret not in str(value) for value in row)
    assert all(plain not in str(value) for value in row)
    # The digest is keyed: neither the plain SHA-256 of the secret nor of the whole token.
    for unkeyed in (secret, plain):
        assert token.digest != hashlib.sha256(unkeyed.encode()).hexdigest()
    assert token.digest == digest_secret(accounts_access.TOKEN_PURPOSE, secret)
    # ... and purpose-bound: the same secret as an invitation would digest differently.
    assert token.digest != digest_secret("invitation", secret)
    assert len(token.digest) == 64


def test_revoking_is_for_the_tokens_own_user(matrix: TenantMatrix) -> None:
    token, plain = make_token(matrix.a.staff)
    act(matrix.a.owner)
    with pytest.raises(Http404):
        do_revoke_api_token(token, actor=matrix.a.owner)
    assert present(plain) is not None
    act(matrix.a.staff)
    do_revoke_api_token(token, actor=matrix.a.staff)
    assert present(plain) is None


# --- Who a presented token is ---------------------------------------------------------------


def test_a_valid_token_is_its_membership_with_its_scopes(matrix: TenantMatrix) -> None:
    token, plain = make_token(
        matrix.a.manager, scopes=["clients:record:read", "scheduling:visit:read"]
    )
    actor = present(plain)
    assert actor is not None
    assert actor.user == matrix.a.manager.user
    assert actor.membership == matrix.a.manager.membership
    assert actor.scopes == {Permission.CLIENTS_RECORD_READ, Permission.VISITS_READ}
    act(matrix.a.manager)
    token.refresh_from_db()
    assert token.last_used_at is not None


def tampered(plain: str) -> list[str]:
    head, prefix, secret = plain.split("_", 2)
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    other_prefix = ("0" if prefix[0] != "0" else "1") + prefix[1:]
    return [
        f"{head}_{prefix}_{flipped}",
        f"{head}_{prefix}_{secret[:-1]}",
        f"{head}_{prefix}_{secret}x",
        f"{head}_{other_prefix}_{secret}",
        f"CST_{prefix}_{secret}",
        f"{head}_{prefix.upper()}_{secret}",
        f"{head}_{prefix}",
        f"{prefix}_{secret}",
        f" {plain}",
        f"{plain} ",
        "",
    ]


def test_tampered_tokens_are_nobody(matrix: TenantMatrix) -> None:
    _token, plain = make_token(matrix.a.owner)
    for variant in tampered(plain):
        assert present(variant) is None, variant
    assert present(plain) is not None


def test_expired_revoked_and_inactive_tokens_are_nobody(matrix: TenantMatrix) -> None:
    a = matrix.a
    expired, expired_plain = make_token(a.owner)
    revoked, revoked_plain = make_token(a.manager)
    _staff_token, staff_plain = make_token(a.staff)
    _other_token, other_plain = make_token(a.other_staff)
    for plain in (expired_plain, revoked_plain, staff_plain, other_plain):
        assert present(plain) is not None

    act(a.owner)
    ApiToken.objects.filter(pk=expired.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    act(a.manager)
    do_revoke_api_token(revoked, actor=a.manager)
    act(a.owner)
    do_deactivate_member(a.staff.membership, actor=a.owner)
    User.objects.filter(pk=a.other_staff.user.pk).update(is_active=False)

    for plain in (expired_plain, revoked_plain, staff_plain, other_plain):
        assert present(plain) is None


def test_a_token_is_narrowed_by_scopes_and_by_the_current_role(matrix: TenantMatrix) -> None:
    a = matrix.a
    _token, plain = make_token(a.manager, scopes=["clients:record:read", "clients:record:write"])
    read_only, read_only_plain = make_token(a.owner, scopes=["clients:record:read"])

    owner_by_token = present(read_only_plain)
    assert owner_by_token is not None
    act(owner_by_token)
    assert {c.pk for c in list_clients(owner_by_token)} == {a.client.pk, a.other_client.pk}
    with pytest.raises(PermissionDenied):
        do_create_client(actor=owner_by_token, name="Via read-only token")
    assert not owner_by_token.can(Permission.STAFF_ROLE_WRITE)

    # The manager becomes staff: the token keeps its scopes, but only what the role allows counts.
    act(a.owner)
    do_change_role(a.manager.membership, Role.STAFF, actor=a.owner)
    demoted = present(plain)
    assert demoted is not None and demoted.role == Role.STAFF
    assert demoted.can(Permission.CLIENTS_RECORD_READ)
    assert not demoted.can(Permission.CLIENTS_RECORD_WRITE)
    act(demoted)
    with pytest.raises(PermissionDenied):
        do_create_client(actor=demoted, name="Via demoted token")
    assert list_clients(demoted).count() == 0  # staff, assigned to nobody

    # Scopes stored that no longer exist are ignored, not an error.
    act(a.owner)
    ApiToken.objects.filter(pk=read_only.pk).update(scopes=["clients:record:read", "gone:away"])
    again = present(read_only_plain)
    assert again is not None and again.scopes == {Permission.CLIENTS_RECORD_READ}


def test_a_token_only_ever_acts_in_its_own_business(matrix: TenantMatrix) -> None:
    _token, plain = make_token(matrix.b.owner)
    actor = present(plain)
    assert actor is not None and actor.tenant_id == matrix.b.owner.tenant_id
    act(actor)
    assert {c.pk for c in list_clients(actor)} == {matrix.b.client.pk, matrix.b.other_client.pk}


# Text as a header could carry it: anything but NUL, which PostgreSQL cannot take (see below).
HEADER_TEXT = st.characters(blacklist_characters="\x00")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    presented=st.one_of(
        st.text(HEADER_TEXT, max_size=120),
        st.builds(
            lambda p, s: f"cst_{p}_{s}",
            st.text(HEADER_TEXT, max_size=20),
            st.text(HEADER_TEXT, max_size=60),
        ),
        st.builds(lambda s: f"cst_{'0' * 12}_{s}", st.text(HEADER_TEXT, min_size=1, max_size=60)),
    )
)
@example("cst_" + "9" * 5000 + "_x")
@example("cst_%_%")
@example("cst___")
def test_arbitrary_strings_are_nobody_and_never_an_error(
    matrix: TenantMatrix, presented: str
) -> None:
    assert present(presented) is None


@pytest.mark.parametrize("presented", ["cst_\x00_secret", "cst_abc\x00def_secret"])
def test_a_nul_byte_in_a_token_is_nobody(matrix: TenantMatrix, presented: str) -> None:
    from django.db import transaction

    with transaction.atomic():
        assert present(presented) is None


def test_last_use_is_written_once_a_minute_not_on_every_request(matrix: TenantMatrix) -> None:
    token, plain = make_token(matrix.a.manager, scopes=["clients:record:read"])
    assert present(plain) is not None
    act(matrix.a.manager)
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    assert present(plain) is not None
    act(matrix.a.manager)
    token.refresh_from_db()
    assert token.last_used_at == first
    # A minute later the next use is recorded.
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - dt.timedelta(seconds=61))
    assert present(plain) is not None
    act(matrix.a.manager)
    token.refresh_from_db()
    assert token.last_used_at is not None and token.last_used_at > first
