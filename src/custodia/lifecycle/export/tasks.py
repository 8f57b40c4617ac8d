"""The export job (custodia.jobs): building a started export. Expired files are deleted by the
retention policy's daily run (lifecycle/retention.py, rule "exports").

`start_export` is what the page and the API call: the export is started (step-up, audit event,
the other owners told) and its job queued in the same transaction (`do_start_job`).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.urls import reverse

from custodia.core.actor import Actor
from custodia.jobs.actions import do_start_job
from custodia.jobs.registry import JobContext, job_task
from custodia.lifecycle.export.actions import do_build_export, do_start_export
from custodia.lifecycle.export.models import Export, ExportStatus

KIND = "export"


@dataclass(frozen=True)
class Started:
    export: Export
    job_url: str


def start_export(*, actor: Actor) -> Started:
    """Start a whole-business export and queue the job that builds it (one transaction)."""
    with transaction.atomic():
        export = do_start_export(actor=actor)
        job = do_start_job(KIND, params={"export_id": str(export.pk)}, actor=actor)
        export.job_id = str(job.pk)
        export.save(update_fields=["job_id"])
    return Started(export, reverse("jobs:detail", args=[job.pk]))


@job_task(KIND)
def build_export(ctx: JobContext) -> None:
    """The job: build the archive as the starter's membership, with progress; its result links
    to the export's page, where the starter downloads it once."""
    export = do_build_export(
        ctx.params["export_id"],
        actor=ctx.actor,
        progress=lambda done, total, stage: ctx.progress(done=done, total=total, stage=stage),
    )
    url = reverse("export_detail", args=[export.pk])
    if export.status == ExportStatus.READY:
        ctx.finish(result={"label": "Download the export", "url": url})
    else:
        ctx.finish(result={"label": "The export failed: start a new one", "url": url})
