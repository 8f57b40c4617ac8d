"""The owner's export from start to its one download, attacked by every lesser door; expiry;
the stored file's encryption; the audit trail; the other owners' email."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from custodia.accounts.actions import do_create_api_token
from custodia.accounts.stepup import StepUpRequired
from custodia.audit.models import AuditEvent
from custodia.core.permissions import Role
from custodia.lifecycle import retention
from custodia.lifecycle.export.actions import do_build_export, do_start_export
from custodia.lifecycle.export.archive import verify_archive
from custodia.lifecycle.export.models import Export, ExportStatus
from custodia.lifecycle.export.storage import stored_path
from custodia.tenancy.actors import job_actor
from tests.acting import act
from tests.factories import TenantMatrix, UserFactory, add_member, stale
from tests.lifecycle.export_support import export_env, json_rows, read_zip

__all__ = ["export_env"]

ZIP_MAGIC = b"PK\x03\x04"


def start_on_page(web_as: Any, owner: Any) -> Export:
    page = web_as(owner)
    response = page.post("/app/business/export/")
    assert response.status_code == 302, response.content[:300]
    act(owner)
    export = Export.objects.get(tenant_id=owner.tenant_id, started_by=owner.membership)
    assert response["Location"] == f"/jobs/{export.job_id}/"
    return export


def build(owner: Any, export: Export) -> Export:
    """What the job does: act as the starter's membership and build."""
    worker = act(job_actor(owner.membership, job_id=uuid.uuid4(), kind="export"))
    return do_build_export(export.pk, actor=worker)


@pytest.fixture
def ready(matrix: TenantMatrix, web_as: Any, export_env: Path) -> Export:
    export = build(matrix.a.owner, start_on_page(web_as, matrix.a.owner))
    assert export.status == ExportStatus.READY
    return export


def events(owner: Any, action: str) -> list[AuditEvent]:
    act(owner)
    return list(
        AuditEvent.objects.filter(tenant_id=owner.tenant_id, action=action).order_by("id")
    )


def test_the_owner_starts_builds_and_downloads_once(
    matrix: TenantMatrix,
    web_as: Any,
    ready: Export,
    export_env: Path,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
):
    owner = matrix.a.owner
    page = web_as(owner)
    detail = page.get(f"/app/exports/{ready.pk}/")
    assert detail.status_code == 200 and b"Download the export" in detail.content
    assert stored_path(ready).exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = page.post(f"/app/exports/{ready.pk}/download/")
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body.startswith(ZIP_MAGIC)
    assert "attachment" in response["Content-Disposition"]
    (tmp_path / "got.zip").write_bytes(body)
    manifest = verify_archive(tmp_path / "got.zip")
    assert manifest["business_id"] == str(owner.tenant_id)
    clients = json_rows(read_zip(body), "clients")
    assert {row["email"] for row in clients} >= {"client@alpha.test"}
    # Single use: the file is gone, and the link says so.
    assert not stored_path(ready).exists()
    again = page.post(f"/app/exports/{ready.pk}/download/")
    assert again.status_code == 410
    assert b"downloaded already" in again.content and ZIP_MAGIC not in again.content
    assert page.get(f"/app/exports/{ready.pk}/").status_code == 410
    act(owner)
    assert Export.objects.get(pk=ready.pk).status == ExportStatus.DOWNLOADED


def test_start_needs_a_fresh_step_up(matrix: TenantMatrix, web_as: Any, export_env: Path):
    owner = matrix.a.owner
    page = web_as(owner)
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=30), tick=False):
        response = page.post("/app/business/export/", HTTP_REFERER="https://testserver/")
    assert response.status_code == 302 and "/step-up/" in response["Location"]
    act(owner)
    assert not Export.objects.filter(tenant_id=owner.tenant_id).exists()
    with pytest.raises(StepUpRequired):
        do_start_export(actor=stale(owner))


def test_a_job_can_never_start_one(matrix: TenantMatrix, export_env: Path):
    worker = act(job_actor(matrix.a.owner.membership, job_id=uuid.uuid4(), kind="export"))
    with pytest.raises(StepUpRequired):
        do_start_export(actor=worker)


