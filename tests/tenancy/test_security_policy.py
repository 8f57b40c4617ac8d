"""A business's security settings: only its owners change them, within bounds."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404

from custodia.tenancy.actions import do_update_security_policy
from custodia.tenancy.models import Business
from tests.acting import act
from tests.web.support import actor_for, anonymous, logged_in, snapshot, text, title

URL = "/app/business/security/"
# Not owners: an owner bound by it would be sent to enrol a factor first (accounts/mfa.py).
STRICT = {
    "session_idle_minutes": "15",
    "mfa_required_managers": "on",
    "mfa_required_staff": "on",
}


def policy_of(owner) -> tuple[int, bool, bool, bool]:
    act(owner)
    business = Business.objects.get(pk=owner.tenant_id)
    return (
        business.session_idle_minutes,
        business.mfa_required_owners,
        business.mfa_required_managers,
        business.mfa_required_staff,
    )


def test_an_owner_sets_the_policy(matrix):
    browser = logged_in(matrix.a.owner)
    page = browser.get(URL)
    assert page.status_code == 200 and title(page) == "Business security · Custodia"
    html = page.content.decode()
    assert '<label for="id_session_idle_minutes">End idle sessions after (minutes)' in html
    assert 'value="30"' in html
    assert '<label for="id_mfa_required_staff">Staff must use two-factor' in html
    response = browser.post(URL, STRICT)
    assert response.status_code == 302 and response["Location"] == URL
    assert "Security settings saved." in text(browser.get(URL))
    assert policy_of(matrix.a.owner) == (15, False, True, True)
    assert policy_of(matrix.b.owner) == (30, False, False, False)
    assert 'href="/app/business/security/"' in browser.get("/app/security/").content.decode()


@pytest.mark.parametrize("role", ["manager", "staff", "other_staff", "client"])
def test_other_roles_cannot_see_or_change_it(matrix, role):
    before = snapshot(matrix)
    browser = logged_in(actor_for(matrix, role))
    assert browser.get(URL).status_code == 403
    assert browser.post(URL, STRICT).status_code == 403
    assert snapshot(matrix) == before
    assert "/app/business/security/" not in browser.get("/app/security/").content.decode()


def test_an_outsider_changes_only_their_own_business(matrix):
    response = logged_in(matrix.outsider).post(URL, STRICT)
    assert response.status_code == 302
    assert policy_of(matrix.a.owner) == (30, False, False, False)
    assert policy_of(matrix.b.owner) == (15, False, True, True)


def test_a_logged_out_visitor_is_sent_to_log_in(matrix):
    before = snapshot(matrix)
    response = anonymous().post(URL, STRICT)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert snapshot(matrix) == before


@pytest.mark.parametrize(
    ("minutes", "message"),
    [
        ("4", "Sessions end after 5 to 120 idle minutes."),
        ("121", "Sessions end after 5 to 120 idle minutes."),
        ("", "This field is required."),
        ("ten", "Enter a whole number of minutes."),
        ("99999999999999999999", "Sessions end after 5 to 120 idle minutes."),
    ],
)
def test_out_of_bounds_minutes_are_a_400_with_a_message(matrix, minutes, message):
    before = snapshot(matrix)
    response = logged_in(matrix.a.owner).post(URL, {**STRICT, "session_idle_minutes": minutes})
    assert response.status_code == 400
    assert message in text(response)
    assert snapshot(matrix) == before


def test_the_bounds_hold_at_the_edges(matrix):
    browser = logged_in(matrix.a.owner)
    for minutes in (5, 120):
        assert browser.post(URL, {"session_idle_minutes": str(minutes)}).status_code == 302
        assert policy_of(matrix.a.owner) == (minutes, False, False, False)


def test_the_action_guards_itself(matrix):
    a = matrix.a
    act(a.manager)
    with pytest.raises(PermissionDenied):
        do_update_security_policy(
            a.manager.business,
            session_idle_minutes=10,
            mfa_required_owners=False,
            mfa_required_managers=False,
            mfa_required_staff=False,
            actor=a.manager,
        )
    act(a.owner)
    with pytest.raises(Http404):
        do_update_security_policy(
            matrix.b.owner.business,
            session_idle_minutes=10,
            mfa_required_owners=False,
            mfa_required_managers=False,
            mfa_required_staff=False,
            actor=a.owner,
        )
    with pytest.raises(ValidationError):
        do_update_security_policy(
            a.owner.business,
            session_idle_minutes=121,
            mfa_required_owners=False,
            mfa_required_managers=False,
            mfa_required_staff=False,
            actor=a.owner,
        )
    assert policy_of(a.owner) == (30, False, False, False)
    assert policy_of(matrix.b.owner) == (30, False, False, False)


def test_the_database_refuses_out_of_bounds_minutes_too(matrix):
    act(matrix.a.owner)
    with pytest.raises(IntegrityError), transaction.atomic():
        Business.objects.filter(pk=matrix.a.owner.tenant_id).update(session_idle_minutes=200)
