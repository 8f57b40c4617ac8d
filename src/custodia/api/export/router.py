"""API endpoints of exports: start one, and follow it (docs/export.md, "Tokens and step-up").

The file itself is never served here: only the owner who started it downloads it, once, in
their browser session (web/export/views.py).
"""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse
from ninja import Router

from custodia.api.auth import actor_of
from custodia.api.export.schemas import ExportOut
from custodia.lifecycle.export import access
from custodia.lifecycle.export.actions import settle
from custodia.lifecycle.export.models import Export
from custodia.lifecycle.export.tasks import start_export as start_export_job

router = Router(tags=["exports"])


def _out(export: Export) -> ExportOut:
    return ExportOut(
        id=export.pk,
        status=export.status,
        created_at=export.created_at,
        expires_at=export.expires_at,
        finished_at=export.finished_at,
        downloaded_at=export.downloaded_at,
        rows=export.rows,
        size=export.size,
        page_url=reverse("export_detail", args=[export.pk]),
        job_id=export.job_id,
    )


@router.post("", response={202: ExportOut})
def start_export(request: HttpRequest) -> ExportOut:
    """Start a whole-business export (owners) as a job (`job_id`: GET /api/v1/jobs/{id} shows
    its progress). A session needs a fresh step-up; a token needs the scope
    `business:export:create`, which tokens get only when it is asked for by name."""
    return _out(start_export_job(actor=actor_of(request)).export)


@router.get("/{export_id}", response=ExportOut)
def get_export(request: HttpRequest, export_id: str) -> ExportOut:
    """An export the caller started: its status, row counts and size, and its page."""
    actor = actor_of(request)
    return _out(settle(access.access_export_by_id(actor, export_id), actor=actor))
