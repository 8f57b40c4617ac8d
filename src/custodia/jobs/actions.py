"""Starting a background job: its row and its place in procrastinate's queue, in one
transaction with the audit event, so a job is queued exactly when it is recorded."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from asgiref.sync import async_to_sync
from django.core.exceptions import ValidationError
from django.db import transaction

from custodia.core.actor import Actor, require_active
from custodia.core.audit import AuditAction, record
from custodia.jobs.models import Job
from custodia.jobs.registry import job_function
from custodia.jobs.runner import RUN_TASK, app

# Parameters are ids and options, not data: a generous bound against misuse.
MAX_PARAMS_BYTES = 16 * 1024


def do_start_job(kind: str, *, params: dict[str, Any] | None = None, actor: Actor) -> Job:
    """Queue a job of a registered `kind` for the actor's business; it runs as the job actor
    of the actor's membership. The page is `reverse("jobs:detail", args=[job.pk])`.

    The caller checks that the actor may start this kind of work (the job itself runs with
    exactly the starter's role and business, no more).
    """
    require_active(actor)
    job_function(kind)  # LookupError for an unknown kind: a programming error
    params = dict(params or {})
    try:
        encoded = json.dumps(params, sort_keys=True)
    except (TypeError, ValueError):
        raise ValidationError("A job's parameters must be plain JSON values.") from None
    if len(encoded.encode()) > MAX_PARAMS_BYTES:
        raise ValidationError("A job's parameters are too large.")
    with transaction.atomic():
        job = Job.objects.create(
            tenant_id=actor.tenant_id, kind=kind, started_by=actor.membership, params=params
        )
        # procrastinate's Django connector writes through this same connection: the job is
        # queued if and only if this transaction commits (and its NOTIFY wakes a worker then).
        queue_job_id = app.configure_task(name=RUN_TASK).defer(
            job_id=str(job.pk), tenant_id=str(actor.tenant_id), user_id=str(actor.user.pk)
        )
        job.queue_job_id = queue_job_id
        job.save(update_fields=["queue_job_id"])
        record(AuditAction.JOB_START, actor=actor, target=job, detail={"kind": kind})
    return job


def do_forget_finished_jobs(before: dt.datetime, *, actor: Actor) -> int:
    """Delete the actor's business's jobs that finished before `before` (the retention run, as
    the periodic task's system actor inside that one business); how many. A job's row holds ids,
    counts and a safe message only, so no audit event: the count is the retention run's report."""
    require_active(actor)
    with transaction.atomic():
        deleted, _ = Job.objects.filter(tenant_id=actor.tenant_id, finished_at__lt=before).delete()
    return deleted


def forget_finished_queue_entries(before: dt.datetime) -> None:
    """Delete procrastinate's own rows of jobs that reached a final state before `before` (ids
    and task names only; platform-wide, no business context)."""
    hours = max(1, int((dt.datetime.now(dt.UTC) - before).total_seconds() // 3600))
    async_to_sync(app.job_manager.delete_old_jobs)(
        nb_hours=hours, include_failed=True, include_cancelled=True, include_aborted=True
    )
