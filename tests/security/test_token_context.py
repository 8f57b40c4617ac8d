"""The one-trip context functions, attacked as the app's own database role would call them.

`custodia_activate_token(key, prefix, digests)` and `custodia_activate_member(key, user,
business)` (tenancy/migrations/0006_one_trip_context.py) are SECURITY DEFINER: each is called
here directly, with SQL, as `custodia_app`, with every wrong input a caller could send. A
refused call must establish no context (no tenant, no user: only the empty verified one a request
without a login has, whatever was set before it) and return no row; a key-less call must fail.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import ProgrammingError, connection, transaction
from django.utils import timezone

from custodia.accounts.access import TOKEN_PURPOSE
from custodia.accounts.actions import do_create_api_token, do_revoke_api_token
from custodia.accounts.digests import digest_secret
from custodia.accounts.models import ApiToken, User
from custodia.clients.models import Client
from custodia.core.actor import Actor
from custodia.core.dbcontext import activate_member, clear, cleared_unless_set
from custodia.tenancy.actions import do_deactivate_member, do_delete_business
from custodia.tenancy.models import Business, Membership
from tests.acting import act
from tests.factories import TenantMatrix

pytestmark = pytest.mark.django_db

TOKEN_SQL = "SELECT * FROM custodia_activate_token(%s, %s, %s)"
MEMBER_SQL = "SELECT * FROM custodia_activate_member(%s, %s, %s)"
READERS = (
    "SELECT custodia_tenant_id(), custodia_user_id(), custodia_membership_id(),"
    " custodia_client_id(), custodia_role(), custodia_lookup(), custodia_context_verified()"
)
EMPTY = (None, None, None, None, "", None, True)
KEY = settings.DB_CONTEXT_KEY


def call(sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def context_now() -> tuple[Any, ...]:
    return call(READERS)[0]


def context_of(actor: Actor) -> tuple[Any, ...]:
    m = actor.membership
    return (m.tenant_id, actor.user.pk, m.pk, m.client_id, m.role, None, True)


def token_of(actor: Actor, **options: Any) -> tuple[ApiToken, str]:
    act(actor)
    token, plain = do_create_api_token(actor=actor, name="ctx", **options)
    return token, plain.split("_", 2)[2]


def digests(secret: str) -> list[str]:
    return [digest_secret(TOKEN_PURPOSE, secret)]


def refused(*params: Any, after: Actor | None = None) -> None:
    """The call returns nothing and leaves an empty context, even over an actor's context."""
    if after is not None:
        act(after)
        assert context_now() == context_of(after)
    assert call(TOKEN_SQL, KEY, *params) == []
    assert context_now() == EMPTY
    assert not Client.objects.exists()
    assert not Membership.objects.exists()


@pytest.fixture
def owner_token(matrix: TenantMatrix) -> tuple[ApiToken, str]:
    return token_of(matrix.a.owner)


def test_the_calls_here_are_the_app_roles(db: None) -> None:
    assert call("SELECT current_user")[0][0] == settings.APP_DB_ROLE


def test_a_live_token_sets_its_own_memberships_context_alone(
    matrix: TenantMatrix, owner_token: tuple[ApiToken, str]
) -> None:
    a, b = matrix.a, matrix.b
    token, secret = owner_token
    clear()
    [row] = call(TOKEN_SQL, KEY, token.prefix, digests(secret))
    assert context_now() == context_of(a.owner)
    assert {c.pk for c in Client.objects.all()} == {a.client.pk, a.other_client.pk}
    assert not Client.objects.filter(tenant_id=b.owner.tenant_id).exists()
    assert not Business.objects.filter(pk=b.owner.tenant_id).exists()
    # Everything the actor is made of, from the one call.
    assert row[0] == token.pk and row[3] == a.owner.membership.pk


def test_the_grant_holds_every_field_of_membership_login_and_business(
    matrix: TenantMatrix, owner_token: tuple[ApiToken, str]
) -> None:
    """A field added to one of these models must be added to the functions (a new migration),
    or the actor built from them would fetch it with a query of its own."""
    token, secret = owner_token
    with connection.cursor() as cursor:
        cursor.execute(TOKEN_SQL, [KEY, token.prefix, digests(secret)])
        columns = {column.name for column in cursor.description}
    for initial, model, left_out in (
        ("m_", Membership, set()),
        ("b_", Business, set()),
        ("u_", User, {"password"}),  # never needed to act, so never handed out
    ):
        fields = {f.attname for f in model._meta.concrete_fields} - left_out
        assert {initial + name for name in fields} <= columns, model.__name__
    assert "u_password" not in columns
    # And the actor built from them is the one the ORM reads.
    from tests.acting import resolve_token as actor_for_token

    clear()
    actor = actor_for_token(f"cst_{token.prefix}_{secret}")
    assert actor is not None
    act(matrix.a.owner)
    stored = Membership.objects.select_related("tenant", "user").get(pk=actor.membership.pk)
    for got, want in ((actor.membership, stored), (actor.business, stored.tenant)):
        for f in type(want)._meta.concrete_fields:
            assert getattr(got, f.attname) == getattr(want, f.attname), f.attname
    for f in User._meta.concrete_fields:
        if f.attname != "password":
            assert getattr(actor.user, f.attname) == getattr(stored.user, f.attname), f.attname


