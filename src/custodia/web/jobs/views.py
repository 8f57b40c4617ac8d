"""A background job's page: its status, progress and result, for its starter and the owners."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from custodia.core.actor import Actor
from custodia.core.permissions import Permission
from custodia.jobs.access import access_job_by_id
from custodia.web.decorators import member_required

# Seconds between the page's own reloads while the job is queued or running.
REFRESH_SECONDS = 2


@require_safe
@member_required(Permission.JOBS_READ)
def job_detail(request: HttpRequest, actor: Actor, job_id: str) -> HttpResponse:
    """The job's status; the page reloads itself while it is not finished (no JavaScript)."""
    job = access_job_by_id(actor, job_id)
    return render(
        request,
        "jobs/detail.html",
        {
            "job": job,
            "refresh_seconds": REFRESH_SECONDS if job.is_active else None,
            "started_by_you": job.started_by_id == actor.membership.pk,
        },
    )
