"""API endpoints of background jobs: a thin door onto jobs/access.py."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from custodia.api.auth import actor_of
from custodia.api.jobs.schemas import JobOut
from custodia.jobs.access import access_job_by_id
from custodia.jobs.models import Job

router = Router(tags=["jobs"])


@router.get("/{job_id}", response=JobOut)
def get_job(request: HttpRequest, job_id: str) -> Job:
    """A background job's status, progress (`done` of `total`, `stage`) and result link.

    Only for the member who started it and the business's owners (scope `jobs:job:read`);
    anyone else gets 404. Poll it while `status` is `queued` or `running`.
    """
    return access_job_by_id(actor_of(request), job_id)
