"""How a job and a periodic task run on a worker, bound to procrastinate.

procrastinate's queue carries only ids (`custodia.jobs.run(job_id, tenant_id, user_id)`): the
worker sets the starter's context with the database's own check (the membership must still be
active: core/dbcontext.py, activate_member), builds the job actor from it, and reads the job's
row under row-level security like anyone else. A starter who left the business leaves a job
that no longer runs.

The job's work is one transaction on the `default` connection, inside `acting_as(actor)`; its
status and progress are written through the `jobs` connection (registry.write_progress), so
they commit whether the work commits or rolls back.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.core.management.base import CommandError
from django.db import DatabaseError, close_old_connections, connections, transaction
from django.utils import timezone
from procrastinate import exceptions as procrastinate_exceptions
from procrastinate.contrib.django import app

from custodia.accounts.models import User
from custodia.core.actor import acting_as
from custodia.core.dbcontext import activate_member
from custodia.core.requestctx import running_job
from custodia.jobs.models import Job, JobStatus
from custodia.jobs.registry import (
    PROGRESS_DATABASE,
    JobContext,
    JobFailed,
    PeriodicTask,
    job_function,
    on_periodic_registered,
    write_progress,
)
from custodia.tenancy.access import from_columns, granted_membership
from custodia.tenancy.actors import JobActor, job_actor

logger = logging.getLogger(__name__)

RUN_TASK = "custodia.jobs.run"
PERIODIC_PREFIX = "custodia.periodic."
GENERIC_FAILURE = "The job failed. The operators have been told; try again later."
RESTARTED = "started again after an interruption"


@app.task(name=RUN_TASK)
def run(job_id: str, tenant_id: str, user_id: str) -> None:
    """procrastinate's entry point for a job (do_start_job queues it)."""
    close_old_connections()
    try:
        run_job(uuid.UUID(job_id), uuid.UUID(tenant_id), uuid.UUID(user_id))
    finally:
        for alias in ("default", PROGRESS_DATABASE):
            connections[alias].close()


def run_job(job_id: uuid.UUID, tenant_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Run one job to its end: succeeded with its result, or failed with a safe message."""
    claimed = _claim(job_id, tenant_id, user_id)
    if claimed is None:
        return
    job, actor = claimed
    function = job_function(job.kind)
    ctx = JobContext(job=job, actor=actor, params=dict(job.params))
    with running_job(actor.name, job.kind):
        try:
            with transaction.atomic():
                if activate_member(user_id, tenant_id) is None:
                    raise JobFailed("The person who started this job no longer has access.")
                with acting_as(actor, context_set=True):
                    function(ctx)
        except JobFailed as exc:
            logger.warning("job %s (%s) stopped: %s", job.pk, job.kind, exc.message)
            _end(ctx, JobStatus.FAILED, error=exc.message)
        except Exception as exc:
            # The type only: an exception's text may quote the data it was working on.
            logger.error("job %s (%s) failed: %s", job.pk, job.kind, type(exc).__name__)
            _end(ctx, JobStatus.FAILED, error=GENERIC_FAILURE)
        else:
            _end(ctx, JobStatus.SUCCEEDED)
            logger.info("job %s (%s) succeeded", job.pk, job.kind)


def _claim(
    job_id: uuid.UUID, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[Job, JobActor] | None:
    """Mark the job running (again, after a worker died) and build its actor; None if it is
    gone, finished already, or its starter may no longer act in the business."""
    with transaction.atomic(using=PROGRESS_DATABASE):
        grant = activate_member(user_id, tenant_id, using=PROGRESS_DATABASE)
        if grant is None:
            logger.warning("job %s not run: its starter is no longer an active member", job_id)
            return None
        membership = granted_membership(grant)
        # Read on this connection, built as a row of `default`'s (where the job works).
        columns = [field.attname for field in User._meta.concrete_fields]
        user = User.objects.using(PROGRESS_DATABASE).filter(pk=user_id).values(*columns).first()
        if user is None or not user["is_active"]:
            return None
        membership.user = from_columns(User, user)
        job = (
            Job.objects.using(PROGRESS_DATABASE)
            .select_for_update()
            .filter(pk=job_id, tenant_id=tenant_id, started_by_id=membership.pk)
            .first()
        )
        if job is None or job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            return None
        if job.status == JobStatus.RUNNING:
            # A worker died in the middle of it: its transaction rolled back whole.
            job.done, job.stage = 0, RESTARTED
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.started_at = timezone.now()
        job.save(
            using=PROGRESS_DATABASE,
            update_fields=["status", "attempts", "started_at", "done", "stage", "updated_at"],
        )
    return job, job_actor(membership, job_id=job.pk, kind=job.kind)


def _end(ctx: JobContext, status: JobStatus, *, error: str = "") -> None:
    job = ctx.job
    fields: dict[str, Any] = {"status": status, "finished_at": timezone.now(), "error": error}
    if status == JobStatus.SUCCEEDED:
        if job.total is not None:
            fields["done"] = job.total
        fields["result_label"] = ctx.result.get("label", "")
        fields["result_url"] = ctx.result.get("url", "")
    try:
        write_progress(ctx.actor, job.pk, **fields)
    except DatabaseError as exc:
        logger.error("job %s: its end could not be recorded (%s)", job.pk, type(exc).__name__)
        raise


# --- Periodic tasks --------------------------------------------------------------------------


def execute_periodic(task: PeriodicTask) -> None:
    """One run of a periodic task; a failure is logged (what the operators need), never raised
    into procrastinate, whose log would carry the exception's text."""
    close_old_connections()
    try:
        with running_job(f"task-{task.name}", task.name):
            task.function()
    except CommandError as exc:
        # Our own operator messages (a broken chain, a missing key): loud, and go on.
        logger.error("periodic task %s: %s", task.name, exc)
    except DatabaseError as exc:
        logger.error("periodic task %s: database unavailable (%s)", task.name, type(exc).__name__)
    except Exception as exc:
        logger.error("periodic task %s failed: %s", task.name, type(exc).__name__)
    finally:
        for alias in connections:
            connections[alias].close()


def _bind_periodic(task: PeriodicTask) -> None:
    def run_periodic(timestamp: int) -> None:
        execute_periodic(task)

    run_periodic.__name__ = run_periodic.__qualname__ = f"periodic_{task.name}"
    bound = app.task(name=f"{PERIODIC_PREFIX}{task.name}", queueing_lock=task_lock(task))(
        run_periodic
    )
    app.periodic(cron=task.cron, periodic_id=task.name)(bound)


def task_lock(task: PeriodicTask) -> str:
    """At most one waiting run of a periodic task, however many workers defer it."""
    return f"periodic-{task.name}"


on_periodic_registered(_bind_periodic)


# --- Stalled jobs ----------------------------------------------------------------------------


async def requeue_stalled_jobs(seconds: float) -> int:
    """Queue again the jobs of workers silent for `seconds` (killed, or their host lost);
    returns how many. The job starts again from the beginning (`_claim`)."""
    manager = app.job_manager
    count = 0
    for stalled in await manager.get_stalled_jobs(seconds_since_heartbeat=seconds):
        try:
            await manager.retry_job(stalled)
        except procrastinate_exceptions.ProcrastinateException:
            continue  # another worker took it first
        count += 1
        logger.warning("job %s of a stalled worker queued again", stalled.id)
    return count
