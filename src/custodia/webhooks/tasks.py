"""The workers' side of webhooks: one procrastinate task per delivery attempt, and a sweep.

`custodia.webhooks.deliver(delivery_id, tenant_id)` acts as the `webhooks` system actor inside
that one business (tenancy/actors.py: system_actor), never as the member whose action caused
the event: staff and clients cause events, but only owners (and this task) may read endpoints.
It claims, posts and records (attempts.py), then queues the next attempt when one is due.

The `webhooks` periodic task, every minute: queues again every delivery overdue by more than
`OVERDUE` (its queue entry lost: a database restored, a queue entry deleted by hand), and
erases the previous secrets whose overlap window has ended.
"""

from __future__ import annotations

import logging
import uuid

from django.db import close_old_connections, connections, transaction
from django.utils import timezone
from procrastinate.contrib.django import app

from custodia.core.actor import acting_as
from custodia.core.requestctx import running_job
from custodia.jobs.registry import for_each_business, periodic_task
from custodia.tenancy.actors import SystemActor, system_actor
from custodia.webhooks import sender
from custodia.webhooks.attempts import do_claim_delivery, do_record_attempt, do_sweep_webhooks
from custodia.webhooks.queue import DELIVER_TASK, queue_delivery

logger = logging.getLogger(__name__)

TASK = "webhooks"


@app.task(name=DELIVER_TASK)
def deliver(delivery_id: str, tenant_id: str) -> None:
    """procrastinate's entry point: one attempt of one delivery."""
    close_old_connections()
    try:
        with running_job(f"task-{TASK}", TASK):
            deliver_once(uuid.UUID(delivery_id), uuid.UUID(tenant_id))
    finally:
        connections["default"].close()


def deliver_once(delivery_id: uuid.UUID, tenant_id: uuid.UUID) -> None:
    """Claim, POST outside any transaction, record; queue the next attempt if one is due."""
    actor = system_actor(tenant_id, task=TASK)
    with transaction.atomic(), acting_as(actor):
        claim = do_claim_delivery(delivery_id, actor=actor)
        if claim.attempt is None:
            if claim.due_at is not None:
                # Held by an attempt under way, or by one whose worker died: look again when
                # its lease ends.
                queue_delivery(delivery_id, tenant_id, at=claim.due_at)
            return
    attempt = claim.attempt
    outcome = sender.post(attempt.url, attempt.body, attempt.headers)
    logger.info(
        "webhook delivery %s: %s",
        delivery_id,
        "delivered" if outcome.delivered else (outcome.error or "not delivered"),
    )
    with transaction.atomic(), acting_as(actor):
        due_at = do_record_attempt(delivery_id, outcome, actor=actor)
        if due_at is not None:
            queue_delivery(delivery_id, tenant_id, at=due_at)


@periodic_task(TASK, cron="* * * * *", run_at_start=True)
def sweep_webhooks() -> None:
    """Every minute, in every business: lost deliveries queued again, old secrets erased."""
    now = timezone.now()

    def sweep(actor: SystemActor) -> None:
        do_sweep_webhooks(actor=actor, now=now)

    for_each_business(TASK, sweep)
