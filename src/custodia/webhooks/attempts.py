"""What a worker does with a delivery, as the webhooks task's system actor inside its business.

An attempt is three steps, so that no database transaction waits on a receiver:
1. `do_claim_delivery` (a short transaction): a pending, due row is locked, counted as an
   attempt and leased (its next attempt pushed past the attempt's longest time), then committed;
2. the POST (sender.py), outside any transaction;
3. `do_record_attempt` (a short transaction): delivered, or due again on the back-off schedule,
   or failed after the last retry.
A worker killed between 1 and 3 leaves the row pending with its lease: it is due again when the
lease ends, and the queue (procrastinate's stalled jobs, then tasks.py) tries it again then.
Delivery is at least once: a receiver may see one event twice (the same `webhook-id`).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from custodia.accounts import adapter as mail
from custodia.accounts.links import public_url
from custodia.core.actor import Actor, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.permissions import Role
from custodia.tenancy.models import Business, Membership
from custodia.webhooks import sender
from custodia.webhooks.models import Delivery, DeliveryStatus, Endpoint, EventType
from custodia.webhooks.queue import queue_delivery
from custodia.webhooks.signing import signed_headers

ENDPOINT_OFF = "the endpoint is turned off"
# A pending delivery due longer ago than this has lost its queue entry (a queued attempt is
# taken within seconds of its time): the sweep queues it again.
OVERDUE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Attempt:
    """A claimed attempt: where, what and how it is signed (the headers hold no secret)."""

    delivery_id: uuid.UUID
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Claim:
    """An attempt to make now, or when the delivery is due (leased by another attempt), or
    neither (finished, gone, or turned off)."""

    attempt: Attempt | None = None
    due_at: dt.datetime | None = None


def lease() -> dt.timedelta:
    """Longer than an attempt takes: a refused address and the next one's connect, send and
    answer, each up to the timeout (sender.py tries at most two addresses)."""
    return dt.timedelta(seconds=4 * settings.WEBHOOKS_TIMEOUT_SECONDS + 5)


def signing_secrets(endpoint: Endpoint, now: dt.datetime) -> list[str]:
    """The current secret, and the previous one while its overlap window lasts."""
    found = [endpoint.secret]
    expires = endpoint.previous_expires_at
    if endpoint.previous_secret and expires is not None and now < expires:
        found.append(endpoint.previous_secret)
    return found


def body_of(delivery: Delivery) -> bytes:
    return json.dumps(delivery.payload, sort_keys=True, separators=(",", ":")).encode()


def _start(delivery: Delivery, endpoint: Endpoint, now: dt.datetime) -> Attempt:
    """Count the attempt, lease the row, and sign the body as of now."""
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.next_attempt_at = now + lease()
    delivery.save(update_fields=["attempts", "last_attempt_at", "next_attempt_at"])
    body = body_of(delivery)
    headers = signed_headers(
        message_id=str(delivery.event_id),
        timestamp=now,
        body=body,
        secrets_in_use=signing_secrets(endpoint, now),
    )
    return Attempt(delivery.pk, endpoint.url, body, headers)


def is_closed(actor: Actor) -> bool:
    """Whether the actor's business is closed: its rows are read-only until its purge
    (tenancy/closing.py), so nothing is attempted, counted or erased meanwhile; a reopened
    business's overdue deliveries are queued again by the sweep."""
    return Business.objects.filter(pk=actor.tenant_id, closed_at__isnull=False).exists()


def do_claim_delivery(delivery_id: uuid.UUID, *, actor: Actor) -> Claim:
    """Take the delivery's next attempt if it is due and no one else holds it."""
    require_active(actor)
    now = timezone.now()
    if is_closed(actor):
        return Claim()
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint")
            .filter(pk=delivery_id, tenant_id=actor.tenant_id, status=DeliveryStatus.PENDING)
            .first()
        )
        if delivery is None:
            return Claim()
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
            return Claim(due_at=delivery.next_attempt_at)
        endpoint = delivery.endpoint
        if not endpoint.is_active:
            _finish(delivery, DeliveryStatus.FAILED, now, error=ENDPOINT_OFF)
            return Claim()
        return Claim(attempt=_start(delivery, endpoint, now))


def do_record_attempt(
    delivery_id: uuid.UUID, outcome: sender.Outcome, *, actor: Actor
) -> dt.datetime | None:
    """Record what an attempt came to; when the delivery is due again (None: it is finished)."""
    require_active(actor)
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("endpoint")
            .filter(pk=delivery_id, tenant_id=actor.tenant_id, status=DeliveryStatus.PENDING)
            .first()
        )
        if delivery is None:
            return None
        _settle(delivery, outcome, actor=actor, retry=True)
        return delivery.next_attempt_at if delivery.status == DeliveryStatus.PENDING else None


