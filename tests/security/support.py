"""Helpers for the isolation tests: raw SQL as custodia_app, snapshots of both tenants, extras."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from custodia.accounts.actions import do_create_api_token
from custodia.accounts.digests import issue_secret
from custodia.accounts.models import ApiToken
from custodia.clients.models import Client
from custodia.clients.profile_actions import do_create_pet, do_update_household
from custodia.core.actor import Actor
from custodia.core.dbcontext import set_db_context
from custodia.core.permissions import Role
from custodia.tenancy.actions import INVITATION_PURPOSE
from custodia.tenancy.models import Invitation
from tests.acting import act
from tests.factories import TenantMatrix

# Every tenant-owned table, with its primary key and the column naming its tenant.
TENANT_TABLES: dict[str, tuple[str, str]] = {
    "tenancy_business": ("id", "id"),
    "tenancy_membership": ("id", "tenant_id"),
    "tenancy_invitation": ("id", "tenant_id"),
    "accounts_apitoken": ("id", "tenant_id"),
    "clients_client": ("id", "tenant_id"),
    "clients_homeaccess": ("client_id", "tenant_id"),
    "clients_assignment": ("id", "tenant_id"),
    "clients_pet": ("id", "tenant_id"),
    "clients_household": ("client_id", "tenant_id"),
    "clients_clientnamepart": ("id", "tenant_id"),
    "scheduling_service": ("id", "tenant_id"),
    "scheduling_visit": ("id", "tenant_id"),
}


def fetch(query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of a raw query on the app's connection (custodia_app, RLS applies)."""
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return list(cursor.fetchall())


def fetch_dicts(query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Rows of a raw query as dicts."""
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def scalar(query: str, params: Sequence[Any] = ()) -> Any:
    """The single value of a raw query."""
    rows = fetch(query, params)
    assert len(rows) == 1, rows
    return rows[0][0]


def execute(query: str, params: Sequence[Any] = ()) -> int:
    """Run a raw statement; returns the number of rows it affected."""
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return int(cursor.rowcount)


def ids(query: str, params: Sequence[Any] = ()) -> set[Any]:
    """The first column of every row, as a set."""
    return {row[0] for row in fetch(query, params)}


@dataclass
class Extras:
    """Rows the matrix lacks: API tokens of owners and staff, a pending invitation per business."""

    tokens: dict[str, tuple[ApiToken, str]]
    invitations: dict[str, Invitation]


def add_invitation(
    owner: Actor,
    *,
    email: str = "invitee@example.test",
    role: Role = Role.STAFF,
    client: Client | None = None,
    expires_in: dt.timedelta = dt.timedelta(hours=1),
) -> tuple[Invitation, str]:
    """A pending invitation written directly (no email); returns it with its secret."""
    act(owner)
    issued = issue_secret(INVITATION_PURPOSE)
    invitation = Invitation.objects.create(
        tenant_id=owner.tenant_id,
        email=email,
        role=role,
        client=client,
        prefix=issued.prefix,
        digest=issued.digest,
        invited_by=owner.membership,
        expires_at=timezone.now() + expires_in,
    )
    return invitation, issued.secret


def add_extras(matrix: TenantMatrix) -> Extras:
    """Give every tenant-owned table rows in both businesses."""
    tokens: dict[str, tuple[ApiToken, str]] = {}
    invitations: dict[str, Invitation] = {}
    for key, business in (("a", matrix.a), ("b", matrix.b)):
        for role_name in ("owner", "staff"):
            actor: Actor = getattr(business, role_name)
            act(actor)
            tokens[f"{key}.{role_name}"] = do_create_api_token(
                actor=actor, name=f"{key} {role_name}"
            )
        invitations[key], _secret = add_invitation(business.owner, email=f"new@{key}.test")
        act(business.owner)
        do_create_pet(business.client, actor=business.owner, name="Miso", medication="Pill")
        do_update_household(business.client, actor=business.owner, wifi_password="secret")
    return Extras(tokens, invitations)


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _rows_of(table: str) -> list[tuple[Any, ...]]:
    rows = fetch_dicts(f"SELECT * FROM {table}")  # noqa: S608 - table names are constants
    return sorted(
        (tuple(sorted((name, _frozen(value)) for name, value in row.items())) for row in rows),
        key=repr,
    )


def snapshot(matrix: TenantMatrix) -> dict[str, list[tuple[Any, ...]]]:
    """Every tenant-owned row of both businesses, read through each business's own contexts.

    Owners read everything of their business except other people's API tokens, which are read
    under each member's own user context. Leaves the connection with no context set.
    """
    state: dict[str, list[tuple[Any, ...]]] = {}
    for key, business in (("a", matrix.a), ("b", matrix.b)):
        act(business.owner)
        for table in TENANT_TABLES:
            if table != "accounts_apitoken":
                state[f"{key}:{table}"] = _rows_of(table)
        tokens: list[tuple[Any, ...]] = []
        for (user_id,) in fetch("SELECT user_id FROM tenancy_membership ORDER BY user_id"):
            set_db_context(tenant_id=business.owner.tenant_id, user_id=user_id)
            tokens.extend(_rows_of("accounts_apitoken"))
            act(business.owner)
        state[f"{key}:accounts_apitoken"] = sorted(tokens, key=repr)
    set_db_context()
    return state


def assert_unchanged(
    matrix: TenantMatrix, before: dict[str, list[tuple[Any, ...]]], what: str = ""
) -> None:
    """Nothing in either business differs from `before`."""
    after = snapshot(matrix)
    changed = sorted(key for key in before if before[key] != after[key])
    assert not changed, f"{what}: rows changed in {changed}"


def check_as_at_commit() -> None:
    """Run the checks PostgreSQL defers to COMMIT (foreign keys) now, as a commit would."""
    connection.check_constraints()


def attempt(action: Callable[[], Any]) -> BaseException | None:
    """Run `action` in a savepoint as if committed; return what it raised (None if it returned).

    Deferred checks run before the savepoint is released, so a write that COMMIT would refuse
    is refused (and rolled back) here too.
    """
    try:
        with transaction.atomic():
            action()
            check_as_at_commit()
    except Exception as error:  # noqa: BLE001 - the caller asserts on the type
        return error
    return None
