"""An owner deletes their business: everything goes, and its encryption keys are destroyed."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connections

from custodia.accounts.stepup import StepUpRequired
from custodia.clients.models import Client
from custodia.crypto import keystore
from custodia.crypto.errors import KeyUnavailable
from custodia.crypto.keyring import keys_for
from custodia.tenancy.actions import do_delete_business
from custodia.tenancy.context import activate
from custodia.tenancy.models import Business
from tests.audit.support import chain_events, sign_in_events
from tests.factories import stale
from tests.web.support import actor_for, age_session, logged_in, snapshot, text

URL = "/app/business/delete/"
MINUTE = 60

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


def key_events() -> list[tuple]:
    """Key destructions (written by the owner role, on the platform chain)."""
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT target_id, detail FROM audit_auditevent"
            " WHERE action = 'crypto.key.destroy' AND tenant_id IS NULL ORDER BY id"
        )
        return cursor.fetchall()


def test_the_owner_deletes_the_business_and_its_keys_are_destroyed_on_commit(
    matrix, django_capture_on_commit_callbacks
):
    a, b = matrix.a, matrix.b
    activate(a.owner)
    business = Business.objects.get(pk=a.owner.tenant_id)
    assert keystore.path_for(business.pk).exists()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        do_delete_business(business, actor=a.owner, confirm_slug=f" {business.slug} ")
    # Rows gone at once; the keys only once the deletion commits.
    activate(a.owner)
    assert not Business.objects.filter(pk=business.pk).exists()
    assert not Client.objects.filter(tenant_id=business.pk).exists()
    assert keystore.path_for(business.pk).exists()
    for callback in callbacks:
        callback()
    assert not keystore.path_for(business.pk).exists()
    with pytest.raises(KeyUnavailable):
        keys_for(business.pk, refresh=True)
    # The other business is untouched and still reads.
    activate(b.owner)
    assert Client.objects.get(pk=b.client.pk).email == b.client.email
    # Recorded in the business's chain, on the owner's own platform chain, and the destruction.
    in_chain = [e["action"] for e in chain_events(a.owner)]
    assert in_chain[-1] == "business.delete"
    mine = [(e["action"], e["target_id"]) for e in sign_in_events(a.owner.user.pk)]
    assert mine[-1] == ("business.delete", str(business.pk))
    destroyed = [(row[0], json.loads(row[1])["existed"]) for row in key_events()]
    assert destroyed == [(str(business.pk), True)]


def test_deletion_needs_the_owner_a_fresh_step_up_and_the_slug(matrix):
    a = matrix.a
    activate(a.owner)
    business = Business.objects.get(pk=a.owner.tenant_id)
    with pytest.raises(PermissionDenied):
        do_delete_business(business, actor=a.manager, confirm_slug=business.slug)
    with pytest.raises(StepUpRequired):
        do_delete_business(business, actor=stale(a.owner), confirm_slug=business.slug)
    with pytest.raises(ValidationError) as refused:
        do_delete_business(business, actor=a.owner, confirm_slug="something-else")
    assert refused.value.message_dict == {
        "confirm": [f"Type {business.slug} to confirm the deletion."]
    }
    activate(a.owner)
    assert Business.objects.filter(pk=business.pk).exists()
    assert keystore.path_for(business.pk).exists()


def test_the_delete_page_asks_for_the_slug_then_deletes(matrix, django_capture_on_commit_callbacks):
    a = matrix.a
    activate(a.owner)
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
    activate(a.owner)
    assert not Business.objects.filter(pk=business.pk).exists()


def test_a_stale_session_is_sent_to_step_up_first(matrix):
    a = matrix.a
    browser = logged_in(a.owner)
    age_session(browser, 10 * MINUTE)
    activate(a.owner)
    slug = Business.objects.get(pk=a.owner.tenant_id).slug
    answer = browser.post(URL, {"confirm": slug})
    assert answer.status_code == 302 and answer["Location"].startswith("/app/step-up/")
    activate(a.owner)
    assert Business.objects.filter(pk=a.owner.tenant_id).exists()


@pytest.mark.parametrize("role", ["manager", "staff", "client", "outsider"])
def test_no_one_else_can_reach_it(matrix, role):
    before = snapshot(matrix)
    browser = logged_in(actor_for(matrix, role))
    activate(matrix.a.owner)
    slug = Business.objects.get(pk=matrix.a.owner.tenant_id).slug
    assert browser.get(URL).status_code in (403, 404) or role == "outsider"
    browser.post(URL, {"confirm": slug})
    assert snapshot(matrix) == before
    assert keystore.path_for(matrix.a.owner.tenant_id).exists()
