"""Autopay of memberships (payments/actions/autopay.py, cards.do_autopay_charge), against a live
vault: consent recorded through the card window; a renewal charged off session by the
`membership-autopay` system actor (approved, declined and retried after 1, 3 and 7 days, not
answered and asked again under the same key), emails to the client and the business, never
twice for one attempt; and every way around it refused: no consent, a removed card, another
client's or business's card, a staff member, a manager without the grant, an API token, a
non-system actor, another invoice, a larger amount; row-level security for a client's
context writing more than the autopay of their own membership."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError
from django.http import Http404
from django.utils import timezone

from custodia.accounts import stepup
from custodia.audit.models import AuditEvent
from custodia.core.actor import Actor
from custodia.core.permissions import Permission
from custodia.payments.actions.autopay import (
    autopay_actor,
    do_set_autopay,
    do_stop_autopay,
    run_autopay,
)
from custodia.payments.actions.cards import do_autopay_charge, do_remove_card
from custodia.payments.actions.invoices import do_record_payment
from custodia.payments.actions.passes import do_sell_pass, do_start_membership
from custodia.payments.actions.renewals import do_renew_memberships
from custodia.payments.models import (
    ClientMembership,
    Invoice,
    InvoiceStatus,
    MembershipStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
)
from custodia.tenancy.actors import system_actor
from tests.acting import act
from tests.factories import Business, TenantMatrix
from tests.mail import SmtpServer, smtp_server  # noqa: F401  (a fixture)
from tests.payments.cards import (
    DECLINED,
    LATE_SUCCESS,
    VISA,
    add_card_through_app,
    grant_cards,
    saved_card,
)
from tests.payments.support import catalog
from tests.security.support import attempt, execute
from tests.vaults import LiveVault
from tests.web.support import logged_in

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def steady_clock(monkeypatch: pytest.MonkeyPatch) -> float:
    """The step-up clock a minute ahead (as in test_cards_live.py): the matrix actors' proof
    and the test sessions' logins are both just before it, so the card window is open."""
    at = time.time() + 60
    monkeypatch.setattr(stepup, "clock", lambda: at)
    return at


def add_card(business: Business, vault: LiveVault, number: str = VISA) -> PaymentMethod:
    web = logged_in(business.owner)
    response = add_card_through_app(
        web, vault, f"/app/clients/{business.client.pk}/cards/add/", number
    )
    assert response.status_code == 302
    act(business.owner)
    return PaymentMethod.objects.filter(client=business.client, removed_at__isnull=True).latest(
        "created_at"
    )


def member(business: Business, *, days_ago: float = 31) -> ClientMembership:
    """The client's membership of the 80.00 plan, its first period over (due to renew)."""
    plan = catalog(business).plan
    act(business.owner)
    membership, first = do_start_membership(
        business.client,
        plan,
        actor=business.owner,
        starts_at=timezone.now() - dt.timedelta(days=days_ago),
    )
    return membership


def with_autopay(business: Business, card: PaymentMethod) -> ClientMembership:
    membership = member(business)
    act(business.owner)
    return do_set_autopay(membership, card, actor=business.owner, consent=True)


def hourly_run(business: Business, capture: Any, now: dt.datetime) -> None:
    """What the hourly task does in one business: renew, then the autopay attempts due."""
    job = system_actor(business.owner.tenant_id, task="membership-renewals")
    act(job)
    with capture(execute=True):
        do_renew_memberships(actor=job, now=now)
        run_autopay(business.owner.tenant_id, now=now)
    act(business.owner)


def payments_of(business: Business, membership: ClientMembership) -> list[Payment]:
    act(business.owner)
    membership.refresh_from_db()
    return list(
        Payment.objects.filter(invoice_id=membership.autopay_invoice_id).order_by("created_at")
    )


def vault_charges(vault: LiveVault, business: Business) -> int:
    rows = vault.sql(
        "SELECT count(*) FROM vault_charge WHERE business_id = %s", (business.owner.tenant_id,)
    )
    return int(rows[0][0])


# --- Charging ----------------------------------------------------------------------------------


