"""API output of a background job."""

from __future__ import annotations

import datetime as dt
import uuid

from django.urls import reverse
from ninja import Schema

from custodia.jobs.models import Job


class JobResultOut(Schema):
    label: str
    url: str


class JobOut(Schema):
    """A job's status and progress; `result` once it succeeded with one."""

    id: uuid.UUID
    kind: str
    status: str
    done: int
    total: int | None
    stage: str
    error: str
    result: JobResultOut | None
    started_by: uuid.UUID
    attempts: int
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    page: str

    @staticmethod
    def resolve_result(job: Job) -> dict[str, str] | None:
        if job.status != "succeeded" or not job.result_url:
            return None
        return {"label": job.result_label, "url": job.result_url}

    @staticmethod
    def resolve_started_by(job: Job) -> uuid.UUID:
        return job.started_by_id

    @staticmethod
    def resolve_page(job: Job) -> str:
        return reverse("jobs:detail", args=[job.pk])
