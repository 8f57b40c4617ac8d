"""End to end: an owner starts an export on the page, a real `custodia worker` builds it with
progress, the job's result links to the export, and the owner downloads it once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction
from django.urls import reverse

from custodia.core.actor import acting_as
from custodia.jobs.models import Job, JobStatus
from custodia.lifecycle.export.archive import verify_archive
from custodia.lifecycle.export.models import Export, ExportStatus
from custodia.lifecycle.export.storage import stored_path
from tests import scratch
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix, build_matrix
from tests.jobs.conftest import Worker, live, read_job, wait_for, workers

# The jobs package's fixtures (committed data, real workers), on a database of this module's
# own: `live` and `workers` take the `jobs_database` defined here.
__all__ = ["live", "workers"]


@pytest.fixture(scope="module")
def jobs_database(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """A migrated database of this module's own; every connection points at it meanwhile."""
    with scratch.database("export_jobs", django_db_blocker) as name:
        yield name


@pytest.fixture
def world(live: str) -> TenantMatrix:
    """Two businesses with every role, committed in this module's database."""
    with transaction.atomic():
        return build_matrix()


@pytest.fixture
def shared_paths(settings: Any, tmp_path: Path) -> dict[str, str]:
    """The export directory and signing key the test process and its worker share."""
    settings.EXPORT_DIR = tmp_path / "exports"
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "secrets" / "signer.pem"
    return {
        "CUSTODIA_EXPORT_DIR": str(settings.EXPORT_DIR),
        "CUSTODIA_AUDIT_SIGNING_KEY_FILE": str(settings.AUDIT_SIGNING_KEY_FILE),
    }


def test_page_to_worker_to_single_download(
    world: TenantMatrix,
    workers: Callable[..., Worker],
    shared_paths: dict[str, str],
    tmp_path: Path,
):
    owner = world.a.owner
    page = HttpsClient().act_as(owner)
    started = page.post("/app/business/export/")
    assert started.status_code == 302, started.content[:300]
    with transaction.atomic(), acting_as(owner):
        export = Export.objects.filter(started_by=owner.membership).latest("created_at")
        job = Job.objects.get(pk=export.job_id)
    assert started["Location"] == reverse("jobs:detail", args=[job.pk])
    assert job.kind == "export"

    # Jobs only: the periodic maintenance has tests of its own (tests/jobs).
    quiet = ["backups", "audit-maintenance", "key-maintenance", "retention"]
    worker = workers(*[arg for task in quiet for arg in ("--without", task)], env=shared_paths)
    finished = wait_for(
        lambda: (
            (j := read_job(job.pk, owner)).status in (JobStatus.SUCCEEDED, JobStatus.FAILED) and j
        ),
        timeout=90,
        what="the export job to finish",
    )
    assert finished.status == JobStatus.SUCCEEDED, worker.output()[-2000:]
    assert finished.total and finished.done == finished.total
    assert finished.result_url == f"/app/exports/{export.pk}/"
    assert finished.result_label == "Download the export"

    # The job page links to the export; the export is ready and stored encrypted.
    job_page = page.get(reverse("jobs:detail", args=[job.pk])).content.decode()
    assert f"/app/exports/{export.pk}/" in job_page
    with transaction.atomic(), acting_as(owner):
        export = Export.objects.get(pk=export.pk)
    assert export.status == ExportStatus.READY
    assert stored_path(export).exists()
    assert b"Alpha Client" not in stored_path(export).read_bytes()

    downloaded = page.post(f"/app/exports/{export.pk}/download/")
    assert downloaded.status_code == 200
    (tmp_path / "export.zip").write_bytes(b"".join(downloaded.streaming_content))
    manifest = verify_archive(tmp_path / "export.zip")
    assert manifest["files"]["clients.csv"]["rows"] >= 2
    assert not stored_path(export).exists()  # deleted once the download committed
    again = page.post(f"/app/exports/{export.pk}/download/")
    assert again.status_code == 410
    assert settings.EXPORT_DIR