def test_a_wrong_hash_is_refused(matrix: TenantMatrix, owner_token: tuple[ApiToken, str]) -> None:
    token, _secret = owner_token
    for wrong in (["0" * 64], [secrets.token_hex(32)], [token.digest.upper()], [""], [None]):
        refused(token.prefix, wrong, after=matrix.a.owner)


def test_the_right_prefix_with_a_wrong_secret_is_refused(
    matrix: TenantMatrix, owner_token: tuple[ApiToken, str]
) -> None:
    token, secret = owner_token
    for wrong in (secret[:-1], secret + "x", secrets.token_urlsafe(32), ""):
        refused(token.prefix, digests(wrong), after=matrix.a.owner)
    # Nor under another key (a digest the server's fallback keys would not make).
    other_key = digest_secret(TOKEN_PURPOSE, secret, key="another-" + "k" * 50)
    refused(token.prefix, [other_key], after=matrix.a.owner)


def test_another_tokens_digest_or_prefix_is_refused(
    matrix: TenantMatrix, owner_token: tuple[ApiToken, str]
) -> None:
    token, secret = owner_token
    staff_token, staff_secret = token_of(matrix.a.staff)
    b_token, b_secret = token_of(matrix.b.owner)
    # Each prefix with the other token's (valid) digest: no mix of two tokens is a token.
    refused(token.prefix, digests(staff_secret), after=matrix.a.staff)
    refused(staff_token.prefix, digests(secret), after=matrix.a.staff)
    refused(token.prefix, digests(b_secret), after=matrix.b.owner)
    refused(b_token.prefix, digests(secret), after=matrix.a.owner)
    # Nor does a valid digest in a fallback key's place.
    refused(b_token.prefix, ["0" * 64, *digests(secret)], after=matrix.b.owner)


def test_an_expired_token_is_refused(
    matrix: TenantMatrix, owner_token: tuple[ApiToken, str]
) -> None:
    token, secret = owner_token
    act(matrix.a.owner)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    refused(token.prefix, digests(secret), after=matrix.a.owner)


def test_a_revoked_token_is_refused(
    matrix: TenantMatrix, owner_token: tuple[ApiToken, str]
) -> None:
    token, secret = owner_token
    act(matrix.a.owner)
    do_revoke_api_token(token, actor=matrix.a.owner)
    refused(token.prefix, digests(secret), after=matrix.a.owner)


def test_a_deactivated_member_or_login_is_refused(matrix: TenantMatrix) -> None:
    a = matrix.a
    manager_token, manager_secret = token_of(a.manager)
    staff_token, staff_secret = token_of(a.staff)
    act(a.owner)
    do_deactivate_member(a.manager.membership, actor=a.owner)
    refused(manager_token.prefix, digests(manager_secret), after=a.owner)
    User.objects.filter(pk=a.staff.user.pk).update(is_active=False)
    refused(staff_token.prefix, digests(staff_secret), after=a.owner)


def test_a_token_pointed_at_another_membership_gets_no_context(matrix: TenantMatrix) -> None:
    """A token's own user may update it (its last use): pointing it at someone else's membership
    of the same business must not make it theirs."""
    a = matrix.a
    token, secret = token_of(a.staff)
    act(a.staff)
    assert ApiToken.objects.filter(pk=token.pk).update(membership_id=a.owner.membership.pk) == 1
    refused(token.prefix, digests(secret), after=a.staff)


@pytest.mark.django_db(databases=["default", "owner"])
def test_a_token_of_a_deleted_business_is_refused(
    matrix: TenantMatrix, owner_token: tuple[ApiToken, str]
) -> None:
    token, secret = owner_token
    act(matrix.a.owner)
    business = Business.objects.get(pk=matrix.a.owner.tenant_id)
    do_delete_business(business, actor=matrix.a.owner, confirm_slug=business.slug)
    refused(token.prefix, digests(secret), after=matrix.b.owner)


# Placeholders: "prefix" is the token's own prefix, "digests" its secret's digests.
MALFORMED = [
    (None, "digests"),
    ("", "digests"),
    ("%", "digests"),
    ("_" * 12, "digests"),
    ("PREFIX", "digests"),  # the prefix in capitals
    ("prefix ", "digests"),
    ("prefix", None),
    ("prefix", []),
    ("prefix", "nine"),  # the right digest, after eight wrong ones
]


