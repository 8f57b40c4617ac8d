"""A business's own security page: only an owner publishes or withdraws it (audited), it shows
that business's figures and no client's or member's data, and any other address is a 404."""

from __future__ import annotations

from typing import Any

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.core.exceptions import PermissionDenied
from django.db import connection

from custodia.audit.models import AuditEvent
from custodia.core.actor import Actor
from custodia.core.dbcontext import set_db_context
from custodia.tenancy.closing import do_close_business
from custodia.tenancy.models import Business
from custodia.transparency.actions import do_publish_security_page, do_unpublish_security_page
from custodia.transparency.models import Publication
from tests.acting import act
from tests.factories import TenantMatrix

SETTINGS = "/app/business/transparency/"


def page_of(actor: Actor) -> str:
    return f"/b/{actor.business.slug}/security/"


def published(actor: Actor) -> bool:
    act(actor)
    return Publication.objects.filter(tenant_id=actor.tenant_id).exists()


def publish(actor: Actor) -> None:
    act(actor)
    do_publish_security_page(actor=actor)


def test_unpublished_pages_and_unknown_slugs_are_404(web: Any, matrix: TenantMatrix) -> None:
    assert web.get(page_of(matrix.a.owner)).status_code == 404
    assert web.get("/b/no-such-business/security/").status_code == 404
    assert web.get(f"/b/{'x' * 300}/security/").status_code == 404
    # Not a slug at all (a NUL byte, which the database driver would refuse): 404, not 500.
    for odd in ("%00", "a%00b", "%C3%A9t%C3%A9", "a.b"):
        assert web.get(f"/b/{odd}/security/").status_code == 404, odd


def test_an_owner_publishes_and_withdraws_it(web: Any, web_as: Any, matrix: TenantMatrix) -> None:
    owner = web_as(matrix.a.owner)
    settings_page = owner.get(SETTINGS)
    assert settings_page.status_code == 200
    assert b'id="unpublished"' in settings_page.content
    response = owner.post(SETTINGS, {"publish": "yes"})
    assert response.status_code == 302 and response["Location"] == SETTINGS
    assert published(matrix.a.owner)
    assert b'id="published"' in owner.get(SETTINGS).content

    page = web.get(page_of(matrix.a.owner))
    assert page.status_code == 200
    text = " ".join(page.content.decode().split())
    assert "Security at Alpha" in text
    assert 'id="figure-keys"' in text and 'id="figure-drill"' in text
    assert 'id="retention-audit"' in text and 'id="subprocessor-smtp"' in text

    assert owner.post(SETTINGS, {"publish": "no"}).status_code == 302
    assert not published(matrix.a.owner)
    assert web.get(page_of(matrix.a.owner)).status_code == 404

    act(matrix.a.owner)
    actions = list(
        AuditEvent.objects.filter(action__startswith="business.transparency.")
        .order_by("id")
        .values_list("action", "actor_user_id", "tenant_id")
    )
    assert actions == [
        ("business.transparency.publish", matrix.a.owner.user.pk, matrix.a.owner.tenant_id),
        ("business.transparency.unpublish", matrix.a.owner.user.pk, matrix.a.owner.tenant_id),
    ]


def test_bad_input_is_a_400_with_a_message(web_as: Any, matrix: TenantMatrix) -> None:
    owner = web_as(matrix.a.owner)
    response = owner.post(SETTINGS, {"publish": "maybe"})
    assert response.status_code == 400
    assert b"Choose publish or withdraw." in response.content
    response = owner.post(SETTINGS, {"publish": "no"})  # not published: nothing to withdraw
    assert response.status_code == 400
    assert b"The page is not published." in response.content


@pytest.mark.parametrize("role", ["manager", "staff", "other_staff", "client_login"])
def test_no_lesser_role_may_publish_or_see_the_switch(
    web_as: Any, matrix: TenantMatrix, role: str
) -> None:
    member = getattr(matrix.a, role)
    client = web_as(member)
    assert client.get(SETTINGS).status_code == 403
    assert client.post(SETTINGS, {"publish": "yes"}).status_code == 403
    assert not published(matrix.a.owner)
    act(member)
    with pytest.raises(PermissionDenied):
        do_publish_security_page(actor=member)


def test_an_api_token_or_no_session_cannot_publish(
    web: Any, api_as: Any, matrix: TenantMatrix
) -> None:
    token = api_as(matrix.a.owner)
    assert token.post(SETTINGS, {"publish": "yes"}).status_code in (302, 401, 403)
    anonymous = web.post(SETTINGS, {"publish": "yes"})
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert not published(matrix.a.owner)


