"""`custodia demo` with the card vault running: the portal client's sandbox Visa is added through
the vault's hosted form, an invoice paid with it and partly refunded; without the vault, the
demo says how to add them later."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from custodia.ops.management.commands import demo
from custodia.payments.models import Payment, PaymentMethod, PaymentStatus, Refund, RefundStatus
from tests.acting import act
from tests.vaults import LiveVault

pytestmark = pytest.mark.django_db


def run_demo() -> str:
    out = io.StringIO()
    call_command("demo", stdout=out)
    return out.getvalue()


def test_the_demo_adds_a_card_through_the_vault_pays_and_refunds(
    live_vault: LiveVault, settings: Any, tmp_path: Path
) -> None:
    settings.VAR_DIR = tmp_path
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    output = run_demo()
    assert "card vault is not running" not in output
    owner = demo.demo_owner()
    assert owner is not None
    act(owner)
    card = PaymentMethod.objects.get()
    assert (card.brand, card.last4) == ("visa", "4242")
    payment = Payment.objects.get(method="card")
    assert payment.status == PaymentStatus.SUCCEEDED
    refund = Refund.objects.get()
    assert (refund.status, refund.amount_minor) == (RefundStatus.SUCCEEDED, 2200)
    charges = live_vault.sql(
        "SELECT count(*), sum(refunded) FROM vault_charge WHERE business_id = %s",
        (card.tenant_id,),
    )
    assert charges == [(1, 2200)]
    # Again: nothing more is added or charged.
    run_demo()
    act(owner)
    assert PaymentMethod.objects.count() == 1


def test_without_the_vault_the_demo_says_how_to_add_the_card(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.VAULT_URL = "https://localhost:9"
    assert "card vault is not running" in run_demo()
