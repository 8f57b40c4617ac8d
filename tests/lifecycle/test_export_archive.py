"""The export archive as a plain function: its content equals the database, its README describes
every column, its manifest verifies, and every kind of tampering is caught."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from custodia.audit.models import AuditEvent
from custodia.clients.actions import do_create_client
from custodia.clients.models import Client
from custodia.core.audit import AuditAction, record
from custodia.lifecycle.export import entities
from custodia.lifecycle.export.actions import write_business_archive
from custodia.lifecycle.export.archive import (
    MANIFEST,
    PUBLIC_KEY,
    README,
    ExportError,
    safe_cell,
    verify_archive,
)
from custodia.scheduling.actions import do_update_visit
from tests.acting import act
from tests.factories import TenantMatrix
from tests.lifecycle.export_support import csv_rows, export_env, json_rows, read_zip, rewrite_zip

__all__ = ["export_env"]


def build(owner: Any, path: Path, progress: Any = None) -> dict[str, bytes]:
    act(owner)
    with open(path, "wb") as out:
        write_business_archive(owner, out, progress=progress)
    return read_zip(path.read_bytes())


@pytest.fixture
def archive(matrix: TenantMatrix, export_env: Path, tmp_path: Path) -> Path:
    business = matrix.a
    act(business.owner)
    do_update_visit(business.visit, actor=business.owner, report="Fed the cat; =1+1 ok")
    path = tmp_path / "export.zip"
    build(business.owner, path)
    return path


def test_progress_is_reported_up_to_the_total(
    matrix: TenantMatrix, export_env: Path, tmp_path: Path
):
    calls: list[tuple[int, int, str]] = []
    build(matrix.a.owner, tmp_path / "e.zip", lambda d, t, s: calls.append((d, t, s)))
    assert calls, "no progress reported"
    stages = [stage for _, _, stage in calls]
    assert "clients" in stages and "visits" in stages and stages[-1] == "signed"
    done = [d for d, _, _ in calls]
    assert done == sorted(done)
    assert calls[-1][0] == calls[-1][1] > 0


def test_every_entity_equals_the_database(matrix: TenantMatrix, archive: Path):
    business = matrix.a
    files = read_zip(archive.read_bytes())
    for entity in entities.BUSINESS_ENTITIES:
        assert f"{entity.name}.csv" in files and f"{entity.name}.json" in files
        assert csv_rows(files, entity.name)[0:0] == []
        header = files[f"{entity.name}.csv"].decode().splitlines()[0].split(",")
        assert header == entity.column_names
    clients = {row["id"]: row for row in json_rows(files, "clients")}
    act(business.owner)
    expected = Client.objects.filter(tenant_id=business.owner.tenant_id)
    assert set(clients) == {str(client.pk) for client in expected}
    main = clients[str(business.client.pk)]
    # Decrypted values, exactly.
    assert main["email"] == "client@alpha.test"
    assert main["phone"] == "+1 555 0100"
    assert main["address"] == "1 Main Street"
    assert main["notes"] == "Cat: Miso"
    home = {row["client_id"]: row for row in json_rows(files, "home_access")}
    assert home[str(business.client.pk)]["door_code"] == "4711"
    assert home[str(business.client.pk)]["alarm_code"] == "0815"
    assert home[str(business.client.pk)]["instructions"] == "Key under the mat"
    assert home[str(business.other_client.pk)]["door_code"] == "9999"
    visits = json_rows(files, "visits")
    assert [visit["id"] for visit in visits] == [str(business.visit.pk)]
    assert visits[0]["report"] == "Fed the cat; =1+1 ok"
    assert visits[0]["staff_id"] == str(business.staff.membership.pk)
    services = json_rows(files, "services")
    assert [(s["name"], s["price_cents"]) for s in services] == [("Walk", 2500)]
    assignments = json_rows(files, "assignments")
    assert [(a["client_id"], a["staff_id"]) for a in assignments] == [
        (str(business.client.pk), str(business.staff.membership.pk))
    ]
    members = {row["id"]: row for row in json_rows(files, "members")}
    for actor in (business.owner, business.manager, business.staff, business.client_login):
        row = members[str(actor.membership.pk)]
        assert row["email"] == actor.user.email and row["role"] == actor.role
    [company] = json_rows(files, "business")
    assert company["id"] == str(business.owner.tenant_id)
    assert company["slug"] == business.owner.business.slug
    # The audit trail: every event of the business before the export, read as the owner role.
    in_database = set(
        AuditEvent.objects.filter(tenant_id=business.owner.tenant_id).values_list("id", flat=True)
    )
    exported = {row["id"] for row in json_rows(files, "audit_events")}
    assert exported and exported <= in_database
    assert {"client.create", "visit.update"} <= {
        row["action"] for row in json_rows(files, "audit_events")
    }
    # Nothing of the other business.
    everything = b"".join(files.values())
    assert b"Bravo" not in everything and str(matrix.b.client.pk).encode() not in everything
    # CSV and JSON agree.
    assert [row["id"] for row in csv_rows(files, "clients")] == list(clients)


def test_readme_describes_every_file_and_column(archive: Path):
    files = read_zip(archive.read_bytes())
    text = files[README].decode()
    manifest = json.loads(files[MANIFEST])["manifest"]
    for name in manifest["files"]:
        if name.endswith(".csv"):
            entity = name.removesuffix(".csv")
            section = text.split(f"### {entity}.csv, {entity}.json", 1)[1].split("###", 1)[0]
            header = files[name].decode().splitlines()[0].split(",")
            for column in header:
                assert re.search(rf"^\| {re.escape(column)} \| \S", section, re.M), (name, column)
        elif name.startswith("photos/"):
            assert "photos/<visit_id>/<photo_id>.jpg" in text, name
        elif name.startswith("pets/"):
            assert "pets/<pet_id>.jpg" in text, name
        else:
            assert f"### {name}" in text or name.endswith(".json"), name


def test_formula_cells_are_neutralised(matrix: TenantMatrix, export_env: Path, tmp_path: Path):
    owner = matrix.a.owner
    act(owner)
    do_create_client(actor=owner, name="=HYPERLINK(\"http://x\")", notes="+1", phone="-555 0100",
                     address="@SUM(A1)", email="tab@x.test")  # fmt: skip
    files = build(owner, tmp_path / "e.zip")
    row = next(r for r in csv_rows(files, "clients") if r["name"].startswith("'="))
    assert row["name"] == "'=HYPERLINK(\"http://x\")"
    assert (row["notes"], row["phone"], row["address"]) == ("'+1", "'-555 0100", "'@SUM(A1)")
    exact = next(r for r in json_rows(files, "clients") if r["name"].startswith("="))
    assert exact["notes"] == "+1"  # JSON keeps the value
    for value in ("\tx", "\rx", "=1", "+1", "-1", "@1"):
        assert safe_cell(value) == "'" + value
    assert safe_cell("plain") == "plain" and safe_cell(None) == "" and safe_cell(True) == "true"


# --- Verification --------------------------------------------------------------------------------


def test_verify_passes_on_the_archive(matrix: TenantMatrix, archive: Path):
    manifest = verify_archive(archive)
    assert manifest["kind"] == "business"
    assert manifest["business"] == matrix.a.owner.business.slug
    assert set(manifest["files"]) >= {"clients.csv", "clients.json", README, PUBLIC_KEY}


def test_an_edited_csv_fails(archive: Path, tmp_path: Path):
    files = read_zip(archive.read_bytes())
    edited = files["clients.csv"].replace(b"Alpha Client", b"Alpha Klient")
    bad = rewrite_zip(archive, tmp_path / "bad.zip", {"clients.csv": edited})
    with pytest.raises(ExportError, match="clients.csv does not match"):
        verify_archive(bad)


def test_a_changed_manifest_fails(archive: Path, tmp_path: Path):
    files = read_zip(archive.read_bytes())
    document = json.loads(files[MANIFEST])
    edited = files["clients.csv"] + b"x,y\n"
    document["manifest"]["files"]["clients.csv"]["sha256"] = __import__("hashlib").sha256(
        edited
    ).hexdigest()
    document["manifest"]["files"]["clients.csv"]["size"] = len(edited)
    bad = rewrite_zip(
        archive,
        tmp_path / "bad.zip",
        {"clients.csv": edited, MANIFEST: json.dumps(document).encode()},
    )
    with pytest.raises(ExportError, match="signature does not match"):
        verify_archive(bad)


def test_a_removed_file_fails(archive: Path, tmp_path: Path):
    bad = rewrite_zip(archive, tmp_path / "bad.zip", {"visits.json": None})
    with pytest.raises(ExportError, match="visits.json is listed in the manifest but missing"):
        verify_archive(bad)


def test_an_added_file_fails(archive: Path, tmp_path: Path):
    bad = rewrite_zip(archive, tmp_path / "bad.zip", {"extra.csv": b"a,b\n"})
    with pytest.raises(ExportError, match="extra.csv is in the archive but not in the manifest"):
        verify_archive(bad)


def test_a_swapped_signature_fails(
    matrix: TenantMatrix, archive: Path, export_env: Path, tmp_path: Path
):
    other = tmp_path / "other.zip"
    build(matrix.b.owner, other)
    theirs = json.loads(read_zip(other.read_bytes())[MANIFEST])["signature"]
    document = json.loads(read_zip(archive.read_bytes())[MANIFEST])
    assert document["signature"] != theirs
    document["signature"] = theirs
    bad = rewrite_zip(archive, tmp_path / "bad.zip", {MANIFEST: json.dumps(document).encode()})
    with pytest.raises(ExportError, match="signature does not match"):
        verify_archive(bad)
    # Another key's signature (a forged archive), even when self-consistent.
    document = json.loads(read_zip(archive.read_bytes())[MANIFEST])
    document["signature"] = base64.b64encode(bytes(64)).decode()
    bad = rewrite_zip(archive, tmp_path / "zeros.zip", {MANIFEST: json.dumps(document).encode()})
    with pytest.raises(ExportError, match="signature does not match"):
        verify_archive(bad)


def test_not_a_zip_fails(tmp_path: Path, export_env: Path):
    path = tmp_path / "junk.zip"
    path.write_bytes(b"not a zip")
    with pytest.raises(ExportError, match="not a readable export archive"):
        verify_archive(path)


@pytest.mark.skipif(not shutil.which("openssl") or not shutil.which("jq"), reason="openssl, jq")
def test_documented_openssl_check(archive: Path, tmp_path: Path):
    """docs/export.md's check without Custodia: jq, openssl and sha256sum."""
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(tmp_path / "x")
    script = (Path(__file__).parents[2] / "docs" / "export.md").read_text()
    block = script.split("```sh verify-openssl\n", 1)[1].split("```", 1)[0]
    result = subprocess.run(  # noqa: S603
        ["/bin/sh", "-ec", block], cwd=tmp_path / "x", capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "Signature Verified Successfully" in result.stdout
    (tmp_path / "x" / "clients.csv").write_bytes(b"tampered\n")
    failed = subprocess.run(  # noqa: S603
        ["/bin/sh", "-ec", block], cwd=tmp_path / "x", capture_output=True, text=True
    )
    assert failed.returncode != 0


def test_documented_python_check(archive: Path, tmp_path: Path):
    script = (Path(__file__).parents[2] / "docs" / "export.md").read_text()
    code = script.split("```python verify-python\n", 1)[1].split("```", 1)[0]
    with zipfile.ZipFile(archive) as opened:
        key = opened.read(PUBLIC_KEY)
    (tmp_path / "key.pem").write_bytes(key)
    (tmp_path / "check.py").write_text(code)
    ok = subprocess.run(  # noqa: S603
        [sys.executable, str(tmp_path / "check.py"), str(archive), str(tmp_path / "key.pem")],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "verified" in ok.stdout, ok.stderr
    files = read_zip(archive.read_bytes())
    bad = rewrite_zip(archive, tmp_path / "bad.zip", {"visits.csv": files["visits.csv"] + b"x"})
    failed = subprocess.run(  # noqa: S603
        [sys.executable, str(tmp_path / "check.py"), str(bad), str(tmp_path / "key.pem")],
        capture_output=True,
        text=True,
    )
    assert failed.returncode != 0


def test_zip_is_readable_by_the_standard_library(archive: Path):
    with zipfile.ZipFile(io.BytesIO(archive.read_bytes())) as opened:
        assert opened.testzip() is None


def test_the_trail_written_by_the_database_reads_like_the_rest(
    matrix: TenantMatrix, export_env: Path, tmp_path: Path
):
    """The audit trail's CSV and JSON are made in SQL: the same guard, quoting and values."""
    owner = matrix.a.owner
    act(owner)
    tricky = '=cmd|" /C calc",\nnext line'
    record(AuditAction.AUDIT_READ, actor=owner, purpose=tricky, detail={"count": 3, "a": "b"})
    record(AuditAction.CLIENT_LIST, actor=owner, subject_ids=[matrix.a.client.pk], purpose="-x")
    files = build(owner, tmp_path / "e.zip")
    rows = {row["purpose"]: row for row in csv_rows(files, "audit_events")}
    exact = {row["purpose"]: row for row in json_rows(files, "audit_events")}
    assert "'" + tricky in rows and tricky in exact
    assert rows["'-x"]["subject_ids"] == str(matrix.a.client.pk)
    assert exact["-x"]["subject_ids"] == [str(matrix.a.client.pk)]
    assert exact[tricky]["detail"] == {"count": 3, "a": "b"}
    assert json.loads(rows["'" + tricky]["detail"]) == {"count": 3, "a": "b"}
    event = AuditEvent.objects.get(tenant_id=owner.tenant_id, purpose=tricky)
    assert exact[tricky]["id"] == event.id and rows["'" + tricky]["id"] == str(event.id)
    assert exact[tricky]["occurred_at"] == event.occurred_at.astimezone(dt.UTC).isoformat()
    assert exact[tricky]["hash"] == bytes(event.hash).hex() == rows["'" + tricky]["hash"]
    assert exact[tricky]["actor_user_id"] == str(owner.user.pk)
    assert exact[tricky]["client_id"] is None and rows["'" + tricky]["client_id"] == ""
