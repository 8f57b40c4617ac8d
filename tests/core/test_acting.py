"""One way to act: `acting_as` sets the database context and the current actor together, and an
action handed any other actor than the active one refuses loudly, before touching anything."""

from __future__ import annotations

import contextvars

import pytest
from django.db import connection, transaction

from custodia.clients.actions import do_create_client, do_delete_client
from custodia.clients.models import Client
from custodia.core.actor import NotTheActiveActor, acting_as, current_actor, require_active
from custodia.core.dbcontext import clear
from custodia.core.permissions import Role
from custodia.scheduling.actions import do_create_service
from custodia.tenancy.actions import do_invite_member
from tests.acting import act
from tests.factories import TenantMatrix

pytestmark = pytest.mark.django_db


def _context() -> tuple[str | None, str | None]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT custodia_tenant_id()::text, custodia_membership_id()::text")
        tenant, membership = cursor.fetchone()
    return tenant, membership


def test_acting_as_sets_the_database_context_and_the_current_actor_together(
    matrix: TenantMatrix,
) -> None:
    owner = matrix.a.owner
    before = current_actor()  # whoever built the matrix last
    assert before is not owner
    with acting_as(owner) as actor:
        assert actor is owner and current_actor() is owner
        assert _context() == (str(owner.tenant_id), str(owner.membership.pk))
    assert current_actor() is before


def test_nested_acting_hands_the_outer_actor_back_to_the_database_too(
    matrix: TenantMatrix,
) -> None:
    outer, inner = matrix.a.owner, matrix.b.owner
    with acting_as(outer):
        with acting_as(inner):
            assert _context() == (str(inner.tenant_id), str(inner.membership.pk))
        assert current_actor() is outer
        assert _context() == (str(outer.tenant_id), str(outer.membership.pk))
        # The outer business's clients are visible again, the inner one's are not.
        assert Client.objects.filter(pk=matrix.a.client.pk).exists()
        assert not Client.objects.filter(pk=matrix.b.client.pk).exists()


def test_an_action_under_another_business_owners_context_fails_loudly(
    matrix: TenantMatrix,
) -> None:
    """The attack: the database filters for business A's owner while an action is handed
    business B's owner (a door that picked the wrong actor). It must not run at all."""
    act(matrix.a.owner)
    before = Client.objects.count()
    with pytest.raises(NotTheActiveActor, match="while the database acts for"):
        do_create_client(actor=matrix.b.owner, name="Planted by mistake")
    with pytest.raises(NotTheActiveActor):
        do_delete_client(matrix.a.client, actor=matrix.b.owner)
    with pytest.raises(NotTheActiveActor):
        do_invite_member(actor=matrix.b.owner, email="x@example.test", role=Role.STAFF)
    assert Client.objects.count() == before
    assert Client.objects.filter(pk=matrix.a.client.pk).exists()


def test_an_action_for_a_lesser_role_of_the_same_business_fails_loudly(
    matrix: TenantMatrix,
) -> None:
    """Acting as the owner and handing the staff member's actor (or the reverse) is refused
    too: the role the action checks must be the role the database filters for."""
    act(matrix.a.staff)
    with pytest.raises(NotTheActiveActor):
        do_create_service(actor=matrix.a.owner, name="Walk", duration_minutes=30, price_cents=0)
    act(matrix.a.owner)
    with pytest.raises(NotTheActiveActor):
        do_create_service(actor=matrix.a.staff, name="Walk", duration_minutes=30, price_cents=0)


def test_an_action_with_no_active_actor_fails_loudly(matrix: TenantMatrix) -> None:
    """Outside any acting_as (a fresh context: a command or job that forgot to act)."""

    def nobody_acts() -> None:
        assert current_actor() is None
        with transaction.atomic():
            clear()
            with pytest.raises(NotTheActiveActor, match="no active actor"):
                do_create_client(actor=matrix.a.owner, name="Nobody acts")

    contextvars.Context().run(nobody_acts)


def test_the_message_names_ids_only(matrix: TenantMatrix) -> None:
    act(matrix.a.owner)
    with pytest.raises(NotTheActiveActor) as refused:
        require_active(matrix.b.owner)
    message = str(refused.value)
    assert str(matrix.b.owner.membership.pk) in message
    assert matrix.b.owner.user.email not in message
