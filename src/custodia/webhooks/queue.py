"""Queueing a delivery for a worker: procrastinate carries ids only (the delivery and its
business); the worker reads the row under that business's row-level security (tasks.py)."""

from __future__ import annotations

import datetime as dt
import uuid

from procrastinate.contrib.django import app

DELIVER_TASK = "custodia.webhooks.deliver"


def queue_delivery(
    delivery_id: uuid.UUID, tenant_id: uuid.UUID, *, at: dt.datetime | None = None
) -> None:
    """Queue an attempt of the delivery (at `at`, or now), in the caller's transaction: the
    worker can take it only once that transaction commits, and never if it rolls back."""
    app.configure_task(name=DELIVER_TASK, schedule_at=at).defer(
        delivery_id=str(delivery_id), tenant_id=str(tenant_id)
    )
