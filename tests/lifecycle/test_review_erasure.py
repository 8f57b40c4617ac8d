"""Attack review of erasure (issue 14): an export started before a client's erasure and not yet
downloaded is a copy of their personal data held by the platform; after the erasure it is not
handed out, and its file is deleted when it is next looked at (or by the retention sweep)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from custodia.clients.models import Client
from custodia.jobs.models import Job
from custodia.lifecycle.erasure import do_erase_client
from custodia.lifecycle.export.actions import ExportGone, do_download_export
from custodia.lifecycle.export.models import Export, ExportStatus
from custodia.lifecycle.export.storage import stored_path
from tests.acting import act
from tests.factories import TenantMatrix
from tests.lifecycle.export_support import export_env
from tests.lifecycle.test_export_pages import build, start_on_page

__all__ = ["export_env"]


def test_an_export_made_before_an_erasure_is_not_handed_out_after_it(
    matrix: TenantMatrix, web_as: Any, export_env: Path
) -> None:
    a, b = matrix.a, matrix.b
    export = build(a.owner, start_on_page(web_as, a.owner))
    assert export.status == ExportStatus.READY and stored_path(export).exists()
    other = build(b.owner, start_on_page(web_as, b.owner))
    act(a.manager)
    do_erase_client(Client.objects.get(pk=a.client.pk), actor=a.manager)
    act(a.owner)
    with pytest.raises(ExportGone):
        do_download_export(export.pk, actor=a.owner)
    assert Export.objects.get(pk=export.pk).status == ExportStatus.EXPIRED
    assert not stored_path(export).exists()
    # The page says it is gone too.
    assert web_as(a.owner).get(f"/app/exports/{export.pk}/").status_code == 410
    # Another business's export is untouched.
    act(b.owner)
    assert Export.objects.get(pk=other.pk).status == ExportStatus.READY
    assert stored_path(other).exists()


def test_erasing_a_client_who_started_a_job_is_not_a_500(matrix: TenantMatrix) -> None:
    """A job's row cascades from its starter's membership, which erasure deletes; the manager
    erasing cannot see the client's job (jobs/0002: starter or owner), so Django's cascade
    would miss it and the database refuse the deletion."""
    a = matrix.a
    act(a.client_login)
    job = Job.objects.create(
        tenant_id=a.client_login.tenant_id, kind="export", started_by=a.client_login.membership
    )
    act(a.manager)
    do_erase_client(Client.objects.get(pk=a.client.pk), actor=a.manager)
    act(a.owner)
    assert not Job.objects.filter(pk=job.pk).exists()