def test_the_stored_file_is_encrypted(matrix: TenantMatrix, ready: Export):
    data = stored_path(ready).read_bytes()
    assert data.startswith(b"age-encryption.org/v1")
    for secret in (b"Alpha Client", b"client@alpha.test", b"4711", b"Key under the mat"):
        assert secret not in data
    assert ZIP_MAGIC not in data
    # The key is only in the database, sealed under the business's key.
    act(matrix.a.owner)
    assert Export.objects.filter(pk=ready.pk).values_list("file_key", flat=True).get() is not None
    assert b"AGE-SECRET-KEY" not in data


def test_the_trail_has_the_start_reads_and_download(
    matrix: TenantMatrix, web_as: Any, ready: Export, django_capture_on_commit_callbacks: Any
):
    owner = matrix.a.owner
    [start] = events(owner, "export.start")
    assert start.actor_user_id == owner.user.pk and start.purpose == "export"
    assert start.target_id == str(ready.pk) and start.detail["via"] == "session"
    reads = events(owner, "export.read")
    by_entity = {event.detail["entity"]: event for event in reads}
    assert by_entity["clients"].detail["count"] == 2
    assert set(by_entity["clients"].subject_ids) == {matrix.a.client.pk, matrix.a.other_client.pk}
    assert by_entity["visits"].subject_ids == [matrix.a.client.pk]
    assert {"business", "members", "visits", "home_access", "audit_events"} <= set(by_entity)
    assert all(event.purpose == "export" for event in reads)
    with django_capture_on_commit_callbacks(execute=True):
        assert web_as(owner).post(f"/app/exports/{ready.pk}/download/").status_code == 200
    [download] = events(owner, "export.download")
    assert download.detail["rows"]["clients"] == 2
    assert download.detail["count"] == sum(ready.rows.values()) and download.purpose == "export"


def test_expiry_deletes_the_file_and_the_link_says_so(
    matrix: TenantMatrix, web_as: Any, ready: Export
):
    owner = matrix.a.owner
    later = timezone.now() + dt.timedelta(hours=24, minutes=1)
    with time_machine.travel(later, tick=False):
        page = web_as(owner)
        detail = page.get(f"/app/exports/{ready.pk}/")
        assert detail.status_code == 410 and b"expired" in detail.content
        assert not stored_path(ready).exists()
        response = page.post(f"/app/exports/{ready.pk}/download/")
        assert response.status_code == 410 and ZIP_MAGIC not in response.content
    act(owner)
    assert Export.objects.get(pk=ready.pk).status == ExportStatus.EXPIRED


def test_the_retention_run_deletes_expired_files_nobody_looked_at(ready: Export):
    path = stored_path(ready)
    [kept] = retention.enforce(only={"exports"})
    assert kept == retention.Outcome("exports", 0) and path.exists()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=24, minutes=1)
    assert retention.enforce(later, only={"exports"}) == [retention.Outcome("exports", 1)]
    assert not path.exists()


def test_no_lesser_door_gets_the_file(
    matrix: TenantMatrix, web_as: Any, api_as: Any, ready: Export
):
    a = matrix.a
    second_owner = add_member(a.owner, UserFactory(), Role.OWNER)
    doors = {
        "outsider owner": matrix.outsider,
        "another owner": second_owner,
        "manager": a.manager,
        "staff": a.staff,
        "client": a.client_login,
    }
    for label, actor in doors.items():
        page = web_as(actor)
        for response in (
            page.get(f"/app/exports/{ready.pk}/"),
            page.post(f"/app/exports/{ready.pk}/download/"),
        ):
            assert response.status_code in (403, 404), (label, response.status_code)
            assert ZIP_MAGIC not in response.content, label
        listing = page.get("/app/business/export/")
        assert listing.status_code in (200, 403), label
        assert str(ready.pk).encode() not in listing.content, label
        if actor.role == Role.CLIENT:
            continue  # clients hold no API tokens
        api = api_as(actor)
        assert api.get(f"/api/v1/exports/{ready.pk}").status_code in (403, 404), label
    # Managers, staff and clients cannot start one at all.
    for actor in (a.manager, a.staff, a.client_login):
        assert web_as(actor).post("/app/business/export/").status_code == 403
    # The file is still there for its starter.
    assert stored_path(ready).exists()


