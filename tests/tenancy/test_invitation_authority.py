"""An invitation grants only what its sender may still grant, and keeps no address once spent.

The attack (issue 12, item 8): a manager about to be removed invites another address of their
own as manager, is deactivated, then accepts, and is a manager again.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from custodia.accounts.models import User
from custodia.audit.models import AuditEvent
from custodia.core.actor import Actor
from custodia.core.dbcontext import clear, set_db_context
from custodia.core.permissions import Role, may_grant
from custodia.tenancy.actions import (
    ALREADY_ACCEPTED,
    INVALID_INVITATION,
    do_accept_invitation,
    do_change_role,
    do_deactivate_member,
    do_revoke_invitation,
    invitation_proof,
)
from custodia.tenancy.models import Invitation, Membership
from tests.acting import act
from tests.factories import TenantMatrix, UserFactory, add_member, authenticated
from tests.mail import SmtpServer
from tests.tenancy.test_actions import NEW_PASSWORD, invite, members_of, pending

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def accept_as_new(prefix: str, secret: str) -> Actor:
    clear()  # the invitee arrives logged out
    return do_accept_invitation(
        prefix, invitation_proof(secret), user=None, full_name="Alt Ego", password=NEW_PASSWORD
    )


def revocations(owner: Actor, invitation: Invitation) -> list[dict[str, Any]]:
    act(owner)
    return list(
        AuditEvent.objects.filter(
            tenant_id=owner.tenant_id, action="invitation.revoke", target_id=invitation.pk
        ).values_list("detail", flat=True)
    )


def stored(owner: Actor, invitation: Invitation) -> Invitation:
    act(owner)
    return Invitation.objects.get(pk=invitation.pk)


def test_the_roles_each_role_may_grant() -> None:
    assert {(g, r) for g in Role for r in Role if may_grant(g, r)} == {
        *((Role.OWNER, r) for r in Role),
        *((Role.MANAGER, r) for r in (Role.MANAGER, Role.STAFF, Role.CLIENT)),
    }


def test_a_deactivated_managers_invitation_to_themself_is_dead(
    matrix: TenantMatrix, smtp_server: SmtpServer
) -> None:
    a = matrix.a
    invitation, prefix, secret = invite(
        smtp_server, a.manager, "alt.ego@example.test", Role.MANAGER
    )
    act(a.owner)
    do_deactivate_member(a.manager.membership, actor=a.owner)
    assert pending(a.owner) == []
    assert revocations(a.owner, invitation) == [{"reason": "sender deactivated"}]
    assert stored(a.owner, invitation).email == ""
    before = members_of(a.owner)
    with pytest.raises(ValidationError) as caught:
        accept_as_new(prefix, secret)
    assert caught.value.messages == [INVALID_INVITATION]
    assert members_of(a.owner) == before


def test_deactivation_revokes_only_the_members_own_pending_invitations(
    matrix: TenantMatrix, smtp_server: SmtpServer
) -> None:
    a, b = matrix.a, matrix.b
    mine, _p, _s = invite(smtp_server, a.manager, "mine@example.test")
    owners, _p, _s = invite(smtp_server, a.owner, "owners@example.test")
    elsewhere, _p, _s = invite(smtp_server, b.owner, "elsewhere@example.test")
    used, used_prefix, used_secret = invite(smtp_server, a.manager, "used@example.test")
    accept_as_new(used_prefix, used_secret)
    act(a.owner)
    do_deactivate_member(a.manager.membership, actor=a.owner)
    assert stored(a.owner, mine).revoked_at is not None
    assert [i.pk for i in pending(a.owner)] == [owners.pk]
    assert [i.pk for i in pending(b.owner)] == [elsewhere.pk]
    assert stored(a.owner, used).revoked_at is None  # accepted: deactivate that member instead
    act(a.owner)
    assert Membership.objects.get(user__email="used@example.test").is_active


def test_a_demotion_revokes_the_invitations_the_new_role_cannot_grant(
    matrix: TenantMatrix, smtp_server: SmtpServer
) -> None:
    a = matrix.a
    second = add_member(a.owner, UserFactory(), Role.OWNER)
    owner_invite, o_prefix, o_secret = invite(smtp_server, second, "boss@example.test", Role.OWNER)
    staff_invite, s_prefix, s_secret = invite(smtp_server, second, "hand@example.test")
    act(a.owner)
    do_change_role(second.membership, Role.MANAGER, actor=a.owner)
    # A manager may still invite staff: that one stands; an owner invitation does not.
    assert revocations(a.owner, owner_invite) == [{"reason": "sender's role changed"}]
    assert [i.pk for i in pending(a.owner)] == [staff_invite.pk]
    with pytest.raises(ValidationError, match=INVALID_INVITATION):
        accept_as_new(o_prefix, o_secret)
    assert accept_as_new(s_prefix, s_secret).role == Role.STAFF
    act(a.owner)
    do_change_role(second.membership, Role.STAFF, actor=a.owner)
    assert pending(a.owner) == []


@pytest.mark.parametrize(
    "change", ["deactivated", "demoted to staff", "owner now a manager", "membership deleted"]
)
def test_acceptance_checks_the_sender_even_when_nothing_revoked_it(
    matrix: TenantMatrix, smtp_server: SmtpServer, change: str
) -> None:
    """Invitations sent before revocation on removal existed, or whose sender lost their role by
    some other path, are refused at acceptance too."""
    a = matrix.a
    sender = add_member(a.owner, UserFactory(), Role.OWNER)
    role = Role.OWNER if change == "owner now a manager" else Role.MANAGER
    invitation, prefix, secret = invite(smtp_server, authenticated(sender), "x@example.test", role)
    act(a.owner)
    senders = Membership.objects.filter(pk=sender.membership.pk)
    if change == "deactivated":
        senders.update(is_active=False)
    elif change == "demoted to staff":
        senders.update(role=Role.STAFF)
    elif change == "owner now a manager":
        senders.update(role=Role.MANAGER)
    else:
        senders.delete()
    assert [i.pk for i in pending(a.owner)] == [invitation.pk]
    before = members_of(a.owner)
    with pytest.raises(ValidationError) as caught:
        accept_as_new(prefix, secret)
    assert caught.value.messages == [INVALID_INVITATION]
    assert members_of(a.owner) == before
    assert stored(a.owner, invitation).accepted_at is None


def test_the_invitee_sees_the_sender_of_their_link_and_no_other_membership(
    matrix: TenantMatrix, smtp_server: SmtpServer
) -> None:
    a = matrix.a
    _invitation, prefix, _secret = invite(smtp_server, a.manager, "who@example.test")
    set_db_context(lookup=prefix)
    assert list(Membership.objects.all()) == [a.manager.membership]
    set_db_context(lookup="0" * len(prefix))
    assert list(Membership.objects.all()) == []
    set_db_context(tenant_id=a.owner.tenant_id)
    assert list(Membership.objects.all()) == []


def test_revoking_an_accepted_invitation_is_refused_and_points_to_deactivation(
    matrix: TenantMatrix, smtp_server: SmtpServer, web_as: Any
) -> None:
    a = matrix.a
    invitation, prefix, secret = invite(smtp_server, a.owner, "joined@example.test")
    accept_as_new(prefix, secret)
    act(a.manager)
    with pytest.raises(ValidationError) as caught:
        do_revoke_invitation(invitation, actor=a.manager)
    assert caught.value.messages == [ALREADY_ACCEPTED]
    assert revocations(a.owner, invitation) == []
    # Through the page: a 400 that says so, and the membership stays.
    response = web_as(a.manager).post(f"/app/staff/invitations/{invitation.pk}/revoke/")
    assert response.status_code == 400
    assert "deactivate them" in response.content.decode()
    assert revocations(a.owner, invitation) == []
    act(a.owner)
    assert Membership.objects.get(user__email="joined@example.test").is_active


def test_revoking_twice_records_once(matrix: TenantMatrix, smtp_server: SmtpServer) -> None:
    a = matrix.a
    invitation, _prefix, _secret = invite(smtp_server, a.owner, "twice@example.test")
    act(a.manager)
    do_revoke_invitation(invitation, actor=a.manager)
    act(a.manager)
    do_revoke_invitation(invitation, actor=a.manager)
    assert len(revocations(a.owner, invitation)) == 1


def test_accepted_and_revoked_invitations_keep_no_address(
    matrix: TenantMatrix, smtp_server: SmtpServer
) -> None:
    a = matrix.a
    accepted, prefix, secret = invite(smtp_server, a.owner, "kept.not@example.test")
    revoked, _p, _s = invite(smtp_server, a.owner, "gone@example.test")
    waiting, _p, _s = invite(smtp_server, a.owner, "waiting@example.test")
    accept_as_new(prefix, secret)
    act(a.owner)
    do_revoke_invitation(revoked, actor=a.owner)
    assert stored(a.owner, accepted).email == ""
    assert stored(a.owner, revoked).email == ""
    assert stored(a.owner, waiting).email == "waiting@example.test"


def test_the_pages_refuse_a_link_whose_sender_was_removed(
    matrix: TenantMatrix, smtp_server: SmtpServer, web: Any
) -> None:
    """Opened before the sender lost their role, submitted after: a 400 that says the link is
    dead, never a 500, and no login or membership made."""
    a = matrix.a
    sender = add_member(a.owner, UserFactory(), Role.MANAGER)
    _inv, prefix, secret = invite(smtp_server, authenticated(sender), "late@example.test")
    opened = web.get(f"/invite/{prefix}/{secret}/")
    assert opened.status_code == 302 and opened["Location"] == f"/invite/{prefix}/accept/"
    assert web.get(opened["Location"]).status_code == 200
    act(a.owner)
    Membership.objects.filter(pk=sender.membership.pk).update(role=Role.STAFF)
    before = members_of(a.owner)
    answer = web.post(opened["Location"], {"full_name": "Late", "password": NEW_PASSWORD})
    assert answer.status_code == 400
    assert INVALID_INVITATION in answer.content.decode()
    assert members_of(a.owner) == before
    assert not User.objects.filter(email="late@example.test").exists()
    # Opened afresh, the page says so at once.
    assert web.get(f"/invite/{prefix}/{secret}/")["Location"] == f"/invite/{prefix}/accept/"
    assert web.get(f"/invite/{prefix}/accept/").status_code == 400
