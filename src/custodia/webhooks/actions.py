"""Owners' writes to their webhook endpoints: add, change, rotate the secret, delete, send a
test event, send a failed delivery again. Each checks the role, the business and (adding an
endpoint, changing where it sends, rotating its secret) a fresh step-up, and records its audit
event in the same transaction; none records a secret anywhere.

What a worker does with a delivery is attempts.py.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from custodia.accounts.stepup import require_step_up
from custodia.core.actor import Actor, ensure_in_business, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.permissions import Permission
from custodia.webhooks.attempts import attempt_now
from custodia.webhooks.destinations import check_url
from custodia.webhooks.events import payload_for
from custodia.webhooks.models import (
    DESCRIPTION_LENGTH,
    SUBSCRIBABLE,
    Delivery,
    DeliveryStatus,
    Endpoint,
    EventType,
)
from custodia.webhooks.queue import queue_delivery
from custodia.webhooks.signing import new_secret


def _check_events(event_types: Iterable[str]) -> list[str]:
    chosen = sorted(set(event_types))
    known = {str(event) for event in SUBSCRIBABLE}
    if not chosen:
        raise ValidationError({"event_types": "Choose at least one event to send."})
    if set(chosen) - known:
        raise ValidationError({"event_types": "Choose events from the list."})
    return chosen


def _check_description(description: str) -> str:
    description = " ".join(description.split())
    if len(description) > DESCRIPTION_LENGTH:
        raise ValidationError({"description": f"At most {DESCRIPTION_LENGTH} characters."})
    return description


def _host(url: str) -> str:
    """What the trail says of a URL: its host (a path or query may carry a receiver's token)."""
    return urlsplit(url).hostname or ""


def _manage(actor: Actor, *records: object) -> None:
    require_active(actor)
    actor.require(Permission.WEBHOOKS_MANAGE)
    if actor.authentication is None:
        # An API token (or a job) carries no proof of a person: whichever door it came
        # through, it never manages where the business's events go.
        raise PermissionDenied("Webhooks are managed in a browser session, not with a token.")
    ensure_in_business(actor, *records)


def do_create_endpoint(
    *, actor: Actor, url: str, description: str = "", event_types: Iterable[str]
) -> tuple[Endpoint, str]:
    """A new endpoint of the owner's business and its signing secret, returned once."""
    _manage(actor)
    require_step_up(actor)
    errors: dict[str, list[str]] = {}
    clean_url = clean_description = ""
    clean_events: list[str] = []
    try:
        clean_url = check_url(url)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        clean_description = _check_description(description)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        clean_events = _check_events(event_types)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    secret = new_secret()
    with transaction.atomic():
        endpoint = Endpoint.objects.create(
            tenant_id=actor.tenant_id,
            url=clean_url,
            description=clean_description,
            event_types=clean_events,
            secret=secret,
        )
        record(
            AuditAction.WEBHOOK_CREATE,
            actor=actor,
            target=endpoint,
            detail={"host": _host(endpoint.url), "events": endpoint.event_types},
        )
    return endpoint, secret


def do_update_endpoint(
    endpoint: Endpoint,
    *,
    actor: Actor,
    url: str | None = None,
    description: str | None = None,
    event_types: Iterable[str] | None = None,
    is_active: bool | None = None,
) -> Endpoint:
    """Change where an endpoint sends (a fresh step-up), what it says, which events, whether it
    is on; turning it on again forgets its failures."""
    _manage(actor, endpoint)
    changes: dict[str, object] = {}
    if url is not None and url.strip() != endpoint.url:
        require_step_up(actor)
        changes["url"] = check_url(url)
    if description is not None:
        changes["description"] = _check_description(description)
    if event_types is not None:
        changes["event_types"] = _check_events(event_types)
    if is_active is not None:
        changes["is_active"] = bool(is_active)
        if is_active and not endpoint.is_active:
            changes["consecutive_failures"] = 0
            changes["disabled_for_failures_at"] = None
    changed = sorted(field for field, value in changes.items() if getattr(endpoint, field) != value)
    if not changed:
        return endpoint
    with transaction.atomic():
        for field in changed:
            setattr(endpoint, field, changes[field])
        endpoint.save(update_fields=[*changed, "updated_at"])
        detail: dict[str, object] = {"fields": changed}
        if "url" in changed:
            detail["host"] = _host(endpoint.url)
        record(AuditAction.WEBHOOK_UPDATE, actor=actor, target=endpoint, detail=detail)
    return endpoint


def do_rotate_endpoint_secret(endpoint: Endpoint, *, actor: Actor) -> str:
    """A new secret signs from now on, returned once; the old one signs too for the overlap
    window (settings.WEBHOOKS_ROTATION_OVERLAP_HOURS), then is erased. A secret older than the
    one replaced is dropped at once."""
    _manage(actor, endpoint)
    require_step_up(actor)
    secret = new_secret()
    overlap = dt.timedelta(hours=settings.WEBHOOKS_ROTATION_OVERLAP_HOURS)
    with transaction.atomic():
        if overlap:
            endpoint.previous_secret = endpoint.secret
            endpoint.previous_expires_at = timezone.now() + overlap
        else:
            endpoint.previous_secret = ""
            endpoint.previous_expires_at = None
        endpoint.secret = secret
        endpoint.save(
            update_fields=["secret", "previous_secret", "previous_expires_at", "updated_at"]
        )
        record(
            AuditAction.WEBHOOK_ROTATE,
            actor=actor,
            target=endpoint,
            detail={"overlap_hours": settings.WEBHOOKS_ROTATION_OVERLAP_HOURS},
        )
    return secret


def do_delete_endpoint(endpoint: Endpoint, *, actor: Actor) -> None:
    """Remove an endpoint with its delivery log; nothing more is sent to it."""
    _manage(actor, endpoint)
    with transaction.atomic():
        record(
            AuditAction.WEBHOOK_DELETE,
            actor=actor,
            target=endpoint,
            detail={"host": _host(endpoint.url)},
        )
        endpoint.delete()


def do_send_test_event(endpoint: Endpoint, *, actor: Actor) -> Delivery:
    """Send a `webhook.test` event to the endpoint now (on or off) and keep its outcome in the
    log; a test is not retried and does not count towards disabling the endpoint."""
    _manage(actor, endpoint)
    data = {"business_id": str(actor.tenant_id), "endpoint_id": str(endpoint.pk)}
    with transaction.atomic():
        delivery = Delivery.objects.create(
            tenant_id=actor.tenant_id,
            endpoint=endpoint,
            event_id=uuid.uuid4(),
            event_type=str(EventType.TEST),
            payload=payload_for(EventType.TEST, data),
            next_attempt_at=timezone.now(),
        )
        record(AuditAction.WEBHOOK_TEST, actor=actor, target=endpoint)
    attempt_now(delivery, endpoint, actor=actor)
    return delivery


def do_resend_delivery(delivery: Delivery, *, actor: Actor) -> Delivery:
    """Send a failed delivery again: pending at once, its retries starting over."""
    _manage(actor, delivery)
    if delivery.status != DeliveryStatus.FAILED:
        raise ValidationError("Only a failed delivery can be sent again.")
    with transaction.atomic():
        delivery.status = DeliveryStatus.PENDING
        delivery.attempts = 0
        delivery.next_attempt_at = timezone.now()
        delivery.finished_at = None
        delivery.save(update_fields=["status", "attempts", "next_attempt_at", "finished_at"])
        record(
            AuditAction.WEBHOOK_RESEND,
            actor=actor,
            target=delivery,
            detail={"endpoint": str(delivery.endpoint_id), "event": delivery.event_type},
        )
        queue_delivery(delivery.pk, actor.tenant_id)
    return delivery