def test_a_token_never_downloads(matrix: TenantMatrix, ready: Export):
    from tests.conftest import HttpsClient

    owner = matrix.a.owner
    act(owner)
    _token, plain = do_create_api_token(
        actor=owner, name="export", scopes=["business:export:create"]
    )
    client = HttpsClient(HTTP_AUTHORIZATION=f"Bearer {plain}")
    response = client.post(f"/app/exports/{ready.pk}/download/")
    assert response.status_code in (302, 403, 404) and ZIP_MAGIC not in response.content
    assert stored_path(ready).exists()


def test_other_owners_are_told_without_customer_data(
    matrix: TenantMatrix, web_as: Any, export_env: Path, smtp_server: Any
):
    a = matrix.a
    second = add_member(a.owner, UserFactory(full_name="Second Owner"), Role.OWNER)
    start_on_page(web_as, a.owner)
    [message] = smtp_server.wait_for(1)
    assert message.recipients == [second.user.email]
    assert a.owner.user.full_name in message.body
    assert "Alpha" in message.subject
    for secret in ("Alpha Client", "client@alpha.test", "4711", "Main Street", "Cat: Miso"):
        assert secret not in message.body and secret not in message.subject
    assert all(a.manager.user.email not in m.recipients for m in smtp_server.messages)


def test_one_export_at_a_time(matrix: TenantMatrix, web_as: Any, export_env: Path):
    owner = matrix.a.owner
    start_on_page(web_as, owner)
    again = web_as(owner).post("/app/business/export/")
    assert again.status_code == 400 and b"still being made" in again.content


def test_a_failed_build_keeps_nothing(
    matrix: TenantMatrix, web_as: Any, export_env: Path, settings: Any
):
    owner = matrix.a.owner
    export = start_on_page(web_as, owner)
    settings.AUDIT_SIGNING_KEY_FILE = Path("/proc/no/such/dir/key.pem")  # signing fails
    built = build(owner, export)
    assert built.status == ExportStatus.FAILED
    assert not stored_path(export).exists()
    assert web_as(owner).get(f"/app/exports/{export.pk}/").status_code == 410


def test_page_lists_own_exports_and_works_on_a_phone(
    matrix: TenantMatrix, web_as: Any, ready: Export
):
    page = web_as(matrix.a.owner).get("/app/business/export/")
    assert page.status_code == 200
    assert f"/app/exports/{ready.pk}/".encode() in page.content
    assert b"<script" not in page.content and b"style=" not in page.content


def test_archive_bytes_hold_only_this_business(matrix: TenantMatrix, ready: Export):
    from custodia.lifecycle.export.storage import open_decrypted

    act(matrix.a.owner)
    with open_decrypted(Export.objects.get(pk=ready.pk)) as handle:
        data = handle.read()
    files = read_zip(data)
    assert str(matrix.b.client.pk).encode() not in b"".join(files.values())
    assert io.BytesIO(data).read(4) == ZIP_MAGIC


def test_an_altered_stored_file_is_refused_not_served(
    matrix: TenantMatrix, web_as: Any, ready: Export
):
    path = stored_path(ready)
    data = bytearray(path.read_bytes())
    data[-20] ^= 0x01  # one bit in the last chunk's ciphertext
    path.write_bytes(bytes(data))
    response = web_as(matrix.a.owner).post(f"/app/exports/{ready.pk}/download/")
    assert response.status_code == 410 and ZIP_MAGIC not in response.content
    assert b"failed" in response.content
    act(matrix.a.owner)
    assert Export.objects.get(pk=ready.pk).status == ExportStatus.FAILED
    assert not path.exists()