def test_the_outsider_publishes_only_their_own(web: Any, web_as: Any, matrix: TenantMatrix) -> None:
    outsider = web_as(matrix.outsider)
    assert outsider.post(SETTINGS, {"publish": "yes"}).status_code == 302
    assert published(matrix.outsider) and not published(matrix.a.owner)
    assert web.get(page_of(matrix.a.owner)).status_code == 404
    page = web.get(page_of(matrix.outsider)).content.decode()
    assert "Bravo" in page and "Alpha" not in page
    # The outsider cannot withdraw another business's page either: theirs goes, A's stays.
    publish(matrix.a.owner)
    assert outsider.post(SETTINGS, {"publish": "no"}).status_code == 302
    assert published(matrix.a.owner)
    assert web.get(page_of(matrix.a.owner)).status_code == 200
    assert web.get(page_of(matrix.outsider)).status_code == 404


def test_the_page_shows_this_business_alone_and_no_one_by_name(
    web: Any, matrix: TenantMatrix
) -> None:
    TOTP.activate(matrix.a.owner.user, generate_totp_secret())
    TOTP.activate(matrix.b.owner.user, generate_totp_secret())
    TOTP.activate(matrix.b.manager.user, generate_totp_secret())
    publish(matrix.a.owner)
    text = " ".join(web.get(page_of(matrix.a.owner)).content.decode().split())
    mfa = text.split('id="figure-mfa"', 1)[1].split("</div>", 1)[0]
    assert "Owners: 100% (1 of 1)" in mfa
    assert "Managers: 0% (0 of 1)" in mfa
    assert "Staff: 0% (0 of 2)" in mfa
    keys = text.split('id="figure-keys"', 1)[1].split("</div>", 1)[0]
    assert "1 business key in use" in keys and "None is overdue" in keys
    body = text.split("<main", 1)[1].split("</main>", 1)[0]
    side = matrix.a
    for actor in (side.owner, side.manager, side.staff, side.other_staff, side.client_login):
        assert actor.user.email not in body and str(actor.membership.pk) not in body
        assert actor.user.full_name not in body
    for client in (side.client, side.other_client):
        assert client.name not in body and str(client.pk) not in body
    assert "client@alpha.test" not in body and str(side.owner.tenant_id) not in body


def test_a_closed_business_page_is_404(web: Any, matrix: TenantMatrix) -> None:
    publish(matrix.a.owner)
    assert web.get(page_of(matrix.a.owner)).status_code == 200
    act(matrix.a.owner)
    business = Business.objects.get(pk=matrix.a.owner.tenant_id)
    do_close_business(business, actor=matrix.a.owner, confirm_name=business.name)
    assert web.get(page_of(matrix.a.owner)).status_code == 404


def test_the_database_answers_counts_only_for_a_published_business(matrix: TenantMatrix) -> None:
    """The app role, with the settings the owner role's policy opens on set by hand, sees no
    membership, and the counting door answers nothing for an unpublished business."""
    set_db_context()  # no actor: what a leaked password or an injection starts from
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('custodia.transparency_reading', 'on', true)")
        cursor.execute("SELECT count(*) FROM tenancy_membership")
        assert cursor.fetchone() == (0,)
        cursor.execute(
            "SELECT count(*) FROM custodia_transparency_mfa(%s)", [matrix.b.owner.tenant_id]
        )
        assert cursor.fetchone() == (0,)
        cursor.execute(
            "SELECT count(*) FROM custodia_transparency_page(%s)", [matrix.b.owner.business.slug]
        )
        assert cursor.fetchone() == (0,)
    publish(matrix.b.owner)
    set_db_context()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT member_role, members FROM custodia_transparency_mfa(%s) ORDER BY 1",
            [matrix.b.owner.tenant_id],
        )
        assert cursor.fetchall() == [("manager", 1), ("owner", 1), ("staff", 2)]
        # The flag the functions set opens nothing to the app role, the policies being the
        # owner role's.
        cursor.execute("SELECT set_config('custodia.transparency_reading', 'on', true)")
        cursor.execute("SELECT count(*) FROM transparency_publication")
        assert cursor.fetchone() == (0,)
        cursor.execute("SELECT count(*) FROM tenancy_membership")
        assert cursor.fetchone() == (0,)


def test_withdrawing_is_an_owner_action_too(matrix: TenantMatrix) -> None:
    publish(matrix.a.owner)
    act(matrix.a.manager)
    with pytest.raises(PermissionDenied):
        do_unpublish_security_page(actor=matrix.a.manager)
    assert published(matrix.a.owner)
