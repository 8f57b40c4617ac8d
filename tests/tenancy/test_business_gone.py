"""When the business a session acts for goes away, the session acts for no business until the
person chooses one, and is told so; deleting a business ends its members' sessions for it
(issue 12, item 9).

The attack: a form opened for a business that was then deleted (or that the person was removed
from) submitted into the person's other business, because the next request quietly fell back to
their first remaining membership.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.sessions.models import Session

from custodia.core.actor import Actor
from custodia.core.permissions import Role
from custodia.tenancy.actors import (
    ACTIVE_BUSINESS_SESSION_KEY,
    BUSINESS_GONE,
    CHOOSE_BUSINESS_SESSION_KEY,
)
from custodia.tenancy.models import Business, Membership
from tests.acting import act
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix, add_member
from tests.web.support import logged_in, snapshot, text

CHOOSER = "/app/choose/"
NEW_CLIENT = "/app/clients/new/"
DELETE = "/app/business/delete/"
COOKIE = "__Host-sessionid"

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


def signed_in(browser: HttpsClient) -> bool:
    """The dashboard answers as someone signed in (not a redirect to the login page)."""
    response = browser.get("/app/")
    return not (response.status_code == 302 and response["Location"].startswith("/accounts/"))


def submit_new_client(browser: HttpsClient) -> Any:
    return browser.post(NEW_CLIENT, {"name": "Carla Cat", "email": "carla@example.test"})


def delete_business(browser: HttpsClient, owner: Actor, capture: Any) -> None:
    act(owner)
    slug = Business.objects.get(pk=owner.tenant_id).slug
    with capture(execute=True):
        done = browser.post(DELETE, {"confirm": slug})
    assert done.status_code == 302, text(done)


def test_a_form_for_a_membership_that_ended_does_not_submit_into_another_business(
    matrix: TenantMatrix,
) -> None:
    a, b = matrix.a, matrix.b
    in_b = add_member(b.owner, a.manager.user, Role.MANAGER)
    browser = logged_in(a.manager)
    assert browser.get(NEW_CLIENT).status_code == 200  # the form, opened for Alpha
    # The membership ends while this session lives on (a request racing the removal, which
    # otherwise ends the member's sessions for the business).
    act(a.owner)
    Membership.objects.filter(pk=a.manager.membership.pk).update(is_active=False)
    before = snapshot(matrix)

    answer = submit_new_client(browser)
    assert answer.status_code == 302 and answer["Location"] == CHOOSER
    assert snapshot(matrix) == before  # nothing written, in Bravo or anywhere
    assert ACTIVE_BUSINESS_SESSION_KEY not in browser.session
    page = browser.get(CHOOSER)
    assert page.status_code == 200
    assert BUSINESS_GONE in text(page)
    assert "Bravo" in text(page) and "Alpha" not in text(page)
    # Not silently Bravo on the next page either, until the person chooses.
    again = browser.get("/app/")
    assert again.status_code == 302 and again["Location"] == CHOOSER
    assert submit_new_client(browser)["Location"] == CHOOSER
    assert snapshot(matrix) == before
    chosen = browser.post("/app/switch/", {"business": str(b.owner.tenant_id)})
    assert chosen.status_code == 302 and chosen["Location"] == "/app/"
    assert CHOOSE_BUSINESS_SESSION_KEY not in browser.session
    dashboard = browser.get("/app/")
    assert dashboard.status_code == 200 and "Bravo" in text(dashboard)
    assert in_b.tenant_id == b.owner.tenant_id


def test_the_deleting_owners_other_tab_does_not_submit_into_their_other_business(
    matrix: TenantMatrix, django_capture_on_commit_callbacks: Any
) -> None:
    a, b = matrix.a, matrix.b
    add_member(b.owner, a.owner.user, Role.MANAGER)
    browser = logged_in(a.owner)
    assert browser.get(NEW_CLIENT).status_code == 200  # a second tab, opened for Alpha
    delete_business(browser, a.owner, django_capture_on_commit_callbacks)
    act(b.owner)
    before = snapshot(matrix)

    answer = submit_new_client(browser)
    assert answer.status_code == 302 and answer["Location"] == CHOOSER
    assert snapshot(matrix) == before
    page = browser.get(CHOOSER)
    assert "Alpha was deleted and its encryption keys destroyed." in text(page)
    assert "Bravo" in text(page)


def test_deleting_a_business_ends_its_members_sessions_for_it(
    matrix: TenantMatrix, django_capture_on_commit_callbacks: Any
) -> None:
    a, b = matrix.a, matrix.b
    staff_in_b = add_member(b.owner, a.staff.user, Role.STAFF)
    members = [a.manager, a.staff, a.other_staff, a.client_login]
    ended = [logged_in(member) for member in members]
    ended.append(logged_in(a.owner))  # the owner's other browser
    kept = [logged_in(staff_in_b), logged_in(b.owner)]
    owner = logged_in(a.owner)
    for browser in [*ended, *kept, owner]:
        assert signed_in(browser)  # each is now in the session list
    keys = [browser.cookies[COOKIE].value for browser in ended]

    delete_business(owner, a.owner, django_capture_on_commit_callbacks)

    assert not Session.objects.filter(session_key__in=keys).exists()
    for browser in ended:
        assert not signed_in(browser)
    for browser in kept:
        assert signed_in(browser)
    # The deleting request's own session stays, acting for no business.
    assert signed_in(owner)
    assert "You are not part of a business" in text(owner.get("/app/"))


def test_the_chooser_lists_only_ones_own_businesses(matrix: TenantMatrix) -> None:
    page = logged_in(matrix.a.staff).get(CHOOSER)
    assert page.status_code == 200
    assert "Alpha" in text(page) and "Bravo" not in text(page)
    assert HttpsClient().get(CHOOSER)["Location"].startswith("/accounts/login/")
