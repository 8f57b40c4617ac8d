"""Staff pages, invitations from email to membership, and the business switcher."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from custodia.accounts.models import User
from custodia.core.dbcontext import set_db_context
from custodia.core.permissions import Role
from custodia.tenancy.access import list_invitations, list_members, memberships_of
from custodia.tenancy.actors import ACTIVE_BUSINESS_SESSION_KEY
from custodia.tenancy.models import Invitation
from custodia.web.tenancy.views import INVITATION_SESSION_KEY
from tests.acting import act
from tests.factories import PASSWORD
from tests.web.support import anonymous, logged_in, snapshot, text, title

GENERIC = "This invitation link is not valid any more. Ask for a new one."


def invite(matrix, email: str, role: str = "staff", mailoutbox=None) -> tuple[str, str, str]:
    """The owner of A invites `email`; returns the emailed link's path, prefix and secret."""
    response = logged_in(matrix.a.owner).post("/app/staff/invite/", {"email": email, "role": role})
    assert response.status_code == 302, text(response)
    link = re.search(r"https://\S+/invite/\S+/", mailoutbox[-1].body).group(0)
    path = urlsplit(link).path
    _, prefix, secret = path.strip("/").split("/")
    return path, prefix, secret


def assert_secret_hidden(response, secret: str) -> None:
    assert secret not in response.get("Location", "")
    assert secret not in response.content.decode()


def test_staff_page_for_owner_manager_and_staff(matrix):
    a = matrix.a
    owner_page = logged_in(a.owner).get("/app/staff/")
    assert owner_page.status_code == 200 and title(owner_page) == "Staff · Custodia"
    html = owner_page.content.decode()
    assert a.staff.user.email in html and a.client_login.user.email not in html
    assert matrix.b.owner.user.email not in html
    assert '<label for="id_email">Email address' in html and '<label for="id_role">Role' in html
    assert "Change role" in html and "Deactivate" in html
    # Never on the owner's own row: the owner does not demote themself from the list.
    assert f'action="/app/staff/{a.owner.membership.pk}/role/"' not in html
    assert f'action="/app/staff/{a.manager.membership.pk}/role/"' in html
    manager_page = logged_in(a.manager).get("/app/staff/").content.decode()
    assert "Change role" not in manager_page and "Send invitation" in manager_page
    role_select = manager_page.split('id="id_role"')[1].split("</select>")[0]
    assert '<option value="owner"' not in role_select
    staff_page = logged_in(a.staff).get("/app/staff/").content.decode()
    assert "Send invitation" not in staff_page and "Deactivate" not in staff_page


def test_bad_invite_input_is_a_400_with_a_message(matrix, mailoutbox):
    before = snapshot(matrix)
    response = logged_in(matrix.a.manager).post(
        "/app/staff/invite/", {"email": "nope", "role": "owner"}
    )
    assert response.status_code == 400
    assert "Enter a valid email address." in text(response)
    assert "Select a valid choice." in text(response)  # a manager cannot invite an owner
    assert mailoutbox == [] and snapshot(matrix) == before


def test_invitation_for_a_new_person_end_to_end(matrix, mailoutbox):
    path, prefix, secret = invite(matrix, "New.Person@Example.test", mailoutbox=mailoutbox)
    assert mailoutbox[-1].to == ["new.person@example.test"]
    browser = anonymous()
    opened = browser.get(path)
    # The secret leaves the address at once: the next page is named by the public prefix only.
    assert opened.status_code == 302 and opened["Location"] == f"/invite/{prefix}/accept/"
    assert_secret_hidden(opened, secret)
    page = browser.get(opened["Location"])
    assert page.status_code == 200 and title(page) == "Join Alpha · Custodia"
    assert_secret_hidden(page, secret)
    assert '<label for="id_full_name">Your name' in page.content.decode()
    assert '<label for="id_password">Choose a password' in page.content.decode()

    weak = browser.post(
        f"/invite/{prefix}/accept/", {"full_name": "New Person", "password": "short"}
    )
    assert weak.status_code == 400
    assert "This password is too short." in text(weak)
    assert 'aria-describedby="id_password_helptext id_password_error"' in weak.content.decode()
    assert not User.objects.filter(email="new.person@example.test").exists()

    accepted = browser.post(
        f"/invite/{prefix}/accept/", {"full_name": "New Person", "password": PASSWORD}
    )
    assert accepted.status_code == 302 and accepted["Location"] == "/app/"
    assert_secret_hidden(accepted, secret)
    assert INVITATION_SESSION_KEY not in browser.session
    user = User.objects.get(email="new.person@example.test")
    assert browser.session[ACTIVE_BUSINESS_SESSION_KEY] == str(matrix.a.owner.tenant_id)
    dashboard = browser.get("/app/")
    assert dashboard.status_code == 200 and "Welcome to Alpha." in text(dashboard)
    assert "Your next visits" in text(dashboard)  # the staff dashboard
    act(matrix.a.owner)
    assert list_members(matrix.a.owner).get(user=user).role == "staff"

    # The link works once.
    again = anonymous()
    reopened = again.get(path)
    assert reopened["Location"] == f"/invite/{prefix}/accept/"
    refused = again.get(reopened["Location"])
    assert refused.status_code == 400 and GENERIC in text(refused)


