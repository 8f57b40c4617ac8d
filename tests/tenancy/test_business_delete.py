"""An owner deletes their business: everything goes, and its encryption keys are destroyed."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from custodia.accounts.models import ApiToken
from custodia.accounts.stepup import StepUpRequired
from custodia.clients.models import Client
from custodia.crypto import keystore
from custodia.crypto.errors import KeyUnavailable
from custodia.crypto.keyring import keys_for
from custodia.tenancy.actions import do_delete_business
from custodia.tenancy.models import Business
from tests.acting import act
from tests.audit.support import chain_events, sign_in_events
from tests.factories import stale
from tests.web.support import actor_for, age_session, logged_in, snapshot, text

URL = "/app/business/delete/"
MINUTE = 60

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


def test_the_owner_deletes_the_business_and_its_keys_are_destroyed_on_commit(
    matrix, django_capture_on_commit_callbacks
):
    a, b = matrix.a, matrix.b
    act(a.owner)
    business = Business.objects.get(pk=a.owner.tenant_id)
    assert keystore.path_for(business.pk).exists()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        do_delete_business(business, actor=a.owner, confirm_slug=f" {business.slug} ")
    # Rows gone at once; the keys only once the deletion commits.
    act(a.owner)
    assert not Business.objects.filter(pk=business.pk).exists()
    assert not Client.objects.filter(tenant_id=business.pk).exists()
    assert keystore.path_for(business.pk).exists()
    for callback in callbacks:
        callback()
    assert not keystore.path_for(business.pk).exists()
    with pytest.raises(KeyUnavailable):
        keys_for(business.pk, refresh=True)
    # The other business is untouched and still reads.
    act(b.owner)
    assert Client.objects.get(pk=b.client.pk).email == b.client.email
    # Recorded in the business's chain, on the owner's own platform chain, and the destruction.
    in_chain = [e["action"] for e in chain_events(a.owner)]
    assert in_chain[-1] == "business.delete"
    mine = [
        (e["action"], e["target_id"], json.loads(e["detail"]).get("existed"))
        for e in sign_in_events(a.owner.user.pk)
    ]
    assert mine[-2:] == [
        ("business.delete", str(business.pk), None),
        ("crypto.key.destroy", str(business.pk), True),
    ]


def test_deletion_needs_the_owner_a_fresh_step_up_and_the_slug(matrix):
    a = matrix.a
    act(a.owner)
    business = Business.objects.get(pk=a.owner.tenant_id)
    act(a.manager)
    with pytest.raises(PermissionDenied):
        do_delete_business(business, actor=a.manager, confirm_slug=business.slug)
    act(a.owner)
    with pytest.raises(StepUpRequired):
        do_delete_business(business, actor=stale(a.owner), confirm_slug=business.slug)
    with pytest.raises(ValidationError) as refused:
        do_delete_business(business, actor=a.owner, confirm_slug="something-else")
    assert refused.value.message_dict == {
        "confirm": [f"Type {business.slug} to confirm the deletion."]
    }
    act(a.owner)
    assert Business.objects.filter(pk=business.pk).exists()
    assert keystore.path_for(business.pk).exists()


def test_the_delete_page_asks_for_the_slug_then_deletes(matrix, django_capture_on_commit_callbacks):
    a = matrix.a
    act(a.owner)
    business = Business.objects.get(pk=a.owner.tenant_id)
    browser = logged_in(a.owner)
    page = browser.get(URL)
    assert page.status_code == 200
    assert f"Type {business.slug} to confirm." in text(page)
    wrong = browser.post(URL, {"confirm": "nope"})
    assert wrong.status_code == 400
    assert f"Type {business.slug} to confirm the deletion." in text(wrong)
    with django_capture_on_commit_callbacks(execute=True):
        done = browser.post(URL, {"confirm": business.slug})
    assert done.status_code == 302 and done["Location"] == "/"
    assert f"{business.name} was deleted and its encryption keys destroyed." in text(
        browser.get("/", follow=True)
    )
    assert not keystore.path_for(business.pk).exists()
    act(a.owner)
    assert not Business.objects.filter(pk=business.pk).exists()


def test_a_stale_session_is_sent_to_step_up_first(matrix):
    a = matrix.a
    browser = logged_in(a.owner)
    age_session(browser, 10 * MINUTE)
    act(a.owner)
    slug = Business.objects.get(pk=a.owner.tenant_id).slug
    answer = browser.post(URL, {"confirm": slug})
    assert answer.status_code == 302 and answer["Location"].startswith("/app/step-up/")
    act(a.owner)
    assert Business.objects.filter(pk=a.owner.tenant_id).exists()


@pytest.mark.parametrize("role", ["manager", "staff", "client"])
def test_no_one_else_can_reach_it(matrix, role):
    before = snapshot(matrix)
    browser = logged_in(actor_for(matrix, role))
    act(matrix.a.owner)
    slug = Business.objects.get(pk=matrix.a.owner.tenant_id).slug
    assert browser.get(URL).status_code == 403
    assert browser.post(URL, {"confirm": slug}).status_code == 403
    assert snapshot(matrix) == before
    assert keystore.path_for(matrix.a.owner.tenant_id).exists()


def test_the_outsider_reaches_only_their_own_business(matrix):
    """The page acts on the signed-in owner's own business: another business's slug is refused."""
    before = snapshot(matrix)
    browser = logged_in(matrix.outsider)
    act(matrix.a.owner)
    slug = Business.objects.get(pk=matrix.a.owner.tenant_id).slug
    page = browser.get(URL)
    assert page.status_code == 200 and "Close or delete Bravo" in text(page)
    assert browser.post(URL, {"confirm": slug}).status_code == 400
    assert snapshot(matrix) == before
    assert keystore.path_for(matrix.a.owner.tenant_id).exists()


def test_deletion_takes_every_members_tokens_and_invitations_with_it(
    matrix, django_capture_on_commit_callbacks
):
    """Rows the owner cannot see under RLS (other members' API tokens) go too."""
    from custodia.accounts.actions import do_create_api_token
    from custodia.core.permissions import Role
    from custodia.tenancy.actions import do_invite_member

    a = matrix.a
    for member in (a.owner, a.manager):
        act(member)
        do_create_api_token(actor=member, name="before deletion")
    act(a.owner)
    do_invite_member(actor=a.owner, email="newcomer@example.test", role=Role.STAFF)
    act(a.owner)
    business = Business.objects.get(pk=a.owner.tenant_id)
    with django_capture_on_commit_callbacks(execute=True):
        do_delete_business(business, actor=a.owner, confirm_slug=business.slug)
    # What the commit would check: no row is left pointing at the deleted memberships or
    # business (the tokens of the manager, which the owner cannot see, included).
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    act(a.manager)
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("role", ["manager", "staff", "outsider"])
def test_only_the_owner_in_their_business_can_delete_its_tokens(matrix, role):
    from django.db.utils import ProgrammingError

    from custodia.accounts.actions import do_create_api_token

    act(matrix.a.manager)
    do_create_api_token(actor=matrix.a.manager, name="kept")
    act(actor_for(matrix, role))
    with pytest.raises(ProgrammingError, match="only an owner of business"):
        with connection.cursor() as cursor:
            cursor.execute("SELECT custodia_delete_business_tokens(%s)", [matrix.a.owner.tenant_id])
