"""Attack review of closing (issue 14): a lesser member of a closed business, with SQL of its own
inside its verified context (an SQL injection), must not get the business's data keys destroyed
before the grace period ends by marking the anonymous record `purged`."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.utils import timezone

from custodia.core.actor import Actor
from custodia.core.permissions import Role
from custodia.crypto.keyring import keys_for
from custodia.tenancy.actions import do_create_business
from custodia.tenancy.closing import closing_work, do_close_business, do_purge_closed_businesses
from custodia.tenancy.models import Business
from tests.acting import act
from tests.factories import TenantMatrix, UserFactory, add_member, authenticated

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


def close(actor: Actor) -> Business:
    act(actor)
    business = Business.objects.get(pk=actor.tenant_id)
    return do_close_business(business, actor=actor, confirm_name=business.name)


@pytest.mark.parametrize("who", ["staff", "client_login"])
def test_a_forged_purged_mark_does_not_destroy_a_live_business_keys(
    matrix: TenantMatrix, who: str
) -> None:
    a = matrix.a
    business = close(a.owner)
    act(getattr(a, who))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tenancy_closedbusiness SET purged_at = now() WHERE business_id = %s",
            [business.pk],
        )
    now = timezone.now()
    assert all(work.business_id != business.pk for work in closing_work(now))
    assert business.pk not in do_purge_closed_businesses(now)
    act(a.owner)
    keys_for(business.pk)  # still there: the business is only closed, not purged
    assert Business.objects.filter(pk=business.pk, purge_after__gt=now).exists()


def test_a_business_name_with_a_line_break_can_still_be_closed(db: None) -> None:
    """A name is free text (signup's CharField keeps an inner line break); the closing notice's
    subject carries it, a mail header may not hold a line break (Django refused the mail, the
    close was rolled back with a 500), and the name must be typed back to confirm."""
    owner = authenticated(
        do_create_business(name="Acme\r\nBcc: x@example.test", owner=UserFactory())
    )
    add_member(owner, UserFactory(), Role.MANAGER)
    business = close(owner)
    assert business.closed_at is not None
    assert business.name == "Acme Bcc: x@example.test"
