"""Races on one invitation, on real concurrent connections to a scratch database whose rows
are committed: accepting while it is revoked (either first), two acceptances of one link at
once; and the daily erasure of spent invitations' addresses, as the operator runs it.

Each race holds one side's transaction open until the other is seen waiting for a lock in
pg_stat_activity, then commits, so the interleaving is the same on every run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import transaction

from custodia import embedded
from custodia.core.actor import Actor, acting_as
from custodia.core.permissions import Role
from custodia.tenancy.actions import (
    ALREADY_ACCEPTED,
    EXISTING_ACCOUNT,
    INVALID_INVITATION,
    do_accept_invitation,
    do_deactivate_member,
    do_revoke_invitation,
    invitation_proof,
)
from custodia.tenancy.models import Invitation
from tests import scratch
from tests.acting import act
from tests.factories import TenantMatrix, build_matrix
from tests.mail import SmtpServer
from tests.scratch import elsewhere, wait_until_blocked
from tests.tenancy.test_actions import NEW_PASSWORD, invite


@pytest.fixture(scope="module")
def scratch_database(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database of this module's own, where tests commit, and a keystore for it."""
    keys = tmp_path_factory.mktemp("race-keys")
    with scratch.database("races", django_db_blocker, keystore=keys) as name:
        yield name


@pytest.fixture
def database(scratch_database: str, django_db_blocker: Any, settings: Any) -> Iterator[str]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with django_db_blocker.unblock():
        yield scratch_database


@pytest.fixture
def world(database: str) -> TenantMatrix:
    with transaction.atomic():
        return build_matrix()


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1) as executor:
        yield executor


def committed_invite(server: SmtpServer, actor: Actor, email: str) -> tuple[Invitation, str, str]:
    with transaction.atomic():
        return invite(server, actor, email)


def row(database: str, sql: str, params: list[Any]) -> tuple[Any, ...] | None:
    """Read as the admin (no row-level security): what is really stored."""
    with embedded.admin_connection(settings.ADMIN_DATABASE, database) as admin:
        return admin.execute(sql, params).fetchone()


def state(database: str, invitation: Invitation, email: str) -> dict[str, Any]:
    stored = row(
        database,
        "SELECT accepted_at IS NOT NULL, revoked_at IS NOT NULL, email"
        " FROM tenancy_invitation WHERE id = %s",
        [invitation.pk],
    )
    assert stored is not None
    counts = row(
        database,
        "SELECT (SELECT count(*) FROM accounts_user WHERE lower(email) = %s),"
        " (SELECT count(*) FROM tenancy_membership m JOIN accounts_user u ON u.id = m.user_id"
        "  WHERE lower(u.email) = %s AND m.tenant_id = %s AND m.is_active),"
        " (SELECT count(*) FROM audit_auditevent WHERE action = 'invitation.revoke'"
        "  AND target_id = %s)",
        [email, email, invitation.tenant_id, str(invitation.pk)],
    )
    assert counts is not None
    return {
        "accepted": stored[0],
        "revoked": stored[1],
        "email": stored[2],
        "users": counts[0],
        "members": counts[1],
        "revocations": counts[2],
    }


def accept_new(prefix: str, secret: str, name: str = "Racer") -> Callable[[], Actor]:
    return lambda: do_accept_invitation(
        prefix, invitation_proof(secret), user=None, full_name=name, password=NEW_PASSWORD
    )


def revoke(invitation: Invitation, actor: Actor) -> Callable[[], Invitation]:
    def run() -> Invitation:
        # On the pool's thread: a block of its own, not the test's acting scope.
        with transaction.atomic(), acting_as(actor):
            return do_revoke_invitation(invitation, actor=actor)

    return run


def test_accepting_while_it_is_being_revoked_finds_it_revoked(
    database: str, world: TenantMatrix, smtp_server: SmtpServer, pool: ThreadPoolExecutor
) -> None:
    email = "racer.one@example.test"
    invitation, prefix, secret = committed_invite(smtp_server, world.a.owner, email)
    with transaction.atomic():
        revoke(invitation, world.a.manager)()  # holds the row until this block commits
        acceptance = elsewhere(pool, accept_new(prefix, secret))
        wait_until_blocked(database, acceptance)
    with pytest.raises(ValidationError) as caught:
        acceptance.result(timeout=30)
    assert caught.value.messages == [INVALID_INVITATION]
    # Nothing half-written: no login, no membership; revoked once, its address erased.
    assert state(database, invitation, email) == {
        "accepted": False,
        "revoked": True,
        "email": "",
        "users": 0,
        "members": 0,
        "revocations": 1,
    }


