"""The other doors onto exports: the API (tokens vs step-up), `custodia export`, the portal."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone

from custodia.accounts.actions import do_create_api_token
from custodia.audit.models import AuditEvent
from custodia.core.permissions import Permission, Role
from custodia.lifecycle.export.archive import MANIFEST, verify_archive
from custodia.lifecycle.export.models import Export
from custodia.scheduling.actions import do_update_visit
from tests.acting import act
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix, UserFactory, add_member
from tests.lifecycle.export_support import export_env, json_rows, read_zip, rewrite_zip

__all__ = ["export_env"]


def token_client(actor: Any, scopes: list[str] | None) -> HttpsClient:
    act(actor)
    _token, plain = do_create_api_token(actor=actor, name="t", scopes=scopes)
    return HttpsClient(HTTP_AUTHORIZATION=f"Bearer {plain}")


# --- API ----------------------------------------------------------------------------------------


def test_a_token_with_the_scope_starts_and_follows(matrix: TenantMatrix, export_env: Path):
    owner = matrix.a.owner
    api = token_client(owner, ["business:export:create"])
    started = api.post("/api/v1/exports")
    assert started.status_code == 202, started.content
    body = started.json()
    assert body["status"] == "running" and body["page_url"] == f"/app/exports/{body['id']}/"
    status = api.get(f"/api/v1/exports/{body['id']}")
    assert status.status_code == 200 and status.json()["id"] == body["id"]
    act(owner)
    [event] = AuditEvent.objects.filter(tenant_id=owner.tenant_id, action="export.start")
    assert event.detail["via"] == "token"


def test_tokens_without_the_scope_are_refused(matrix: TenantMatrix, export_env: Path):
    owner = matrix.a.owner
    # "Everything the role allows" leaves the export scope out: it is granted only by name.
    everything = token_client(owner, None)
    act(owner)
    assert Permission.BUSINESS_EXPORT not in everything_scopes(owner)
    assert everything.post("/api/v1/exports").status_code == 403
    narrow = token_client(owner, ["clients:record:read"])
    assert narrow.post("/api/v1/exports").status_code == 403
    act(owner)
    assert not Export.objects.filter(tenant_id=owner.tenant_id).exists()


def everything_scopes(owner: Any) -> set[Permission]:
    from custodia.accounts.models import ApiToken

    token = ApiToken.objects.filter(membership=owner.membership).order_by("-created_at").first()
    assert token is not None
    return {Permission(scope) for scope in token.scopes}


def test_lesser_roles_cannot_grant_or_use_the_scope(matrix: TenantMatrix, export_env: Path):
    from django.core.exceptions import ValidationError

    for actor in (matrix.a.manager, matrix.a.staff):
        act(actor)
        with pytest.raises(ValidationError):
            do_create_api_token(actor=actor, name="t", scopes=["business:export:create"])
        api = token_client(actor, None)
        assert api.post("/api/v1/exports").status_code == 403


def test_the_session_api_needs_a_step_up(matrix: TenantMatrix, export_env: Path):
    owner = matrix.a.owner
    page = HttpsClient(enforce_csrf_checks=True).act_as(owner)
    page.get("/api/v1/docs")
    headers = {
        "HTTP_X_CSRFTOKEN": page.cookies["__Host-csrftoken"].value,
        "HTTP_REFERER": "https://testserver/app/",
    }
    fresh = page.post("/api/v1/exports", **headers)
    assert fresh.status_code == 202, fresh.content
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=10), tick=False):
        stale = page.post("/api/v1/exports", **headers)
    assert stale.status_code == 403, stale.content
    assert "confirm" in stale.json()["detail"]


def test_other_businesses_see_nothing_through_the_api(matrix: TenantMatrix, export_env: Path):
    started = token_client(matrix.a.owner, ["business:export:create"]).post("/api/v1/exports")
    export_id = started.json()["id"]
    outsider = token_client(matrix.outsider, ["business:export:create"])
    response = outsider.get(f"/api/v1/exports/{export_id}")
    assert response.status_code == 404 and export_id not in response.content.decode()
    assert outsider.get("/api/v1/exports/not-a-uuid").status_code == 404


# --- The command ----------------------------------------------------------------------------------


def test_create_and_verify_at_the_console(
    matrix: TenantMatrix, export_env: Path, tmp_path: Path
):
    owner = matrix.a.owner
    out = tmp_path / "business.zip"
    stdout = io.StringIO()
    call_command(
        "export", "create", "--business", owner.business.slug, "--email", owner.user.email,
        "--out", str(out), stdout=stdout,
    )  # fmt: skip
    assert "wrote" in stdout.getvalue()
    manifest = verify_archive(out)
    assert manifest["business_id"] == str(owner.tenant_id)
    checked = io.StringIO()
    call_command("export", "verify", str(out), stdout=checked)
    assert "verified" in checked.getvalue()
    act(owner)
    actions = set(
        AuditEvent.objects.filter(tenant_id=owner.tenant_id, action__startswith="export.")
        .values_list("action", flat=True)
    )
    assert actions == {"export.start", "export.read", "export.download"}
    # Tampering is a clear CommandError.
    files = read_zip(out.read_bytes())
    bad = rewrite_zip(out, tmp_path / "bad.zip", {"clients.csv": files["clients.csv"] + b"x"})
    with pytest.raises(CommandError, match="clients.csv does not match"):
        call_command("export", "verify", str(bad))
    unsigned = rewrite_zip(out, tmp_path / "unsigned.zip", {MANIFEST: None})
    with pytest.raises(CommandError, match="no MANIFEST.json"):
        call_command("export", "verify", str(unsigned))


def test_console_refuses_what_it_should(matrix: TenantMatrix, export_env: Path, tmp_path: Path):
    a = matrix.a
    out = tmp_path / "x.zip"
    with pytest.raises(CommandError, match="not an owner"):
        call_command(
            "export", "create", "--business", a.owner.business.slug,
            "--email", a.manager.user.email, "--out", str(out),
        )  # fmt: skip
    assert not out.exists()
    with pytest.raises(CommandError, match="not an active member"):
        call_command(
            "export", "create", "--business", a.owner.business.slug,
            "--email", matrix.outsider.user.email, "--out", str(out),
        )  # fmt: skip
    assert not out.exists()
    out.write_bytes(b"keep")
    with pytest.raises(CommandError, match="exists"):
        call_command(
            "export", "create", "--business", a.owner.business.slug,
            "--email", a.owner.user.email, "--out", str(out),
        )  # fmt: skip
    assert out.read_bytes() == b"keep"
    with pytest.raises(CommandError, match="not a readable export archive"):
        call_command("export", "verify", str(out))


def test_public_key_is_printed(export_env: Path):
    from custodia.audit.chain import signing_key

    signing_key()
    stdout = io.StringIO()
    call_command("export", "public-key", stdout=stdout)
    assert "BEGIN PUBLIC KEY" in stdout.getvalue() and "# key id" in stdout.getvalue()


# --- The portal -----------------------------------------------------------------------------------


def test_a_client_downloads_only_their_own_data(
    matrix: TenantMatrix, web_as: Any, export_env: Path, tmp_path: Path
):
    a = matrix.a
    act(a.owner)
    do_update_visit(a.visit, actor=a.owner, report="Walked Miso")
    # Someone read the client's record: it shows in their download.
    web_as(a.manager).get(f"/app/clients/{a.client.pk}/")
    response = web_as(a.client_login).post("/app/portal/my-data/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    (tmp_path / "mine.zip").write_bytes(response.content)
    manifest = verify_archive(tmp_path / "mine.zip")
    assert manifest["kind"] == "client" and manifest["client_id"] == str(a.client.pk)
    files = read_zip(response.content)
    [me] = json_rows(files, "client")
    assert me["id"] == str(a.client.pk) and me["email"] == "client@alpha.test"
    assert me["address"] == "1 Main Street"
    [visit] = json_rows(files, "visits")
    assert visit["id"] == str(a.visit.pk) and visit["report"] == "Walked Miso"
    accesses = json_rows(files, "record_access")
    assert any(row["action"] == "client.read" and row["role"] == "manager" for row in accesses)
    everything = b"".join(files.values())
    for other in (a.other_client, matrix.b.client):
        assert str(other.pk).encode() not in everything
        assert other.name.encode() not in everything
    assert b"9999" not in everything and b"4711" not in everything  # no door codes
    act(a.owner)
    [event] = AuditEvent.objects.filter(
        tenant_id=a.owner.tenant_id, action="export.read", client_id=a.client.pk
    )
    assert event.purpose == "export" and event.detail["visits"] == 1


def test_a_business_export_shows_in_the_clients_download(
    matrix: TenantMatrix, web_as: Any, export_env: Path, tmp_path: Path
):
    a = matrix.a
    call_command(
        "export", "create", "--business", a.owner.business.slug, "--email", a.owner.user.email,
        "--out", str(tmp_path / "b.zip"), stdout=io.StringIO(),
    )  # fmt: skip
    files = read_zip(web_as(a.client_login).post("/app/portal/my-data/").content)
    assert any(
        row["action"] == "export.read" and row["purpose"] == "export"
        for row in json_rows(files, "record_access")
    )


def test_nobody_else_gets_a_clients_download(matrix: TenantMatrix, web_as: Any, export_env: Path):
    a = matrix.a
    other_login = add_member(a.owner, UserFactory(), Role.CLIENT, client=a.other_client)
    for actor in (a.owner, a.manager, a.staff, matrix.outsider):
        response = web_as(actor).post("/app/portal/my-data/")
        assert response.status_code in (403, 404) and not response.content.startswith(b"PK")
    assert web_as(a.client_login).get("/app/portal/my-data/").status_code == 405
    # Another client gets their own record, never this one's.
    files = read_zip(web_as(other_login).post("/app/portal/my-data/").content)
    [me] = json_rows(files, "client")
    assert me["id"] == str(a.other_client.pk)
    assert str(a.client.pk).encode() not in b"".join(files.values())


def test_a_console_export_tells_the_other_owners_before_the_command_ends(
    matrix: TenantMatrix,
    export_env: Path,
    tmp_path: Path,
    smtp_server: Any,
    django_capture_on_commit_callbacks: Any,
):
    a = matrix.a
    second = add_member(a.owner, UserFactory(), Role.OWNER)
    with django_capture_on_commit_callbacks(execute=True):
        call_command(
            "export", "create", "--business", a.owner.business.slug, "--email",
            a.owner.user.email, "--out", str(tmp_path / "x.zip"), stdout=io.StringIO(),
        )  # fmt: skip
    # Sent in the commit's callback itself, not by a thread the process might not wait for.
    assert [m.recipients for m in smtp_server.messages] == [[second.user.email]]
