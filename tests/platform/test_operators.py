"""Operator accounts: made, listed and disabled from the command line only, never members of a
business (in the action and in the database), their rows unwritable from any other context."""

from __future__ import annotations

import io
import re

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, transaction
from django.urls import reverse

from custodia.accounts.mfa import is_platform_operator
from custodia.core.audit import AuditAction
from custodia.core.dbcontext import set_db_context
from custodia.core.permissions import Role
from custodia.platform.models import Operator
from custodia.tenancy.actions import do_accept_invitation, do_create_business
from custodia.tenancy.models import Membership
from tests.acting import act
from tests.factories import UserFactory
from tests.platform.support import make_operator, platform_events, signed_in
from tests.tenancy.test_actions import invitation_proof, invite

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("operator", *args, stdout=out)
    return out.getvalue()


def test_create_mails_a_set_password_link_and_prints_no_password(smtp_server):
    output = run("create", "--email", "Olive@Platform.example", "--name", "Olive Operator")
    assert "olive@platform.example" in output
    assert "password" not in output.replace("set their password", "").lower()
    [mail] = smtp_server.wait_for(1)
    assert mail.recipients == ["olive@platform.example"]
    [link] = [link for link in mail.links() if "/accounts/password/reset/key/" in link]
    with transaction.atomic():
        set_db_context(lookup="platform-console")
        operator = Operator.objects.select_related("user").get()
    user = operator.user
    assert not user.has_usable_password()
    assert user.full_name == "Olive Operator"
    # The link is a working set-password link for this login.
    path = re.sub(r"^https://[^/]+", "", link)
    page = signed_in_anonymous_get(path)
    assert page.status_code in (200, 302)
    if page.status_code == 302:
        assert "/accounts/password/reset/key/" in page["Location"]
    # Its audit event (no login: the console's) is checked by the browser test, on the admin
    # connection (tests/e2e/test_operator_console.py).


def signed_in_anonymous_get(path: str):
    from tests.conftest import HttpsClient

    return HttpsClient().get(path)


def test_bad_input_is_a_command_error():
    with pytest.raises(CommandError, match="--email: enter a valid email address"):
        run("create", "--email", "not-an-address", "--name", "X")
    with pytest.raises(CommandError, match="--name"):
        run("create", "--email", "x@platform.example", "--name", "  ")
    with pytest.raises(CommandError, match="No operator has the email"):
        run("disable", "--email", "nobody@platform.example")


def test_a_member_of_a_business_cannot_become_an_operator(matrix):
    email = matrix.a.staff.user.email
    with pytest.raises(CommandError, match="is a member of a business"):
        run("create", "--email", email, "--name", "Sam")
    # The database refuses it too, whatever the code above it does.
    with pytest.raises(IntegrityError, match="member of a business cannot be a platform operator"):
        with transaction.atomic():
            set_db_context(lookup="platform-console")
            Operator.objects.create(user=matrix.a.staff.user)


def test_an_operator_cannot_become_a_member(matrix):
    operator = make_operator()
    owner = matrix.a.owner
    act(owner)
    with pytest.raises(IntegrityError, match="operator cannot be a member of a business"):
        with transaction.atomic():
            Membership.objects.create(tenant_id=owner.tenant_id, user=operator, role=Role.STAFF)


def test_operator_rows_are_written_only_in_the_console_context(matrix):
    user = UserFactory()
    # The login's own context (an SQL injection in their session has it): no row can be added.
    with pytest.raises(DatabaseError, match="row-level security"):
        with transaction.atomic():
            set_db_context(user_id=user.pk)
            Operator.objects.create(user=user)
    operator = make_operator()
    with transaction.atomic():
        set_db_context(user_id=operator.pk)
        assert Operator.objects.filter(user=operator).update(disabled_at=None) == 0
    # A member's own context, naming a member's login: refused by row-level security like any
    # other login, never by the membership check (which would tell who holds a membership).
    member = matrix.a.manager.user
    with pytest.raises(DatabaseError, match="row-level security"):
        with transaction.atomic():
            set_db_context(user_id=member.pk)
            Operator.objects.create(user=member)
    # An owner's context sees no operator at all.
    act(matrix.a.owner)
    assert Operator.objects.count() == 0


def test_staff_and_superuser_flags_make_no_operator(web_as, matrix, monkeypatch):
    from custodia.accounts.models import User

    monkeypatch.setattr(User, "is_superuser", property(lambda user: True), raising=False)
    monkeypatch.setattr(User, "is_staff", property(lambda user: True), raising=False)
    assert web_as(matrix.a.manager).get("/app/").status_code == 200
    assert web_as(matrix.a.manager).get(reverse("operator_console")).status_code == 404


def test_list_then_disable_ends_the_operators_sessions():
    operator = make_operator()
    set_db_context(user_id=operator.pk)
    assert is_platform_operator(operator)
    browser = signed_in(operator)
    assert browser.get(reverse("operator_console")).status_code == 200
    listed = run("list")
    assert re.search(r"olive@platform\.example\s+Olive Operator\s+created \S+\s+active", listed)

    output = run("disable", "--email", "olive@platform.example")
    assert "disabled" in output
    assert "1 session(s) ended" in output
    answer = browser.get(reverse("operator_console"))
    assert answer.status_code == 302
    assert answer["Location"].startswith(reverse("account_login"))
    assert re.search(r"olive@platform\.example.*disabled", run("list"))
    set_db_context(user_id=operator.pk)
    assert not is_platform_operator(operator)
    # Signed in again, a disabled operator has no console.
    assert signed_in(operator).get(reverse("operator_console")).status_code == 404
    with pytest.raises(CommandError, match="already disabled"):
        run("disable", "--email", "olive@platform.example")
    # The console's events name no login: the operator's own context does not read them.
    assert platform_events(operator, AuditAction.OPERATOR_CREATE) == []


def test_a_mail_that_cannot_be_sent_is_said_and_the_operator_kept(smtp_server):
    smtp_server.stop()
    with pytest.raises(CommandError, match="could not be sent"):
        run("create", "--email", "olive@platform.example", "--name", "Olive Operator")
    assert "olive@platform.example  Olive Operator" in run("list")


def test_an_operator_cannot_accept_an_invitation_or_own_a_new_business(matrix, smtp_server):
    operator = make_operator()
    with pytest.raises(ValidationError, match="platform operator's"):
        do_create_business(name="Side business", owner=operator)
    _invitation, prefix, secret = invite(smtp_server, matrix.a.owner, operator.email)
    with pytest.raises(ValidationError, match="platform operator's"):
        do_accept_invitation(prefix, invitation_proof(secret), user=operator)
