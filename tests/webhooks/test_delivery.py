"""Deliveries to a real HTTPS receiver on localhost: signed so the receiver can verify them with
`standardwebhooks`, retried on failure with back-off, never redirected, refused towards private
addresses, written only when the action that caused them commits."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
from typing import Any

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import ProgrammingError, connection, transaction
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from custodia.audit.models import AuditEvent
from custodia.core.closed import BusinessClosed
from custodia.scheduling.actions import do_create_visit, do_delete_visit, do_update_visit
from custodia.tenancy.actors import system_actor
from custodia.tenancy.closing import do_close_business
from custodia.tenancy.models import Business
from custodia.webhooks.actions import (
    do_resend_delivery,
    do_rotate_endpoint_secret,
    do_send_test_event,
    do_update_endpoint,
)
from custodia.webhooks.attempts import do_forget_old_deliveries, do_sweep_webhooks
from custodia.webhooks.destinations import is_public
from custodia.webhooks.models import Delivery, DeliveryStatus, Endpoint, EventType
from custodia.webhooks.sender import NOT_2XX, REDIRECTED, TIMED_OUT
from tests.acting import act
from tests.factories import TenantMatrix
from tests.webhooks.receiver import Answer, Receiver
from tests.webhooks.support import add_endpoint, attempt, deliveries_of

CUSTOMER_TEXT = ("Alpha Client", "1 Main Street", "Cat: Miso", "4711", "0815", "Key under the mat")


def complete_visit(matrix: TenantMatrix) -> None:
    """The staff member marks their visit completed: a staff action causes the event."""
    act(matrix.a.staff)
    do_update_visit(matrix.a.visit, actor=matrix.a.staff, status="completed")


def queued_deliveries() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'custodia.webhooks.deliver'"
        )
        return int(cursor.fetchone()[0])


def test_a_delivery_verifies_with_the_secret_and_not_when_tampered_or_with_another(
    matrix: TenantMatrix, receiver: Receiver
) -> None:
    endpoint, secret = add_endpoint(matrix.a.owner, receiver.url)
    complete_visit(matrix)

    [delivery] = deliveries_of(matrix.a.owner)
    assert delivery.event_type == EventType.VISIT_COMPLETED
    delivery = attempt(matrix.a.owner, delivery)

    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.attempts == 1 and delivery.response_status == 200
    [got] = receiver.received
    assert got.path == "/hooks/custodia"
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload["type"] == "visit.completed"
    assert payload["data"]["id"] == str(matrix.a.visit.pk)
    assert payload["data"]["status"] == "completed"
    assert payload["data"]["changed"] == ["status"]
    assert got.headers["webhook-id"] == str(delivery.event_id)
    # The signature is real: one changed byte, or another secret, and verification fails.
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(got.body.replace(b"completed", b"cancelled"), got.headers)
    _, other_secret = add_endpoint(matrix.b.owner, receiver.url)
    with pytest.raises(WebhookVerificationError):
        Webhook(other_secret).verify(got.body, got.headers)
    # Ids, times and statuses: nothing of the client's.
    for text in CUSTOMER_TEXT:
        assert text.encode() not in got.body


def test_every_visit_action_announces_its_event(matrix: TenantMatrix, receiver: Receiver) -> None:
    add_endpoint(matrix.a.owner, receiver.url)
    owner, visit = matrix.a.owner, matrix.a.visit
    act(owner)
    new = do_create_visit(
        actor=owner, client=matrix.a.client, starts_at=visit.starts_at, ends_at=visit.ends_at
    )
    do_update_visit(new, actor=owner, ends_at=visit.ends_at + dt.timedelta(minutes=30))
    do_update_visit(new, actor=owner, status="cancelled")
    do_update_visit(new, actor=owner, status="cancelled")  # no change, no event
    do_delete_visit(new, actor=owner)
    types = [d.event_type for d in deliveries_of(owner)]
    assert types == ["visit.created", "visit.changed", "visit.cancelled", "visit.deleted"]


def test_only_subscribed_active_endpoints_of_the_business_get_the_event(
    matrix: TenantMatrix, receiver: Receiver
) -> None:
    created_only, _ = add_endpoint(matrix.a.owner, receiver.url, ["visit.created"])
    completed, _ = add_endpoint(matrix.a.owner, receiver.url, ["visit.completed"])
    off, _ = add_endpoint(matrix.a.owner, receiver.url, ["visit.completed"])
    do_update_endpoint(off, actor=matrix.a.owner, is_active=False)
    add_endpoint(matrix.b.owner, receiver.url)  # another business's: never told of A's visits
    complete_visit(matrix)
    assert [d.endpoint_id for d in deliveries_of(matrix.a.owner)] == [completed.pk]
    assert deliveries_of(matrix.b.owner) == []
    assert created_only.pk != completed.pk


def test_the_outbox_row_exists_only_if_the_action_committed(
    matrix: TenantMatrix, receiver: Receiver
) -> None:
    add_endpoint(matrix.a.owner, receiver.url)
    queued = queued_deliveries()
    act(matrix.a.staff)
    with pytest.raises(RuntimeError), transaction.atomic():
        do_update_visit(matrix.a.visit, actor=matrix.a.staff, status="completed")
        raise RuntimeError("the request failed after the action")
    assert deliveries_of(matrix.a.owner) == []
    assert queued_deliveries() == queued

    matrix.a.visit.refresh_from_db()
    complete_visit(matrix)
    assert len(deliveries_of(matrix.a.owner)) == 1
    assert queued_deliveries() == queued + 1


def test_staff_cause_deliveries_but_cannot_read_endpoints_or_deliveries(
    matrix: TenantMatrix, receiver: Receiver
) -> None:
    add_endpoint(matrix.a.owner, receiver.url)
    complete_visit(matrix)
    for who in (matrix.a.staff, matrix.a.manager, matrix.a.client_login, matrix.outsider):
        act(who)
        assert Endpoint.objects.count() == 0
        assert Delivery.objects.count() == 0
    assert len(deliveries_of(matrix.a.owner)) == 1


def test_during_a_rotation_both_secrets_verify_and_after_it_only_the_new(
    matrix: TenantMatrix, receiver: Receiver
) -> None:
    owner = matrix.a.owner
    endpoint, old = add_endpoint(owner, receiver.url)
    new = do_rotate_endpoint_secret(endpoint, actor=owner)
    assert new != old and new.startswith("whsec_")
    do_send_test_event(endpoint, actor=owner)
    got = receiver.received[-1]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(got.body, got.headers)
    Webhook(new).verify(got.body, got.headers)

    with time_machine.travel(timezone.now() + dt.timedelta(hours=24, minutes=1), tick=False):
        do_send_test_event(endpoint, actor=owner)
        got = receiver.received[-1]
        assert len(got.headers["webhook-signature"].split(" ")) == 1
        Webhook(new).verify(got.body, got.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(got.body, got.headers)
        # The sweep erases the old secret for good.
        sweeper = act(system_actor(owner.tenant_id, task="webhooks"))
        assert do_sweep_webhooks(actor=sweeper, now=timezone.now()) == (0, 1)
    act(owner)
    endpoint.refresh_from_db()
    assert endpoint.previous_secret == "" and endpoint.previous_expires_at is None


def test_a_500_then_a_200_is_retried_on_schedule_and_delivered_once(
    matrix: TenantMatrix, receiver: Receiver
) -> None:
    owner = matrix.a.owner
    add_endpoint(owner, receiver.url)
    receiver.answer(500)
    complete_visit(matrix)
    [delivery] = deliveries_of(owner)

    delivery = attempt(owner, delivery)
    assert delivery.status == DeliveryStatus.PENDING
    assert (delivery.response_status, delivery.error) == (500, NOT_2XX)
    assert delivery.next_attempt_at is not None
    wait = delivery.next_attempt_at - timezone.now()
    assert dt.timedelta(seconds=25) < wait <= dt.timedelta(seconds=30)
    # Not due yet: a second worker looking now sends nothing.
    delivery = attempt(owner, delivery)
    assert len(receiver.received) == 1

    with time_machine.travel(delivery.next_attempt_at + dt.timedelta(seconds=1), tick=False):
        delivery = attempt(owner, delivery)
        assert delivery.status == DeliveryStatus.DELIVERED
        assert delivery.attempts == 2 and delivery.response_status == 200
        attempt(owner, delivery)  # delivered: never sent again
    assert len(receiver.received) == 2
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]


def test_a_timeout_is_retried(matrix: TenantMatrix, receiver: Receiver) -> None:
    owner = matrix.a.owner
    add_endpoint(owner, receiver.url)
    receiver.answer(Answer(200, pause=2.5))
    complete_visit(matrix)
    [delivery] = deliveries_of(owner)
    delivery = attempt(owner, delivery)
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.error == TIMED_OUT and delivery.response_status is None
    with time_machine.travel(delivery.next_attempt_at + dt.timedelta(seconds=1), tick=False):
        assert attempt(owner, delivery).status == DeliveryStatus.DELIVERED


def test_a_redirect_is_not_followed(matrix: TenantMatrix, receiver: Receiver) -> None:
    owner = matrix.a.owner
    add_endpoint(owner, receiver.url)
    receiver.answer(Answer(307, location=receiver.url.replace("/hooks/", "/elsewhere/")))
    complete_visit(matrix)
    [delivery] = deliveries_of(owner)
    delivery = attempt(owner, delivery)
    assert (delivery.status, delivery.response_status) == (DeliveryStatus.PENDING, 307)
    assert delivery.error == REDIRECTED
    assert [r.path for r in receiver.received] == ["/hooks/custodia"]


def test_private_and_loopback_destinations_are_refused_at_save_and_at_delivery(
    matrix: TenantMatrix, receiver: Receiver, settings: Any
) -> None:
    owner = matrix.a.owner
    endpoint, _ = add_endpoint(owner, receiver.url)
    complete_visit(matrix)
    [delivery] = deliveries_of(owner)

    settings.WEBHOOKS_ALLOW_PRIVATE = False
    port = receiver.url.split(":")[2].split("/")[0]
    for url in (
        receiver.url,
        f"https://127.0.0.1:{port}/",
        "https://[::1]/",
        "https://10.1.2.3/",
        "https://169.254.169.254/latest/meta-data/",
    ):
        with pytest.raises(ValidationError) as refused:
            add_endpoint(owner, url)
        assert "public internet addresses only" in str(refused.value)
    # Saved while allowed, then refused at delivery: the address connected to is checked.
    delivery = attempt(owner, delivery)
    assert delivery.error == "the destination is not a public address"
    assert delivery.status == DeliveryStatus.PENDING and receiver.received == []
    assert endpoint.url == receiver.url


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),  # noqa: S104  (an address checked, not bound)
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False),  # Teredo to 10.0.0.1
        ("::ffff:93.184.215.14", True),
        ("64:ff9b::5db8:d70e", True),  # NAT64 of 93.184.215.14
        ("93.184.215.14", True),
        ("2606:4700::6810:84e5", True),
    ],
)
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_only_https_urls_are_accepted(matrix: TenantMatrix) -> None:
    for url, message in (
        ("http://example.com/hook", "https only"),
        ("https://user:pw@example.com/", "credentials"),
        ("ftp://example.com/", "https only"),
        ("https:///nohost", "host name"),
        ("https://example.com:99999/", "not a valid URL"),
    ):
        with pytest.raises(ValidationError) as refused:
            add_endpoint(matrix.a.owner, url)
        assert message in str(refused.value)


def test_an_endpoint_that_keeps_failing_is_turned_off_and_its_owners_told(
    matrix: TenantMatrix, receiver: Receiver, mailoutbox: list[Any], settings: Any
) -> None:
    settings.WEBHOOKS_RETRY_SCHEDULE = [1]
    owner = matrix.a.owner
    endpoint, secret = add_endpoint(owner, receiver.url)
    receiver.answer(500, 500, 500, 500)
    complete_visit(matrix)
    act(matrix.a.staff)
    do_update_visit(matrix.a.visit, actor=matrix.a.staff, report="Walked")
    first, second = deliveries_of(owner)
    later = timezone.now() + dt.timedelta(seconds=5)
    for delivery in (first, second):
        delivery = attempt(owner, delivery)
        with time_machine.travel(later, tick=False):
            delivery = attempt(owner, delivery)
        assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 2
    endpoint.refresh_from_db()
    assert not endpoint.is_active and endpoint.disabled_for_failures_at is not None
    assert endpoint.consecutive_failures == 2
    [notice] = mailoutbox
    assert notice.to == [owner.user.email]
    assert "turned off" in notice.subject
    assert secret not in notice.body and receiver.url not in notice.body
    assert AuditEvent.objects.filter(action="webhook.disable", target_id=str(endpoint.pk)).exists()

    # Off: no more outbox rows; a failed delivery can be sent again once it is on.
    act(matrix.a.staff)
    do_update_visit(matrix.a.visit, actor=matrix.a.staff, report="Walked twice")
    assert len(deliveries_of(owner)) == 2
    do_update_endpoint(endpoint, actor=owner, is_active=True)
    assert endpoint.consecutive_failures == 0 and endpoint.disabled_for_failures_at is None
    resent = do_resend_delivery(Delivery.objects.get(pk=first.pk), actor=owner)
    assert resent.status == DeliveryStatus.PENDING and resent.attempts == 0
    assert attempt(owner, resent).status == DeliveryStatus.DELIVERED
    with pytest.raises(ValidationError):
        do_resend_delivery(Delivery.objects.get(pk=first.pk), actor=owner)


def test_the_test_event_is_sent_at_once_and_not_retried(
    matrix: TenantMatrix, receiver: Receiver
) -> None:
    owner = matrix.a.owner
    endpoint, secret = add_endpoint(owner, receiver.url)
    delivery = do_send_test_event(endpoint, actor=owner)
    assert delivery.status == DeliveryStatus.DELIVERED
    payload = Webhook(secret).verify(receiver.received[0].body, receiver.received[0].headers)
    assert payload["type"] == "webhook.test"
    receiver.answer(503)
    failed = do_send_test_event(endpoint, actor=owner)
    assert (failed.status, failed.response_status) == (DeliveryStatus.FAILED, 503)
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0 and endpoint.is_active


def test_no_secret_in_logs_or_the_audit_trail(
    matrix: TenantMatrix, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    owner = matrix.a.owner
    endpoint, secret = add_endpoint(owner, receiver.url)
    rotated = do_rotate_endpoint_secret(endpoint, actor=owner)
    do_send_test_event(endpoint, actor=owner)
    complete_visit(matrix)
    [delivery] = [d for d in deliveries_of(owner) if d.event_type != "webhook.test"]
    attempt(owner, delivery)
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    events = list(AuditEvent.objects.filter(target_id=str(endpoint.pk)).values())
    assert {e["action"] for e in events} >= {"webhook.create", "webhook.rotate", "webhook.test"}
    trail = json.dumps(events, default=str)
    for value in (secret, rotated, secret.removeprefix("whsec_"), rotated.removeprefix("whsec_")):
        assert value not in logged
        assert value not in trail
    # The secret is stored sealed, never as its text.
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret, previous_secret FROM webhooks_endpoint")
        for row in cursor.fetchall():
            for column in row:
                assert secret.encode() not in bytes(column)
                assert rotated.encode() not in bytes(column)


def test_a_closed_business_sends_nothing_and_its_endpoints_are_read_only(
    matrix: TenantMatrix, receiver: Receiver
) -> None:
    owner = matrix.a.owner
    endpoint, _ = add_endpoint(owner, receiver.url)
    complete_visit(matrix)
    [delivery] = deliveries_of(owner)
    assert do_send_test_event(endpoint, actor=owner).status == DeliveryStatus.DELIVERED
    receiver.received.clear()
    business = Business.objects.get(pk=owner.tenant_id)
    do_close_business(business, actor=owner, confirm_name=business.name)

    delivery = attempt(owner, delivery)
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 0
    assert receiver.received == []
    sweeper = act(system_actor(owner.tenant_id, task="webhooks"))
    assert do_sweep_webhooks(actor=sweeper, now=timezone.now()) == (0, 0)
    # The retention run leaves a closed business's rows to its purge (they are read-only).
    assert do_forget_old_deliveries(timezone.now() + dt.timedelta(days=365), actor=sweeper) == 0
    act(owner)
    assert len(deliveries_of(owner)) == 2
    with pytest.raises(BusinessClosed), transaction.atomic():
        do_update_endpoint(endpoint, actor=owner, description="Changed")


@pytest.mark.parametrize("key", ["", "wrong", None])
def test_the_outbox_function_refuses_a_caller_without_the_context_key(
    matrix: TenantMatrix, receiver: Receiver, key: str | None
) -> None:
    """SQL injection or a leaked app password, with a business's context set: no outbox row
    can be written (and so nothing sent) without the key the app holds."""
    add_endpoint(matrix.a.owner, receiver.url)
    act(matrix.a.staff)
    with pytest.raises(ProgrammingError, match="context key"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT * FROM custodia_webhook_enqueue(%s, 'visit.completed',"
                " gen_random_uuid(), '{\"type\": \"visit.completed\"}'::jsonb)",
                [key],
            )
    assert deliveries_of(matrix.a.owner) == []
    # Sanity: with the key (the app's own call), the same context writes the row.
    complete_visit(matrix)
    assert len(deliveries_of(matrix.a.owner)) == 1