@pytest.mark.parametrize(("prefix", "sent"), MALFORMED)
def test_malformed_input_is_refused(
    matrix: TenantMatrix, owner_token: tuple[ApiToken, str], prefix: Any, sent: Any
) -> None:
    token, secret = owner_token
    if isinstance(prefix, str) and prefix.strip().lower() == "prefix":
        prefix = prefix.replace("prefix", token.prefix).replace("PREFIX", token.prefix.upper())
    if sent == "digests":
        sent = digests(secret)
    elif sent == "nine":
        sent = ["0" * 64] * 8 + digests(secret)
    refused(prefix, sent, after=matrix.a.owner)


@pytest.mark.parametrize("key", [None, "", "wrong", "x" * 64])
def test_a_call_without_the_context_key_fails_and_sets_nothing(
    matrix: TenantMatrix, owner_token: tuple[ApiToken, str], key: str | None
) -> None:
    token, secret = owner_token
    for sql, params in (
        (TOKEN_SQL, [token.prefix, digests(secret)]),
        (MEMBER_SQL, [matrix.a.owner.user.pk, matrix.a.owner.tenant_id]),
    ):
        clear()
        with pytest.raises(ProgrammingError, match="context key") as failed:
            with transaction.atomic():
                call(sql, key, *params)
        assert isinstance(failed.value.__cause__, psycopg.errors.InsufficientPrivilege)
        assert context_now() == EMPTY
        assert not Client.objects.exists()


def test_the_context_writer_they_share_is_not_the_apps(matrix: TenantMatrix) -> None:
    a = matrix.a.owner
    with pytest.raises(ProgrammingError) as failed:
        with transaction.atomic():
            call(
                "SELECT custodia_put_context(%s, %s, %s, NULL, 'owner', NULL)",
                a.tenant_id,
                a.user.pk,
                a.membership.pk,
            )
    assert isinstance(failed.value.__cause__, psycopg.errors.InsufficientPrivilege)


def test_a_member_gets_their_own_membership_only(matrix: TenantMatrix) -> None:
    a, b = matrix.a, matrix.b
    # Their membership where they have one (named, or the first when none is named).
    for named in (a.manager.tenant_id, None):
        [row] = call(MEMBER_SQL, KEY, a.manager.user.pk, named)
        assert row[0] == a.manager.membership.pk
        assert context_now() == context_of(a.manager)
    # Another business's id gives the user's context alone, never that business's.
    for actor, other in ((a.manager, b.owner.tenant_id), (b.owner, a.owner.tenant_id)):
        act(a.owner)
        assert call(MEMBER_SQL, KEY, actor.user.pk, other) == []
        assert context_now() == (None, actor.user.pk, None, None, "", None, True)
        assert not Client.objects.exists()
        assert not Business.objects.filter(pk=other).exists()
    # An ended membership, or a login switched off, is no membership either.
    act(a.owner)
    do_deactivate_member(a.staff.membership, actor=a.owner)
    assert call(MEMBER_SQL, KEY, a.staff.user.pk, a.staff.tenant_id) == []
    assert call(MEMBER_SQL, KEY, a.staff.user.pk, None) == []
    User.objects.filter(pk=a.other_staff.user.pk).update(is_active=False)
    assert call(MEMBER_SQL, KEY, a.other_staff.user.pk, None) == []
    assert context_now() == (None, a.other_staff.user.pk, None, None, "", None, True)
    # No user, no context.
    assert call(MEMBER_SQL, KEY, None, a.owner.tenant_id) == []
    assert context_now() == EMPTY
    # Through the app's wrapper: the same.
    assert activate_member(uuid.uuid4(), a.owner.tenant_id) is None
    assert context_now()[0] is None


def test_a_bearer_request_gets_an_empty_context_before_any_other_query(
    matrix: TenantMatrix, owner_token: tuple[ApiToken, str]
) -> None:
    """TenantMiddleware leaves a bearer-token request's context to its authentication; whatever
    queries first without one (a malformed token never reaches the database) runs in an empty
    verified context, not in whatever the connection's transaction had."""
    act(matrix.a.owner)
    with cleared_unless_set():
        assert not Client.objects.exists()
        assert context_now() == EMPTY
    # A token authenticated first keeps its context: nothing clears it afterwards.
    from tests.acting import resolve_token as actor_for_token

    token, secret = owner_token
    clear()
    with cleared_unless_set():
        actor = actor_for_token(f"cst_{token.prefix}_{secret}")
        assert actor is not None
        assert Client.objects.count() == 2
        assert context_now() == context_of(matrix.a.owner)
