"""A closed business's money is read-only like the rest of its data, and its purge deletes every
payments row with it."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from custodia.core.closed import BusinessClosed
from custodia.core.dbcontext import set_db_context
from custodia.payments.actions.invoices import do_record_payment
from custodia.payments.actions.passes import do_sell_pass, do_start_membership
from custodia.tenancy.closing import do_close_business, do_purge_closed_businesses
from custodia.tenancy.models import Business
from tests.acting import act
from tests.factories import TenantMatrix
from tests.payments.support import catalog, complete
from tests.payments.test_rls import TABLES

pytestmark = pytest.mark.django_db


def counts(tenant_id: object) -> dict[str, int]:
    with transaction.atomic():
        set_db_context(tenant_id=tenant_id, role="owner")
        with connection.cursor() as cursor:
            found = {}
            for table in TABLES:
                cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - constant names
                found[table] = cursor.fetchone()[0]
        return found


def test_closed_money_is_read_only_and_purged_with_the_business(matrix: TenantMatrix) -> None:
    a = matrix.a
    kinds = catalog(a)
    act(a.owner)
    _pass, invoice = do_sell_pass(a.client, kinds.ten, actor=a.owner)
    do_start_membership(a.client, kinds.plan, actor=a.owner)
    do_record_payment(invoice, actor=a.owner, amount_minor=500, method="cash")
    complete(a.visit, a.staff)
    assert all(counts(a.owner.tenant_id).values()), counts(a.owner.tenant_id)
    act(a.owner)
    business = Business.objects.get(pk=a.owner.tenant_id)
    business = do_close_business(business, actor=a.owner, confirm_name=business.name)
    act(a.owner)
    with pytest.raises(BusinessClosed), transaction.atomic():
        do_record_payment(invoice, actor=a.owner, amount_minor=500, method="cash")
    assert do_purge_closed_businesses(business.purge_after) == [business.pk]
    assert set(counts(business.pk).values()) == {0}