def test_tampered_expired_or_revoked_links_are_refused_alike(matrix, mailoutbox):
    path, prefix, secret = invite(matrix, "someone@example.test", mailoutbox=mailoutbox)
    tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for bad_path in (
        f"/invite/{prefix}/{tampered}/",
        f"/invite/ffffffffffff/{secret}/",
        f"/invite/{prefix}/x/",
        f"/invite/{prefix}%00/{secret}/",
        f"/invite/{prefix}/{secret}%00/",
        "/invite/%27%3B--/x/",
    ):
        browser = anonymous()
        opened = browser.get(bad_path)
        assert opened.status_code == 302 and "/accept/" in opened["Location"]
        page = browser.get(opened["Location"])
        assert page.status_code == 400 and GENERIC in text(page)
        assert (
            browser.post(opened["Location"], {"full_name": "X", "password": PASSWORD}).status_code
            == 400
        )
    # Going to the accept page without having opened the link shows the same message.
    assert GENERIC in text(anonymous().get(f"/invite/{prefix}/accept/"))

    # Revoked after opening: refused on accept, nothing created.
    browser = anonymous()
    browser.get(path)
    act(matrix.a.owner)
    invitation = list_invitations(matrix.a.owner).get()
    owner = logged_in(matrix.a.owner)
    pending = owner.get("/app/staff/")
    assert "someone@example.test" in text(pending)
    assert owner.post(f"/app/staff/invitations/{invitation.pk}/revoke/").status_code == 302
    refused = browser.post(
        f"/invite/{prefix}/accept/", {"full_name": "Some One", "password": PASSWORD}
    )
    assert refused.status_code == 400 and GENERIC in text(refused)
    assert not User.objects.filter(email="someone@example.test").exists()
    assert "No pending invitations." in text(owner.get("/app/staff/"))


def test_logged_in_person_accepts_with_their_account(matrix, mailoutbox):
    outsider = matrix.outsider  # owner of Bravo, invited to Alpha
    path, prefix, secret = invite(
        matrix, outsider.user.email, role="manager", mailoutbox=mailoutbox
    )
    browser = logged_in(outsider)
    opened = browser.get(path)
    assert opened["Location"] == f"/invite/{prefix}/accept/"
    page = browser.get(opened["Location"])
    assert "Accept invitation" in text(page) and "Choose a password" not in text(page)
    old_session = browser.session.session_key
    accepted = browser.post(f"/invite/{prefix}/accept/")
    assert accepted.status_code == 302 and accepted["Location"] == "/app/"
    assert_secret_hidden(accepted, secret)
    # A privilege change gets a new session id.
    assert browser.session.session_key != old_session
    assert browser.session[ACTIVE_BUSINESS_SESSION_KEY] == str(matrix.a.owner.tenant_id)
    dashboard = browser.get("/app/")
    assert "Alpha Client" in text(browser.get("/app/clients/"))
    # Now in two businesses: the switcher appears.
    html = dashboard.content.decode()
    assert '<label for="switch-business">Business</label>' in html
    assert "Alpha (Manager)" in html and "Bravo (Owner)" in html


def test_invitee_with_an_account_is_asked_to_log_in_and_a_wrong_account_is_refused(
    matrix, mailoutbox
):
    path, prefix, _secret = invite(matrix, matrix.b.staff.user.email, mailoutbox=mailoutbox)
    browser = anonymous()
    page = browser.get(browser.get(path)["Location"])
    assert "already have a Custodia account" in text(page)
    assert f'href="/accounts/login/?next=/invite/{prefix}/accept/"' in page.content.decode()

    wrong = logged_in(matrix.b.manager)
    wrong.get(path)
    page = wrong.get(f"/invite/{prefix}/accept/")
    assert "sent to a different email address" in text(page)
    before = snapshot(matrix)
    refused = wrong.post(f"/invite/{prefix}/accept/")
    assert refused.status_code == 400
    assert "This invitation was sent to a different email address." in text(refused)
    assert snapshot(matrix) == before