def test_accepting_while_the_sender_is_deactivated_finds_it_revoked(
    database: str, world: TenantMatrix, smtp_server: SmtpServer, pool: ThreadPoolExecutor
) -> None:
    """The attack itself, raced: a manager invites another address of their own as manager and
    accepts while the owner removes them."""
    a = world.a
    email = "alt.ego@example.test"
    with transaction.atomic():
        invitation, prefix, secret = invite(smtp_server, a.manager, email, Role.MANAGER)
    with transaction.atomic():
        act(a.owner)
        do_deactivate_member(a.manager.membership, actor=a.owner)
        acceptance = elsewhere(pool, accept_new(prefix, secret))
        wait_until_blocked(database, acceptance)
    with pytest.raises(ValidationError) as caught:
        acceptance.result(timeout=30)
    assert caught.value.messages == [INVALID_INVITATION]
    assert state(database, invitation, email) == {
        "accepted": False,
        "revoked": True,
        "email": "",
        "users": 0,
        "members": 0,
        "revocations": 1,
    }


def test_revoking_while_it_is_being_accepted_is_refused(
    database: str, world: TenantMatrix, smtp_server: SmtpServer, pool: ThreadPoolExecutor
) -> None:
    email = "racer.two@example.test"
    invitation, prefix, secret = committed_invite(smtp_server, world.a.owner, email)
    with transaction.atomic():
        accept_new(prefix, secret)()
        revocation = elsewhere(pool, revoke(invitation, world.a.manager))
        wait_until_blocked(database, revocation)
    with pytest.raises(ValidationError) as caught:
        revocation.result(timeout=30)
    assert caught.value.messages == [ALREADY_ACCEPTED]
    assert state(database, invitation, email) == {
        "accepted": True,
        "revoked": False,
        "email": "",
        "users": 1,
        "members": 1,
        "revocations": 0,
    }


def test_two_new_account_acceptances_of_one_link_make_one_account(
    database: str, world: TenantMatrix, smtp_server: SmtpServer, pool: ThreadPoolExecutor
) -> None:
    email = "racer.three@example.test"
    invitation, prefix, secret = committed_invite(smtp_server, world.a.owner, email)
    with transaction.atomic():
        accept_new(prefix, secret, "First")()
        second = elsewhere(pool, accept_new(prefix, secret, "Second"))
        wait_until_blocked(database, second)
    with pytest.raises(ValidationError) as caught:
        second.result(timeout=30)
    assert caught.value.messages == [EXISTING_ACCOUNT]
    assert state(database, invitation, email) == {
        "accepted": True,
        "revoked": False,
        "email": "",
        "users": 1,
        "members": 1,
        "revocations": 0,
    }
    assert row(database, "SELECT full_name FROM accounts_user WHERE email = %s", [email]) == (
        "First",
    )


def test_one_login_accepting_one_link_twice_at_once_joins_once(
    database: str, world: TenantMatrix, smtp_server: SmtpServer, pool: ThreadPoolExecutor
) -> None:
    person = world.b.staff.user  # B's staff member, also starting at A
    invitation, prefix, secret = committed_invite(smtp_server, world.a.owner, person.email)

    def accept() -> Actor:
        return do_accept_invitation(prefix, invitation_proof(secret), user=person)

    with transaction.atomic():
        accept()
        second = elsewhere(pool, accept)
        wait_until_blocked(database, second)
    with pytest.raises(ValidationError) as caught:
        second.result(timeout=30)
    assert caught.value.messages == [INVALID_INVITATION]
    assert state(database, invitation, person.email.lower())["members"] == 1


def test_daily_maintenance_erases_the_addresses_of_spent_invitations(
    database: str, world: TenantMatrix, smtp_server: SmtpServer
) -> None:
    a, b = world.a, world.b
    waiting, _p, _s = committed_invite(smtp_server, a.owner, "waiting@example.test")
    expired, _p, _s = committed_invite(smtp_server, a.owner, "expired@example.test")
    other, _p, _s = committed_invite(smtp_server, b.owner, "other.expired@example.test")
    # As rows written before acceptance and revocation erased the address at once.
    legacy_accepted, _p, _s = committed_invite(smtp_server, b.owner, "old.joined@example.test")
    legacy_revoked, _p, _s = committed_invite(smtp_server, a.owner, "old.revoked@example.test")
    with embedded.admin_connection(settings.ADMIN_DATABASE, database) as admin:
        admin.execute(
            "UPDATE tenancy_invitation SET expires_at = now() - interval '1 second'"
            " WHERE id = ANY(%s)",
            [[expired.pk, other.pk]],
        )
        admin.execute(
            "UPDATE tenancy_invitation SET accepted_at = now() WHERE id = %s",
            [legacy_accepted.pk],
        )
        admin.execute(
            "UPDATE tenancy_invitation SET revoked_at = now() WHERE id = %s", [legacy_revoked.pk]
        )
    call_command("retention", "run", "--only", "invitation-addresses", stdout=StringIO())

    def email_of(invitation: Invitation) -> str:
        stored = row(
            database, "SELECT email FROM tenancy_invitation WHERE id = %s", [invitation.pk]
        )
        assert stored is not None
        return str(stored[0])

    assert email_of(waiting) == "waiting@example.test"
    for spent in (expired, other, legacy_accepted, legacy_revoked):
        assert email_of(spent) == ""
