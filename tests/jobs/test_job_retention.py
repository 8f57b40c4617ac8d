"""The retention run forgets finished jobs after 30 days, business by business, and nothing
sooner: a running job, a young one and another business's young one stay."""

from __future__ import annotations

import datetime as dt
import uuid

from django.db import transaction

from custodia.core.actor import Actor, acting_as
from custodia.jobs.models import Job, JobStatus
from custodia.lifecycle import retention
from tests.factories import TenantMatrix
from tests.jobs.conftest import start_job

NOW = dt.datetime.now(dt.UTC)


def _finished(actor: Actor, days_ago: float | None) -> uuid.UUID:
    """A job of `actor`'s, finished `days_ago` (None: still running)."""
    job = start_job("test-probe", actor)
    with transaction.atomic(), acting_as(actor):
        if days_ago is None:
            Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
        else:
            Job.objects.filter(pk=job.pk).update(
                status=JobStatus.SUCCEEDED, finished_at=NOW - dt.timedelta(days=days_ago)
            )
    return job.pk


def _left(actor: Actor, ids: set[uuid.UUID]) -> set[uuid.UUID]:
    with transaction.atomic(), acting_as(actor):
        return set(Job.objects.filter(pk__in=ids).values_list("pk", flat=True))


def test_finished_jobs_go_after_thirty_days_in_every_business(world: TenantMatrix) -> None:
    a, b = world.a.owner, world.b.owner
    days = retention.JOB_DAYS
    old_a, old_b = _finished(a, days + 1), _finished(b, days + 0.01)
    young_a, young_b = _finished(a, days - 1), _finished(b, 1)
    running = _finished(a, None)

    [outcome] = retention.enforce(NOW, only={"jobs"})

    assert outcome.error is None and outcome.removed >= 2
    assert _left(a, {old_a, young_a, running}) == {young_a, running}
    assert _left(b, {old_b, young_b}) == {young_b}
