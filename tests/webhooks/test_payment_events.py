"""Payments announce their events (payments/events.py) to subscribed endpoints, inside the
action's transaction, with ids, numbers, amounts and balances only: passes sold, credits used
and given back, passes voided and expired, memberships started and cancelled, invoices issued,
paid and voided, payments received."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import transaction
from django.utils import timezone

from custodia.payments.actions.invoices import (
    do_add_invoice_line,
    do_create_invoice,
    do_record_payment,
    do_void_invoice,
)
from custodia.payments.actions.passes import (
    do_cancel_membership,
    do_expire_passes,
    do_sell_pass,
    do_start_membership,
    do_void_pass,
)
from custodia.tenancy.actors import system_actor
from tests.acting import act
from tests.factories import TenantMatrix
from tests.payments.support import cancel, catalog, complete, new_visit
from tests.webhooks.receiver import Receiver
from tests.webhooks.support import add_endpoint, deliveries_of

LINE_TEXT = "Deep clean of the attic"


def payloads(matrix: TenantMatrix) -> list[dict[str, object]]:
    return [d.payload for d in deliveries_of(matrix.a.owner)]


def types(matrix: TenantMatrix) -> list[str]:
    return [d.event_type for d in deliveries_of(matrix.a.owner)]


def test_a_pass_sold_paid_used_and_given_back_is_announced_step_by_step(
    matrix: TenantMatrix, receiver: Receiver
) -> None:
    a = matrix.a
    kinds = catalog(a)
    add_endpoint(a.owner, receiver.url)
    act(a.manager)
    client_pass, invoice = do_sell_pass(a.client, kinds.ten, actor=a.manager)
    do_record_payment(invoice, actor=a.manager, amount_minor=20000, method="cash")
    visit = complete(new_visit(a), a.staff)  # a staff member's action uses the credit
    cancel(visit, a.manager)
    act(a.manager)
    do_void_pass(client_pass, actor=a.manager)
    assert types(matrix) == [
        "pass.sold",
        "invoice.issued",
        "payment.succeeded",
        "invoice.paid",
        "visit.created",
        "visit.completed",
        "pass.credit_used",
        "visit.cancelled",
        "pass.credit_returned",
        "pass.voided",
    ]
    by_type = {p["type"]: p["data"] for p in payloads(matrix)}
    assert by_type["pass.credit_used"]["credits_left"] == 9  # type: ignore[index]
    assert by_type["pass.credit_used"]["visit_id"] == str(visit.pk)  # type: ignore[index]
    assert by_type["pass.credit_returned"]["credits_left"] == 10  # type: ignore[index]
    assert by_type["invoice.paid"] == {  # type: ignore[comparison-overlap]
        **by_type["invoice.paid"],  # type: ignore[dict-item]
        "id": str(invoice.pk),
        "number": 1,
        "status": "paid",
        "total_minor": 20000,
        "currency": "USD",
    }
    assert by_type["payment.succeeded"]["method"] == "cash"  # type: ignore[index]
    assert by_type["payment.succeeded"]["amount_minor"] == 20000  # type: ignore[index]


def test_memberships_expiry_and_voided_invoices_are_announced_without_customer_text(
    matrix: TenantMatrix, receiver: Receiver
) -> None:
    a = matrix.a
    kinds = catalog(a)
    add_endpoint(a.owner, receiver.url)
    act(a.manager)
    membership, _invoice = do_start_membership(a.client, kinds.plan, actor=a.manager)
    do_cancel_membership(membership, actor=a.manager)
    draft = do_create_invoice(a.client, actor=a.manager)
    do_add_invoice_line(
        draft, actor=a.manager, description=LINE_TEXT, quantity=1, unit_price_minor=5000
    )
    do_void_invoice(draft, actor=a.manager)
    do_sell_pass(
        a.client, kinds.ten, actor=a.manager, starts_at=timezone.now() - dt.timedelta(days=100)
    )
    job = system_actor(a.owner.tenant_id, task="pass-expiry")
    act(job)
    assert do_expire_passes(actor=job) == 1
    assert types(matrix) == [
        "membership.started",
        "invoice.issued",
        "membership.cancelled",
        "invoice.voided",
        "pass.sold",
        "invoice.issued",
        "pass.expired",
    ]
    bodies = [json.dumps(d.payload) for d in deliveries_of(a.owner)]
    for text in (a.client.name, a.client.email, LINE_TEXT, "Ten walks", "Monthly"):
        assert not [body for body in bodies if text in body], text


def test_nothing_is_announced_when_the_action_rolls_back(
    matrix: TenantMatrix, receiver: Receiver
) -> None:
    a = matrix.a
    kinds = catalog(a)
    add_endpoint(a.owner, receiver.url)
    act(a.manager)
    with pytest.raises(RuntimeError), transaction.atomic():
        do_sell_pass(a.client, kinds.ten, actor=a.manager)
        raise RuntimeError("the request failed after the action")
    assert types(matrix) == []


def test_only_the_subscribed_payment_events_are_sent(
    matrix: TenantMatrix, receiver: Receiver
) -> None:
    a = matrix.a
    kinds = catalog(a)
    add_endpoint(a.owner, receiver.url, ["invoice.paid"])
    add_endpoint(matrix.b.owner, receiver.url)  # another business's endpoint hears nothing
    act(a.manager)
    _pass, invoice = do_sell_pass(a.client, kinds.ten, actor=a.manager)
    do_record_payment(invoice, actor=a.manager, amount_minor=20000, method="other")
    assert types(matrix) == ["invoice.paid"]
    assert deliveries_of(matrix.b.owner) == []


def test_a_membership_credit_used_and_given_back_is_announced(
    matrix: TenantMatrix, receiver: Receiver
) -> None:
    a = matrix.a
    kinds = catalog(a)
    act(a.manager)
    membership, _invoice = do_start_membership(a.client, kinds.plan, actor=a.manager)
    add_endpoint(a.owner, receiver.url, ["membership.credit_used", "membership.credit_returned"])
    visit = complete(new_visit(a), a.staff)
    cancel(visit, a.manager)
    sent = payloads(matrix)
    assert [p["type"] for p in sent] == ["membership.credit_used", "membership.credit_returned"]
    assert [p["data"]["credits_left"] for p in sent] == [3, 4]  # type: ignore[index]
    assert {p["data"]["id"] for p in sent} == {str(membership.pk)}  # type: ignore[index]
