"""The app's database never holds a card number or security code: a card added through the app's
pages and the live vault, then charged, committed in a scratch database, and the whole database
dumped as the superuser (every column of every table) and searched."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from custodia.payments.actions.cards import do_charge_invoice
from custodia.payments.actions.passes import do_sell_pass
from custodia.payments.models import Payment, PaymentMethod, PaymentStatus
from tests.acting import act
from tests.crypto.test_dump import copy_blocks, pg_dump, scratch_database
from tests.factories import build_business
from tests.payments.cards import add_card_through_app, card_number_pattern, security_code_alone
from tests.payments.support import catalog
from tests.vaults import LiveVault
from tests.web.support import logged_in

__all__ = ["scratch_database"]

AMEX = "378282246310005"
AMEX_CODE = "7391"


def test_no_card_number_or_security_code_in_the_app_database(
    scratch_database: str, live_vault: LiveVault, settings: Any
) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with transaction.atomic():
        business = build_business("Cardco")
    web = logged_in(business.owner)
    response = add_card_through_app(
        web,
        live_vault,
        f"/app/clients/{business.client.pk}/cards/add/",
        AMEX,
        security_code=AMEX_CODE,
    )
    assert response.status_code == 302
    page = web.get(f"/app/clients/{business.client.pk}/cards/").content.decode()
    assert "American Express ending 0005" in page
    assert AMEX not in page and AMEX_CODE not in page
    with transaction.atomic():
        act(business.owner)
        card = PaymentMethod.objects.get()
        _pass, invoice = do_sell_pass(business.client, catalog(business).ten, actor=business.owner)
        act(business.owner)
        do_charge_invoice(invoice, card, actor=business.owner)
    with transaction.atomic():
        act(business.owner)
        assert Payment.objects.get(invoice=invoice).status == PaymentStatus.SUCCEEDED
    dump = pg_dump(scratch_database)
    blocks = copy_blocks(dump)
    assert "0005" in blocks["payments_paymentmethod"]  # the card is there, as its last four
    assert AMEX not in dump
    # Nor grouped ("3782 822463 10005", "3782-8224-6310-005"), nor the code standing alone.
    assert not card_number_pattern(AMEX).search(dump)
    assert not security_code_alone(AMEX_CODE).search(dump)