def attempt_now(delivery: Delivery, endpoint: Endpoint, *, actor: Actor) -> None:
    """One attempt at once, in the caller's transaction, never retried (the test button)."""
    attempt = _start(delivery, endpoint, timezone.now())
    outcome = sender.post(attempt.url, attempt.body, attempt.headers)
    _settle(delivery, outcome, actor=actor, retry=False)


def _finish(delivery: Delivery, status: DeliveryStatus, now: dt.datetime, *, error: str) -> None:
    delivery.status = status
    delivery.finished_at = now
    delivery.next_attempt_at = None
    delivery.error = error
    delivery.save(update_fields=["status", "finished_at", "next_attempt_at", "error"])


def _settle(delivery: Delivery, outcome: sender.Outcome, *, actor: Actor, retry: bool) -> None:
    now = timezone.now()
    endpoint = delivery.endpoint
    counts = delivery.event_type != EventType.TEST
    delivery.response_status = outcome.status
    delivery.duration_ms = outcome.duration_ms
    delivery.save(update_fields=["response_status", "duration_ms"])
    if outcome.delivered:
        _finish(delivery, DeliveryStatus.DELIVERED, now, error="")
        if counts and endpoint.consecutive_failures:
            Endpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=0)
        return
    schedule = settings.WEBHOOKS_RETRY_SCHEDULE
    if retry and delivery.attempts <= len(schedule):
        delivery.error = outcome.error
        delivery.next_attempt_at = now + dt.timedelta(seconds=schedule[delivery.attempts - 1])
        delivery.save(update_fields=["error", "next_attempt_at"])
        return
    _finish(delivery, DeliveryStatus.FAILED, now, error=outcome.error)
    if counts:
        # In the database: deliveries to one endpoint may settle at the same moment.
        Endpoint.objects.filter(pk=endpoint.pk).update(
            consecutive_failures=F("consecutive_failures") + 1
        )
        endpoint.refresh_from_db(fields=["consecutive_failures", "is_active"])
        if endpoint.is_active and endpoint.consecutive_failures >= settings.WEBHOOKS_DISABLE_AFTER:
            _disable(endpoint, now, actor=actor)


def _disable(endpoint: Endpoint, now: dt.datetime, *, actor: Actor) -> None:
    """Turn off an endpoint that keeps failing, and tell the business's owners."""
    endpoint.is_active = False
    endpoint.disabled_for_failures_at = now
    endpoint.save(update_fields=["is_active", "disabled_for_failures_at", "updated_at"])
    record(
        AuditAction.WEBHOOK_DISABLE,
        actor=actor,
        target=endpoint,
        detail={"consecutive_failures": endpoint.consecutive_failures},
    )
    owners = Membership.objects.filter(
        tenant_id=endpoint.tenant_id, role=Role.OWNER, is_active=True
    ).select_related("user", "tenant")
    for owner in owners:
        body = render_to_string(
            "webhooks/email/disabled.txt",
            {
                "business": owner.tenant,
                "endpoint": endpoint,
                "failures": endpoint.consecutive_failures,
                "endpoint_url": public_url(reverse("webhook_detail", args=[endpoint.pk])),
            },
        )
        message = EmailMessage(
            f"A webhook endpoint of {owner.tenant.name} was turned off",
            body,
            settings.DEFAULT_FROM_EMAIL,
            [owner.user.email],
        )
        mail.send_after_commit(message)


def do_sweep_webhooks(*, actor: Actor, now: dt.datetime) -> tuple[int, int]:
    """Queue the business's overdue deliveries again and erase expired previous secrets;
    (deliveries queued, secrets erased)."""
    require_active(actor)
    if is_closed(actor):
        return 0, 0
    overdue = list(
        Delivery.objects.filter(
            tenant_id=actor.tenant_id,
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=now - OVERDUE,
        ).values_list("pk", flat=True)[:1000]
    )
    for delivery_id in overdue:
        queue_delivery(delivery_id, actor.tenant_id)
    expired = Endpoint.objects.filter(tenant_id=actor.tenant_id, previous_expires_at__lte=now)
    erased = 0
    for endpoint in expired:
        endpoint.previous_secret = ""
        endpoint.previous_expires_at = None
        endpoint.save(update_fields=["previous_secret", "previous_expires_at"])
        erased += 1
    return len(overdue), erased


def do_forget_old_deliveries(before: dt.datetime, *, actor: Actor) -> int:
    """Delete the business's finished deliveries made before `before` (the retention run, as
    its system actor); how many. A delivery row holds ids and outcomes only: no audit event,
    the count is the retention run's report. A closed business's rows wait for its purge."""
    require_active(actor)
    if is_closed(actor):
        return 0
    with transaction.atomic():
        deleted, _ = (
            Delivery.objects.filter(tenant_id=actor.tenant_id, created_at__lt=before)
            .exclude(status=DeliveryStatus.PENDING)
            .delete()
        )
    return deleted