def test_an_approved_renewal_is_paid_active_and_receipted_and_charged_once(
    matrix: TenantMatrix,
    live_vault: LiveVault,
    smtp_server: SmtpServer,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    a = matrix.a
    membership = with_autopay(a, add_card(a, live_vault))
    now = timezone.now()
    hourly_run(a, django_capture_on_commit_callbacks, now)
    hourly_run(a, django_capture_on_commit_callbacks, now + dt.timedelta(minutes=10))
    [payment] = payments_of(a, membership)
    assert payment.status == PaymentStatus.SUCCEEDED
    assert vault_charges(live_vault, a) == 1
    invoice = Invoice.objects.get(pk=membership.autopay_invoice_id)
    assert invoice.status == InvoiceStatus.PAID
    assert membership.status == MembershipStatus.ACTIVE
    assert (membership.autopay_attempts, membership.autopay_next_at) == (0, None)
    [receipt] = smtp_server.wait_for(1)
    assert receipt.recipients == [a.client.email] and "Visa ending 4242" in receipt.body
    assert VISA not in receipt.body
    charge_events = AuditEvent.objects.filter(action="client_membership.autopay_charge")
    assert [event.actor_user_id for event in charge_events] == [None]  # the system actor


def test_a_decline_tells_client_and_business_and_a_retry_a_day_later_pays(
    matrix: TenantMatrix,
    live_vault: LiveVault,
    smtp_server: SmtpServer,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    a = matrix.a
    manager = grant_cards(a)
    membership = with_autopay(a, add_card(a, live_vault, DECLINED))
    now = timezone.now()
    hourly_run(a, django_capture_on_commit_callbacks, now)
    [failed] = payments_of(a, membership)
    assert failed.status == PaymentStatus.FAILED
    assert membership.status == MembershipStatus.PAST_DUE and membership.credits_this_period
    assert membership.autopay_attempts == 1
    assert membership.autopay_next_at == now + DAY
    messages = smtp_server.wait_for(2)
    to_client = [m for m in messages if m.recipients == [a.client.email]]
    to_business = [m for m in messages if m.recipients != [a.client.email]]
    assert len(to_client) == 1 and len(to_business) == 1
    assert set(to_business[0].recipients) == {a.owner.user.email, manager.user.email}
    for message in messages:
        assert "Visa ending 0002" in message.body
        assert "4000000000000002" not in message.body and "4000 0000" not in message.body
        assert f"/app/memberships/{membership.pk}/" in message.body
    assert "try again" in to_client[0].body
    # Within the day nothing is tried again; the client changes card meanwhile.
    hourly_run(a, django_capture_on_commit_callbacks, now + dt.timedelta(hours=5))
    assert len(payments_of(a, membership)) == 1
    good = add_card(a, live_vault, VISA)
    act(a.client_login)
    do_set_autopay(membership, good, actor=a.client_login, consent=True)
    hourly_run(a, django_capture_on_commit_callbacks, now + DAY)
    first, second = payments_of(a, membership)
    assert second.status == PaymentStatus.SUCCEEDED
    assert second.idempotency_key != first.idempotency_key  # a decline is final: a new charge
    assert membership.status == MembershipStatus.ACTIVE
    assert (membership.autopay_attempts, membership.autopay_next_at) == (0, None)


def test_four_declines_end_the_attempts_until_the_next_renewal(
    matrix: TenantMatrix,
    live_vault: LiveVault,
    smtp_server: SmtpServer,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    a = matrix.a
    membership = with_autopay(a, add_card(a, live_vault, DECLINED))
    now = timezone.now()
    moments = [now, now + DAY, now + 4 * DAY, now + 11 * DAY]
    for moment in moments:
        hourly_run(a, django_capture_on_commit_callbacks, moment)
    hourly_run(a, django_capture_on_commit_callbacks, now + 20 * DAY)
    payments = payments_of(a, membership)
    assert [p.status for p in payments] == [PaymentStatus.FAILED] * 4
    assert (membership.autopay_attempts, membership.autopay_next_at) == (4, None)
    assert membership.status == MembershipStatus.PAST_DUE
    assert membership.autopay_card_id is not None  # autopay stays for the next period
    messages = smtp_server.wait_for(8)
    assert sum("last attempt" in m.body for m in messages) == 2  # the client's and the owner's


def test_a_charge_not_answered_is_asked_again_under_its_key_and_charged_once(
    matrix: TenantMatrix,
    live_vault: LiveVault,
    django_capture_on_commit_callbacks: Any,
) -> None:
    a = matrix.a
    membership = with_autopay(a, add_card(a, live_vault, LATE_SUCCESS))
    now = timezone.now()
    hourly_run(a, django_capture_on_commit_callbacks, now)
    [payment] = payments_of(a, membership)
    assert payment.status == PaymentStatus.PENDING
    assert membership.autopay_next_at == now + dt.timedelta(hours=1)
    hourly_run(a, django_capture_on_commit_callbacks, now + dt.timedelta(minutes=30))
    assert payments_of(a, membership)[0].status == PaymentStatus.PENDING
    hourly_run(a, django_capture_on_commit_callbacks, now + dt.timedelta(hours=1))
    [same] = payments_of(a, membership)
    assert (same.pk, same.idempotency_key) == (payment.pk, payment.idempotency_key)
    assert same.status == PaymentStatus.SUCCEEDED
    assert vault_charges(live_vault, a) == 1
    assert membership.status == MembershipStatus.ACTIVE


def test_paying_by_hand_stops_the_retries(
    matrix: TenantMatrix, live_vault: LiveVault, django_capture_on_commit_callbacks: Any
) -> None:
    a = matrix.a
    membership = with_autopay(a, add_card(a, live_vault, DECLINED))
    now = timezone.now()
    hourly_run(a, django_capture_on_commit_callbacks, now)
    membership.refresh_from_db()
    invoice = Invoice.objects.get(pk=membership.autopay_invoice_id)
    do_record_payment(invoice, actor=a.owner, amount_minor=8000, method="cash")
    hourly_run(a, django_capture_on_commit_callbacks, now + DAY)
    assert [p.method for p in payments_of(a, membership)] == ["card", "cash"]
    assert membership.autopay_next_at is None and membership.status == MembershipStatus.ACTIVE


def test_no_consent_no_charge_and_a_removed_card_turns_autopay_off(
    matrix: TenantMatrix, live_vault: LiveVault, django_capture_on_commit_callbacks: Any
) -> None:
    a = matrix.a
    card = add_card(a, live_vault)
    membership = member(a)
    act(a.owner)
    with pytest.raises(ValidationError, match="Tick the box"):
        do_set_autopay(membership, card, actor=a.owner, consent=False)
    membership = do_set_autopay(membership, card, actor=a.owner, consent=True)
    do_remove_card(card, actor=a.owner)
    membership.refresh_from_db()
    assert membership.autopay_card_id is None and membership.autopay_consent_at is None
    assert AuditEvent.objects.filter(action="client_membership.autopay_off").count() == 1
    hourly_run(a, django_capture_on_commit_callbacks, timezone.now())
    assert payments_of(a, membership) == []
    assert vault_charges(live_vault, a) == 0


# --- The off-session function refuses ---------------------------------------------------------


def test_the_off_session_charge_refuses_anyone_but_its_task_and_anything_but_its_invoice(
    matrix: TenantMatrix, django_capture_on_commit_callbacks: Any
) -> None:
    a = matrix.a
    card = saved_card(a)
    membership = with_autopay(a, card)
    job = system_actor(a.owner.tenant_id, task="membership-renewals")
    act(job)
    do_renew_memberships(actor=job)
    act(a.owner)
    membership.refresh_from_db()
    renewal = Invoice.objects.get(pk=membership.autopay_invoice_id)
    # A person (even the owner, in the card window) or another task: refused.
    for actor in (a.owner, system_actor(a.owner.tenant_id, task="card-charge")):
        act(actor)
        with pytest.raises(PermissionDenied):
            do_autopay_charge(renewal, membership, actor=actor)
    autopay = autopay_actor(a.owner.tenant_id)
    act(a.owner)
    _pass, other = do_sell_pass(a.client, catalog(a).ten, actor=a.owner)
    act(autopay)
    with pytest.raises(ValidationError, match="renewal invoice"):
        do_autopay_charge(other, membership, actor=autopay)
    # More due than the monthly price (the price lowered under it): refused.
    act(a.owner)
    ClientMembership.objects.filter(pk=membership.pk).update(monthly_price_minor=100)
    act(autopay)
    with pytest.raises(ValidationError, match="monthly price"):
        do_autopay_charge(renewal, membership, actor=autopay)
    # Another business's autopay actor does not reach this business's rows.
    outsider_job = autopay_actor(matrix.b.owner.tenant_id)
    act(outsider_job)
    with pytest.raises((Http404, PermissionDenied, ValidationError, ClientMembership.DoesNotExist)):
        do_autopay_charge(renewal, membership, actor=outsider_job)
    act(a.owner)
    assert not Payment.objects.filter(invoice=renewal).exists()


# --- Who may turn autopay on -------------------------------------------------------------------


def test_only_the_client_an_owner_or_a_granted_manager_turn_autopay_on(
    matrix: TenantMatrix,
) -> None:
    a = matrix.a
    card = saved_card(a)
    membership = member(a)
    for actor in (a.staff, a.manager):  # staff never; a manager only with the grant
        act(actor)
        with pytest.raises(PermissionDenied):
            do_set_autopay(membership, card, actor=actor, consent=True)
    token_like = Actor(a.owner.user, a.owner.membership, scopes=frozenset(Permission))
    assert not token_like.can(Permission.PAYMENTS_CARD_CHARGE)
    act(a.client_login)
    membership = do_set_autopay(membership, card, actor=a.client_login, consent=True)
    assert membership.autopay_consent_by == a.client_login.membership.pk
    assert AuditEvent.objects.filter(action="client_membership.autopay_on").count() == 1
    do_stop_autopay(membership, actor=a.client_login)
    assert membership.autopay_card_id is None
    # The outsider's pages and actions find nothing.
    act(matrix.outsider)
    with pytest.raises(Http404):
        do_set_autopay(membership, card, actor=matrix.outsider, consent=True)
    outsider = logged_in(matrix.outsider)
    assert outsider.get(f"/app/memberships/{membership.pk}/").status_code == 404


def test_a_client_cannot_use_another_clients_or_businesss_card_or_membership(
    matrix: TenantMatrix,
) -> None:
    a, b = matrix.a, matrix.b
    own_card = saved_card(a)
    other_card = saved_card(a, vault_token="tok_other", fingerprint="f" * 32)
    act(a.owner)
    PaymentMethod.objects.filter(pk=other_card.pk).update(client=a.other_client)
    other_card.refresh_from_db()
    b_card = saved_card(b)
    membership = member(a)
    act(a.owner)
    other_membership, _invoice = do_start_membership(a.other_client, catalog(a).plan, actor=a.owner)
    client = a.client_login
    act(client)
    with pytest.raises(Http404):
        do_set_autopay(membership, other_card, actor=client, consent=True)
    with pytest.raises(Http404):
        do_set_autopay(other_membership, own_card, actor=client, consent=True)
    with pytest.raises((Http404, PermissionDenied)):
        do_set_autopay(membership, b_card, actor=client, consent=True)
    portal = logged_in(client)
    path = f"/app/memberships/{membership.pk}/autopay/"
    for card in (other_card, b_card):
        response = portal.post(path, {"card": str(card.pk), "consent": "yes"})
        assert response.status_code == 404
    assert portal.get(f"/app/memberships/{other_membership.pk}/").status_code == 404
    response = portal.post(f"/app/memberships/{other_membership.pk}/autopay/off/")
    assert response.status_code == 404
    # Without the box ticked: nothing, and a message.
    response = portal.post(path, {"card": str(own_card.pk)}, follow=True)
    assert "Tick the box" in response.content.decode()
    act(a.owner)
    assert not ClientMembership.objects.filter(autopay_card__isnull=False).exists()
    # With it: on, and the page says so.
    portal.post(path, {"card": str(own_card.pk), "consent": "yes"})
    page = portal.get(f"/app/memberships/{membership.pk}/").content.decode()
    assert "Renewals are charged to" in page and "Visa ending 4242" in page
    assert own_card.vault_token not in page


# --- Row-level security ------------------------------------------------------------------------


def test_a_clients_context_changes_only_the_autopay_of_their_own_membership(
    matrix: TenantMatrix,
) -> None:
    a = matrix.a
    own_card = saved_card(a)
    other_card = saved_card(a, vault_token="tok_other", fingerprint="f" * 32)
    act(a.owner)
    PaymentMethod.objects.filter(pk=other_card.pk).update(client=a.other_client)
    membership = member(a)
    act(a.owner)
    other_membership, _invoice = do_start_membership(a.other_client, catalog(a).plan, actor=a.owner)
    act(a.client_login)
    mine = a.client_login.membership.pk
    for change in (
        "status = 'cancelled'",
        "credits_this_period = 0",
        "monthly_price_minor = 1",
        "autopay_attempts = 3",
        "autopay_next_at = now()",
    ):
        error = attempt(
            lambda change=change: execute(
                f"UPDATE payments_clientmembership SET {change} WHERE id = %s",  # noqa: S608
                [membership.pk],
            )
        )
        assert isinstance(error, DatabaseError), change
    # Another client's card, or consent in someone else's name: refused.
    error = attempt(
        lambda: execute(
            "UPDATE payments_clientmembership SET autopay_card_id = %s,"
            " autopay_consent_at = now(), autopay_consent_by = %s WHERE id = %s",
            [other_card.pk, mine, membership.pk],
        )
    )
    assert isinstance(error, DatabaseError)
    error = attempt(
        lambda: execute(
            "UPDATE payments_clientmembership SET autopay_card_id = %s,"
            " autopay_consent_at = now(), autopay_consent_by = %s WHERE id = %s",
            [own_card.pk, a.owner.membership.pk, membership.pk],
        )
    )
    assert isinstance(error, DatabaseError)
    # Another client's membership: not even seen.
    changed = execute(
        "UPDATE payments_clientmembership SET autopay_card_id = NULL WHERE id = %s",
        [other_membership.pk],
    )
    assert changed == 0
    # Their own card, in their own name, on their own membership: allowed.
    changed = execute(
        "UPDATE payments_clientmembership SET autopay_card_id = %s,"
        " autopay_consent_at = now(), autopay_consent_by = %s WHERE id = %s",
        [own_card.pk, mine, membership.pk],
    )
    assert changed == 1
    # Even a manager cannot point a membership at another client's card.
    act(a.owner)
    error = attempt(
        lambda: execute(
            "UPDATE payments_clientmembership SET autopay_card_id = %s WHERE id = %s",
            [other_card.pk, membership.pk],
        )
    )
    assert isinstance(error, DatabaseError)
