"""Isolation through the access and action functions: every role of business A, and the outsider.

Reads: who gets what, 404 for anything out of reach (other tenant or malformed id), 403 for a
missing permission. Writes: every action refuses a lesser role and a cross-tenant object, and
nothing changes in either business.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError
from django.http import Http404
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custodia.accounts import access as accounts_access
from custodia.accounts.actions import do_create_api_token, do_revoke_api_token
from custodia.clients import access as clients_access
from custodia.clients.actions import (
    do_assign_staff,
    do_create_client,
    do_delete_client,
    do_unassign_staff,
    do_update_client,
)
from custodia.core.actor import Actor
from custodia.core.dbcontext import activate_member
from custodia.core.permissions import Role
from custodia.scheduling import access as scheduling_access
from custodia.scheduling.actions import (
    do_create_service,
    do_create_visit,
    do_delete_service,
    do_delete_visit,
    do_request_visit,
    do_update_service,
    do_update_visit,
)
from custodia.tenancy import access as tenancy_access
from custodia.tenancy.actions import (
    do_change_role,
    do_deactivate_member,
    do_invite_member,
    do_revoke_invitation,
)
from custodia.tenancy.reads import Intent
from tests.acting import act
from tests.factories import TenantMatrix
from tests.security.support import Extras, add_extras, assert_unchanged, attempt, snapshot

pytestmark = pytest.mark.django_db

ROLES = ("owner", "manager", "staff", "other_staff", "client_login", "outsider")
# What a refusal looks like from an action: 403, 404, a 422 with a reason, or (where an action
# lacks its own check and the database refuses) a database error.
REFUSALS = (PermissionDenied, Http404, ValidationError, DatabaseError)
FAST = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def actor_of(matrix: TenantMatrix, role: str) -> Actor:
    return matrix.outsider if role == "outsider" else getattr(matrix.a, role)


@pytest.fixture
def extras(matrix: TenantMatrix) -> Extras:
    return add_extras(matrix)


# --- Reads ---------------------------------------------------------------------------------

# Which of A's records each role reaches ("client" = a.client, "other" = a.other_client).
CLIENTS_SEEN = {
    "owner": {"client", "other"},
    "manager": {"client", "other"},
    "staff": {"client"},
    "other_staff": set(),
    "client_login": {"client"},
    "outsider": set(),
}
VISIT_SEEN = {"owner", "manager", "staff", "client_login"}
DOOR_CODE_SEEN = {"owner", "manager", "staff"}


@pytest.mark.parametrize("role", ROLES)
def test_clients_by_role(matrix: TenantMatrix, role: str) -> None:
    a, b = matrix.a, matrix.b
    actor = actor_of(matrix, role)
    act(actor)
    records = {"client": a.client, "other": a.other_client}
    seen = {client.pk for client in clients_access.list_clients(actor)}
    expected = {records[name].pk for name in CLIENTS_SEEN[role]}
    if role == "outsider":
        assert seen == {b.client.pk, b.other_client.pk}
    else:
        assert seen == expected
    for name, record in records.items():
        if name in CLIENTS_SEEN[role]:
            assert (
                clients_access.access_client_by_id(actor, record.pk, intent=Intent.SHOW) == record
            )
            assert (
                clients_access.access_client_by_id(actor, str(record.pk), intent=Intent.SHOW)
                == record
            )
        else:
            with pytest.raises(Http404):
                clients_access.access_client_by_id(actor, record.pk, intent=Intent.SHOW)
    if role != "outsider":
        for other in (b.client, b.other_client):
            with pytest.raises(Http404):
                clients_access.access_client_by_id(actor, other.pk, intent=Intent.SHOW)


@pytest.mark.parametrize("role", ROLES)
def test_home_access_by_role(matrix: TenantMatrix, role: str) -> None:
    actor = actor_of(matrix, role)
    act(actor)
    home = clients_access.home_access_for(actor, matrix.a.client)
    if role in DOOR_CODE_SEEN:
        assert home is not None and home.door_code == "4711"
    else:
        assert home is None
    # Nobody in A reaches B's codes, even when handed B's client object.
    if role != "outsider":
        assert clients_access.home_access_for(actor, matrix.b.client) is None


@pytest.mark.parametrize("role", ROLES)
def test_assignments_and_assigned_staff_stay_in_reach(matrix: TenantMatrix, role: str) -> None:
    actor = actor_of(matrix, role)
    act(actor)
    if role == "client_login":
        for read in (clients_access.assigned_staff, clients_access.list_assignments):
            with pytest.raises(PermissionDenied):
                read(actor, matrix.a.client)
        return
    staff = set(clients_access.assigned_staff(actor, matrix.a.client))
    assignments = list(clients_access.list_assignments(actor, matrix.a.client))
    if role in {"owner", "manager", "staff"}:
        assert staff == {matrix.a.staff.membership}
        assert [row.staff_id for row in assignments] == [matrix.a.staff.membership.pk]
    else:
        assert staff == set()
        assert assignments == []


@pytest.mark.parametrize("role", ROLES)
def test_visits_and_services_by_role(matrix: TenantMatrix, role: str) -> None:
    a, b = matrix.a, matrix.b
    actor = actor_of(matrix, role)
    act(actor)
    visits = {visit.pk for visit in scheduling_access.list_visits(actor)}
    if role == "outsider":
        assert visits == {b.visit.pk}
    elif role in VISIT_SEEN:
        assert visits == {a.visit.pk}
        assert (
            scheduling_access.access_visit_by_id(actor, a.visit.pk, intent=Intent.SHOW) == a.visit
        )
    else:
        assert visits == set()
    if role not in VISIT_SEEN:
        with pytest.raises(Http404):
            scheduling_access.access_visit_by_id(actor, a.visit.pk, intent=Intent.SHOW)
    if role == "outsider":
        with pytest.raises(Http404):
            scheduling_access.access_service_by_id(actor, a.service.pk)
        assert a.service.pk not in {s.pk for s in scheduling_access.list_services(actor)}
    else:
        assert scheduling_access.access_service_by_id(actor, a.service.pk) == a.service
        with pytest.raises(Http404):
            scheduling_access.access_service_by_id(actor, b.service.pk)
        with pytest.raises(Http404):
            scheduling_access.access_visit_by_id(actor, b.visit.pk, intent=Intent.SHOW)
        assert scheduling_access.list_visits(actor, client_id=b.client.pk).count() == 0


@pytest.mark.parametrize("role", ROLES)
def test_members_and_invitations_by_role(matrix: TenantMatrix, extras: Extras, role: str) -> None:
    a = matrix.a
    actor = actor_of(matrix, role)
    act(actor)
    team = {a.owner, a.manager, a.staff, a.other_staff}
    if role == "client_login":
        with pytest.raises(PermissionDenied):
            tenancy_access.list_members(actor)
        with pytest.raises(PermissionDenied):
            tenancy_access.access_member_by_id(actor, a.staff.membership.pk)
    elif role == "outsider":
        assert a.staff.membership not in set(tenancy_access.list_members(actor))
        with pytest.raises(Http404):
            tenancy_access.access_member_by_id(actor, a.staff.membership.pk)
    else:
        assert set(tenancy_access.list_members(actor)) == {m.membership for m in team}
        member = tenancy_access.access_member_by_id(actor, a.staff.membership.pk)
        assert member == a.staff.membership
        # A client login is not a member to manage here, and B's people are out of reach.
        for out_of_reach in (a.client_login.membership, matrix.b.staff.membership):
            with pytest.raises(Http404):
                tenancy_access.access_member_by_id(actor, out_of_reach.pk)

    invitation = extras.invitations["a"]
    if role in {"owner", "manager"}:
        assert set(tenancy_access.list_invitations(actor)) == {invitation}
        assert tenancy_access.access_invitation_by_id(actor, invitation.pk) == invitation
        with pytest.raises(Http404):
            tenancy_access.access_invitation_by_id(actor, extras.invitations["b"].pk)
    elif role == "outsider":
        with pytest.raises(Http404):
            tenancy_access.access_invitation_by_id(actor, invitation.pk)
    else:
        with pytest.raises(PermissionDenied):
            tenancy_access.list_invitations(actor)
        with pytest.raises((PermissionDenied, Http404)):
            tenancy_access.access_invitation_by_id(actor, invitation.pk)


def test_tokens_are_only_ever_your_own(matrix: TenantMatrix, extras: Extras) -> None:
    own, _ = extras.tokens["a.owner"]
    staffs, _ = extras.tokens["a.staff"]
    act(matrix.a.owner)
    assert list(accounts_access.list_tokens(matrix.a.owner)) == [own]
    assert accounts_access.access_token_by_id(matrix.a.owner, own.pk) == own
    for other in (staffs, extras.tokens["b.owner"][0]):
        with pytest.raises(Http404):
            accounts_access.access_token_by_id(matrix.a.owner, other.pk)
    act(matrix.a.staff)
    assert list(accounts_access.list_tokens(matrix.a.staff)) == [staffs]


def test_the_active_business_is_only_ever_ones_own(matrix: TenantMatrix) -> None:
    user = matrix.a.owner.user
    # Another's or gone: no membership and no business context (the session is sent to choose;
    # tenancy/actors.py, which refuses a malformed id before asking).
    for asked in (matrix.b.owner.tenant_id, uuid.uuid4()):
        assert activate_member(user.pk, asked) is None, asked
    # Naming none (a fresh login): the user's first.
    grant = activate_member(user.pk, None)
    assert grant is not None and grant.membership["id"] == matrix.a.owner.membership.pk
    act(matrix.a.owner)
    assert list(tenancy_access.memberships_of(user)) == [matrix.a.owner.membership]


def _access_functions(matrix: TenantMatrix) -> dict[str, Callable[[Any], Any]]:
    owner = matrix.a.owner
    return {
        "client": lambda value: clients_access.access_client_by_id(
            owner, value, intent=Intent.SHOW
        ),
        "visit": lambda value: scheduling_access.access_visit_by_id(
            owner, value, intent=Intent.SHOW
        ),
        "service": lambda value: scheduling_access.access_service_by_id(owner, value),
        "member": lambda value: tenancy_access.access_member_by_id(owner, value),
        "invitation": lambda value: tenancy_access.access_invitation_by_id(owner, value),
        "token": lambda value: accounts_access.access_token_by_id(owner, value),
        "visits of client": lambda value: list(
            scheduling_access.list_visits(owner, client_id=value)
        ),
    }


@FAST
@given(
    value=st.one_of(
        st.text(max_size=80),
        st.uuids(),
        st.integers(),
        st.none(),
        st.binary(max_size=20),
        st.sampled_from(["", " ", "null", "../", "' OR 1=1 --", "0" * 32, "%", "\x00"]),
    )
)
def test_malformed_or_unknown_ids_are_404_never_500(matrix: TenantMatrix, value: Any) -> None:
    act(matrix.a.owner)
    for name, function in _access_functions(matrix).items():
        if name == "visits of client" and value is None:
            continue  # None means "no filter" there
        try:
            result = function(value)
        except Http404:
            continue
        # Only a well-formed id of a visible row may succeed (hypothesis won't find one).
        assert name == "visits of client" and result == [], (name, value)


# --- Writes by lesser roles ------------------------------------------------------------------


def _soon(hours: float = 48) -> dt.datetime:
    return timezone.now() + dt.timedelta(hours=hours)


# Every action, and the roles of A allowed to do it. Each lambda gets (matrix, extras, actor).
ACTIONS: dict[str, tuple[set[str], Callable[[TenantMatrix, Extras, Actor], Any]]] = {
    "create client": (
        {"owner", "manager"},
        lambda m, x, actor: do_create_client(actor=actor, name="Intruder"),
    ),
    "update client": (
        {"owner", "manager"},
        lambda m, x, actor: do_update_client(m.a.client, actor=actor, notes="changed"),
    ),
    "update door code": (
        {"owner", "manager"},
        lambda m, x, actor: do_update_client(m.a.client, actor=actor, door_code="0000"),
    ),
    "delete client": (
        {"owner", "manager"},
        lambda m, x, actor: do_delete_client(m.a.other_client, actor=actor),
    ),
    "assign staff": (
        {"owner", "manager"},
        lambda m, x, actor: do_assign_staff(
            m.a.other_client, m.a.other_staff.membership, actor=actor
        ),
    ),
    "unassign staff": (
        {"owner", "manager"},
        lambda m, x, actor: do_unassign_staff(m.a.client, m.a.staff.membership, actor=actor),
    ),
    "create service": (
        {"owner", "manager"},
        lambda m, x, actor: do_create_service(
            actor=actor, name="Free", duration_minutes=30, price_cents=0
        ),
    ),
    "update service": (
        {"owner", "manager"},
        lambda m, x, actor: do_update_service(m.a.service, actor=actor, price_cents=1),
    ),
    "delete service": (
        {"owner", "manager"},
        lambda m, x, actor: do_delete_service(m.a.service, actor=actor),
    ),
    "create visit": (
        {"owner", "manager"},
        lambda m, x, actor: do_create_visit(
            actor=actor, client=m.a.client, starts_at=_soon(), ends_at=_soon(49)
        ),
    ),
    "move visit": (
        {"owner", "manager"},
        lambda m, x, actor: do_update_visit(
            m.a.visit, actor=actor, starts_at=_soon(0.5), ends_at=_soon(1)
        ),
    ),
    "report on visit": (
        {"owner", "manager", "staff"},
        lambda m, x, actor: do_update_visit(
            m.a.visit, actor=actor, report="All good", status="completed"
        ),
    ),
    "delete visit": (
        {"owner", "manager"},
        lambda m, x, actor: do_delete_visit(m.a.visit, actor=actor),
    ),
    "request visit": (
        {"client_login"},
        lambda m, x, actor: do_request_visit(actor=actor, starts_at=_soon()),
    ),
    "invite staff": (
        {"owner", "manager"},
        lambda m, x, actor: do_invite_member(
            actor=actor, email="new.person@example.test", role=Role.STAFF
        ),
    ),
    "invite owner": (
        {"owner"},
        lambda m, x, actor: do_invite_member(
            actor=actor, email="new.owner@example.test", role=Role.OWNER
        ),
    ),
    "revoke invitation": (
        {"owner", "manager"},
        lambda m, x, actor: do_revoke_invitation(x.invitations["a"], actor=actor),
    ),
    "promote staff": (
        {"owner"},
        lambda m, x, actor: do_change_role(m.a.staff.membership, Role.MANAGER, actor=actor),
    ),
    "deactivate staff": (
        {"owner", "manager"},
        lambda m, x, actor: do_deactivate_member(m.a.other_staff.membership, actor=actor),
    ),
    "deactivate manager": (
        {"owner"},
        lambda m, x, actor: do_deactivate_member(m.a.manager.membership, actor=actor),
    ),
    "create token": (
        {"owner", "manager", "staff", "other_staff"},
        lambda m, x, actor: do_create_api_token(actor=actor, name="mine"),
    ),
    "revoke owner's token": (
        {"owner"},
        lambda m, x, actor: do_revoke_api_token(x.tokens["a.owner"][0], actor=actor),
    ),
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_lesser_roles_and_the_outsider_are_refused_and_nothing_changes(
    matrix: TenantMatrix, extras: Extras, action: str
) -> None:
    allowed, run = ACTIONS[action]
    lesser = [role for role in ROLES if role not in allowed and role != "outsider"]
    assert lesser, action
    before = snapshot(matrix)
    wrong = {}
    for role in lesser:
        actor = actor_of(matrix, role)
        act(actor)
        error = attempt(lambda actor=actor: run(matrix, extras, actor))
        if not isinstance(error, (PermissionDenied, Http404, ValidationError)):
            wrong[role] = repr(error)
    assert wrong == {}, f"{action}: not refused"
    assert_unchanged(matrix, before, action)

    # B's owner handed A's objects: refused, or at worst a no-op; never a write in A. (What the
    # outsider may legitimately create, e.g. a client, lands in B.)
    act(matrix.outsider)
    error = attempt(lambda: run(matrix, extras, matrix.outsider))
    assert error is None or isinstance(error, REFUSALS), repr(error)
    after = snapshot(matrix)
    changed_in_a = [key for key in before if key.startswith("a:") and before[key] != after[key]]
    assert changed_in_a == [], f"{action} by the outsider changed {changed_in_a}"


# --- Cross-tenant objects handed to A's own actions -----------------------------------------

CROSS_TENANT: dict[str, Callable[[TenantMatrix, Extras], Any]] = {
    "assign B's staff to A's client": lambda m, x: do_assign_staff(
        m.a.client, m.b.staff.membership, actor=m.a.owner
    ),
    "assign A's staff to B's client": lambda m, x: do_assign_staff(
        m.b.client, m.a.staff.membership, actor=m.a.owner
    ),
    "unassign B's staff": lambda m, x: do_unassign_staff(
        m.b.client, m.b.staff.membership, actor=m.a.owner
    ),
    "update B's client": lambda m, x: do_update_client(m.b.client, actor=m.a.owner, name="Owned"),
    "set B's door code": lambda m, x: do_update_client(
        m.b.client, actor=m.a.owner, door_code="0000"
    ),
    "delete B's client": lambda m, x: do_delete_client(m.b.client, actor=m.a.owner),
    "update B's service": lambda m, x: do_update_service(
        m.b.service, actor=m.a.owner, price_cents=1
    ),
    "delete B's service": lambda m, x: do_delete_service(m.b.service, actor=m.a.owner),
    "visit for B's client": lambda m, x: do_create_visit(
        actor=m.a.owner, client=m.b.client, starts_at=_soon(), ends_at=_soon(49)
    ),
    "visit with B's service": lambda m, x: do_create_visit(
        actor=m.a.owner, client=m.a.client, service=m.b.service, starts_at=_soon()
    ),
    "visit with B's staff": lambda m, x: do_create_visit(
        actor=m.a.owner,
        client=m.a.client,
        staff=m.b.staff.membership,
        starts_at=_soon(),
        ends_at=_soon(49),
    ),
    "report on B's visit": lambda m, x: do_update_visit(m.b.visit, actor=m.a.owner, report="x"),
    "staff reports on B's visit": lambda m, x: do_update_visit(
        m.b.visit, actor=m.a.staff, report="x"
    ),
    "hand A's visit to B's staff": lambda m, x: do_update_visit(
        m.a.visit, actor=m.a.owner, staff=m.b.staff.membership
    ),
    "A's visit with B's service": lambda m, x: do_update_visit(
        m.a.visit, actor=m.a.owner, service=m.b.service
    ),
    "delete B's visit": lambda m, x: do_delete_visit(m.b.visit, actor=m.a.owner),
    "request with B's service": lambda m, x: do_request_visit(
        actor=m.a.client_login, starts_at=_soon(), service=m.b.service
    ),
    "invite to B's client login": lambda m, x: do_invite_member(
        actor=m.a.owner, email="someone@example.test", role=Role.CLIENT, client=m.b.client
    ),
    "revoke B's invitation": lambda m, x: do_revoke_invitation(x.invitations["b"], actor=m.a.owner),
    "demote B's owner": lambda m, x: do_change_role(
        m.b.owner.membership, Role.STAFF, actor=m.a.owner
    ),
    "promote B's staff": lambda m, x: do_change_role(
        m.b.staff.membership, Role.MANAGER, actor=m.a.owner
    ),
    "deactivate B's staff": lambda m, x: do_deactivate_member(
        m.b.staff.membership, actor=m.a.owner
    ),
    "revoke B's token": lambda m, x: do_revoke_api_token(x.tokens["b.owner"][0], actor=m.a.owner),
}
# Those where the action itself says no (a clean 4xx), not only the database underneath.
REFUSED_BY_THE_ACTION = {
    "assign B's staff to A's client",
    "visit with B's staff",
    "staff reports on B's visit",
    "hand A's visit to B's staff",
    "revoke B's token",
}


CASE_ACTORS = {"staff reports on B's visit": "staff", "request with B's service": "client_login"}


@pytest.mark.parametrize("case", sorted(CROSS_TENANT))
def test_cross_tenant_objects_are_refused_and_nothing_changes(
    matrix: TenantMatrix, extras: Extras, case: str
) -> None:
    before = snapshot(matrix)
    # Each attempt acts as the member it names (the database filters for that one, as a request
    # of theirs would): the owner, but for the two cases of a staff member and a client login.
    act(getattr(matrix.a, CASE_ACTORS.get(case, "owner")))
    error = attempt(lambda: CROSS_TENANT[case](matrix, extras))
    assert error is None or isinstance(error, REFUSALS), repr(error)
    if case in REFUSED_BY_THE_ACTION:
        assert isinstance(error, (PermissionDenied, Http404, ValidationError)), repr(error)
    assert_unchanged(matrix, before, case)
