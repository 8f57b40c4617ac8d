"""Every alert goes to the SIEM webhook: queued in the alert's transaction, POSTed signed the
Standard Webhooks way (verified here with the receiver's copy of the secret), retried by
procrastinate until the SIEM takes it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone
from standardwebhooks import Webhook

from custodia.core.actor import acting_as
from custodia.detection.actions import do_raise_alert, raise_platform_alert
from custodia.detection.delivery import SIEM_TASK, siem_payload
from custodia.detection.rules import Finding
from custodia.detection.tasks import SiemNotDelivered, deliver_to_siem, send_to_siem
from custodia.tenancy.actors import system_actor
from tests.factories import TenantMatrix
from tests.webhooks.receiver import Receiver


def queued_bodies() -> list[dict[str, Any]]:
    """The SIEM jobs queued in this (the test's) transaction, as procrastinate holds them."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT args FROM procrastinate_jobs WHERE task_name = %s", [SIEM_TASK])
        rows = [row[0] for row in cursor.fetchall()]
    return [json.loads(args) if isinstance(args, str) else args for args in rows]


def test_a_business_alert_is_queued_and_delivered_signed(
    matrix: TenantMatrix, siem: Receiver, settings: Any, smtp_server: Any
) -> None:
    actor = system_actor(matrix.a.owner.tenant_id, task="detection")
    finding = Finding(
        rule="exports",
        subject=f"person {matrix.a.owner.user.pk}",
        evidence={"count": 3, "window_minutes": 1440, "threshold": 3},
        event_ids=[7, 8, 9],
    )
    with transaction.atomic(), acting_as(actor):
        alert = do_raise_alert(finding, actor=actor)
    assert alert is not None
    [job] = queued_bodies()
    assert job["message_id"] == str(alert.pk)
    assert json.loads(job["body"]) == siem_payload(alert)

    assert send_to_siem(job["message_id"], job["body"], now=timezone.now()) == 200
    [received] = siem.received
    headers = {
        name: received.headers[name]
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    }
    payload = Webhook(settings.ALERT_WEBHOOK_SECRET).verify(received.body, headers)
    assert payload["type"] == "security.alert"
    assert payload["id"] == str(alert.pk)
    assert payload["data"]["rule"] == "exports"
    assert payload["data"]["business"] == str(matrix.a.owner.tenant_id)
    assert payload["data"]["audit_event_ids"] == [7, 8, 9]
    assert matrix.a.client.name not in received.body.decode()
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 44).verify(received.body, headers)


def test_a_refused_delivery_raises_so_procrastinate_retries(siem: Receiver, settings: Any) -> None:
    siem.answer(503)
    body = json.dumps({"type": "security.alert", "id": "x"})
    with pytest.raises(SiemNotDelivered):
        send_to_siem("x", body, now=timezone.now())
    assert send_to_siem("x", body, now=timezone.now()) == 200  # the retry gets through
    assert len(siem.received) == 2
    strategy = deliver_to_siem.retry_strategy
    assert strategy is not None and strategy.max_attempts == settings.ALERT_WEBHOOK_ATTEMPTS


@pytest.mark.django_db
def test_a_platform_alert_is_queued_too(siem: Receiver) -> None:
    finding = Finding(rule="credential_stuffing", subject="address 203.0.113.9", evidence={})
    alert_id = raise_platform_alert(finding)
    assert alert_id is not None
    [job] = queued_bodies()
    body = json.loads(job["body"])
    assert body["id"] == str(alert_id) and body["data"]["business"] is None
    assert raise_platform_alert(finding) is None  # the same subject in the window: once
    assert len(queued_bodies()) == 1


@pytest.mark.django_db
def test_without_a_webhook_nothing_is_queued(settings: Any) -> None:
    settings.ALERT_WEBHOOK_URL = ""
    raise_platform_alert(Finding(rule="restore_drill_failed", subject="backup x", evidence={}))
    assert queued_bodies() == []