def test_owner_changes_roles_and_deactivates_members(matrix):
    a = matrix.a
    owner = logged_in(a.owner)
    assert (
        owner.post(f"/app/staff/{a.staff.membership.pk}/role/", {"role": "manager"}).status_code
        == 302
    )
    act(a.owner)
    assert list_members(a.owner).get(pk=a.staff.membership.pk).role == "manager"
    bad = owner.post(f"/app/staff/{a.staff.membership.pk}/role/", {"role": "client"})
    assert bad.status_code == 400 and "Choose a valid role." in text(bad)
    # The last owner cannot step down.
    last = owner.post(f"/app/staff/{a.owner.membership.pk}/role/", {"role": "staff"})
    assert last.status_code == 400 and "at least one active owner" in text(last)

    assert owner.post(f"/app/staff/{a.other_staff.membership.pk}/deactivate/").status_code == 302
    act(a.owner)
    assert not list_members(a.owner).get(pk=a.other_staff.membership.pk).is_active
    # The deactivated member has no business any more: a clear page, not an error.
    page = logged_in(a.other_staff).get("/app/")
    assert page.status_code == 403 and "You are not part of a business" in text(page)
    myself = owner.post(f"/app/staff/{a.owner.membership.pk}/deactivate/")
    assert myself.status_code == 400 and "You cannot deactivate yourself." in text(myself)


def test_manager_cannot_deactivate_a_manager_or_owner(matrix):
    a = matrix.a
    before = snapshot(matrix)
    manager = logged_in(a.manager)
    assert manager.post(f"/app/staff/{a.owner.membership.pk}/deactivate/").status_code == 403
    assert (
        manager.post(f"/app/staff/{a.owner.membership.pk}/role/", {"role": "staff"}).status_code
        == 403
    )
    assert manager.post(f"/app/staff/{matrix.b.staff.membership.pk}/deactivate/").status_code == 404
    assert manager.post("/app/staff/not-an-id/deactivate/").status_code == 404
    assert snapshot(matrix) == before
    assert manager.post(f"/app/staff/{a.staff.membership.pk}/deactivate/").status_code == 302


def test_switching_business_checks_membership_and_renews_the_session(matrix):
    a, b = matrix.a, matrix.b
    # Give Bravo's owner a membership in Alpha too (as the invitation flow would).
    from tests.factories import add_member

    add_member(a.owner, b.owner.user, Role.MANAGER)
    browser = logged_in(b.owner)
    page = browser.get("/app/")
    assert "Switch business" in text(page)
    old_key = browser.session.session_key
    switched = browser.post("/app/switch/", {"business": str(a.owner.tenant_id)})
    assert switched.status_code == 302 and switched["Location"] == "/app/"
    assert browser.session.session_key != old_key
    assert browser.session[ACTIVE_BUSINESS_SESSION_KEY] == str(a.owner.tenant_id)
    assert "Alpha Client" in text(browser.get("/app/clients/"))

    # Someone may only switch to a business they belong to.
    alone = logged_in(a.manager)
    key = alone.session.session_key
    for target in (str(b.owner.tenant_id), "nonsense", ""):
        assert alone.post("/app/switch/", {"business": target}).status_code == 404
    assert alone.session.session_key == key
    assert alone.session[ACTIVE_BUSINESS_SESSION_KEY] == str(a.owner.tenant_id)
    assert "Bravo Client" not in text(alone.get("/app/clients/"))
    assert alone.get("/app/switch/").status_code == 405
    assert anonymous().post("/app/switch/", {"business": str(a.owner.tenant_id)}).status_code == 302


def test_invitation_rows_keep_only_a_digest(matrix, mailoutbox):
    _path, prefix, secret = invite(matrix, "digest@example.test", mailoutbox=mailoutbox)
    set_db_context(lookup=prefix)
    row = Invitation.objects.values().get(prefix=prefix)
    assert secret not in str(row)
    act(matrix.a.owner)
    assert list(memberships_of(matrix.a.owner.user))
