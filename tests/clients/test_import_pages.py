"""The import pages (upload, preview, confirm) and `custodia clients import`: who may use them,
a preview that cannot be forged or carried elsewhere, nothing written on any error, and an
upload that never reaches the disk."""

from __future__ import annotations

import json
import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from custodia.clients.models import Client
from custodia.web.clients import imports
from tests.acting import act
from tests.audit.support import chain_events
from tests.factories import TenantMatrix
from tests.web.support import logged_in, snapshot, text

pytestmark = pytest.mark.django_db

GOOD = b"name,email,phone\nAda Import,ada@import.test,555 0101\nBo Import,,\n"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def upload(data: bytes, name: str = "clients.csv") -> dict[str, Any]:
    return {"file": SimpleUploadedFile(name, data, content_type="text/csv")}


def sealed_of(page: Any) -> str:
    found = re.search(r'name="preview" value="([^"]+)"', page.content.decode())
    assert found, "no confirm form"
    return found[1]


def names_in(business: Any) -> set[str]:
    act(business.owner)
    return set(
        Client.objects.filter(tenant_id=business.owner.tenant_id).values_list("name", flat=True)
    )


def test_a_manager_previews_then_confirms(matrix: TenantMatrix):
    browser = logged_in(matrix.a.manager)
    form = browser.get("/app/clients/import/")
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.content.decode()
    assert "Import clients" in text(browser.get("/app/clients/"))

    preview = browser.post("/app/clients/import/", upload(GOOD))
    assert preview.status_code == 200
    assert "2 clients will be added" in text(preview)
    assert "Ada Import" in text(preview) and "ada@import.test" in text(preview)
    assert "Ada Import" not in names_in(matrix.a)  # nothing written yet

    done = browser.post("/app/clients/import/confirm/", {"preview": sealed_of(preview)})
    assert done.status_code == 302 and done["Location"] == "/app/clients/"
    assert "Imported 2 clients." in text(browser.get("/app/clients/"))
    assert {"Ada Import", "Bo Import"} <= names_in(matrix.a)
    imported = [e for e in chain_events(matrix.a.owner) if e["action"] == "client.import"]
    assert [json.loads(event["detail"]) for event in imported] == [{"count": 2}]
    # The same preview again: its emails are taken now; nothing more is written.
    again = browser.post("/app/clients/import/confirm/", {"preview": sealed_of(preview)})
    assert again.status_code == 400
    assert "A client with this email exists already." in text(again)
    assert len([n for n in names_in(matrix.a) if n.endswith("Import")]) == 2


def test_the_preview_shows_each_rows_pet_and_the_confirm_adds_it(matrix: TenantMatrix):
    browser = logged_in(matrix.a.manager)
    data = b"name,pet_name,pet_species,pet_birthday\nPet Owner,Miso,cat,2019-04-01\nNo Pet,,,\n"
    preview = browser.post("/app/clients/import/", upload(data))
    assert preview.status_code == 200
    assert "Miso · cat · born 2019-04-01" in text(preview)
    bad = browser.post("/app/clients/import/", upload(b"name,pet_birthday\nX,tomorrow\n"))
    assert "pet_birthday: Enter a date as YYYY-MM-DD." in text(bad)
    done = browser.post("/app/clients/import/confirm/", {"preview": sealed_of(preview)})
    assert done.status_code == 302
    act(matrix.a.owner)
    owner = Client.objects.get(tenant_id=matrix.a.owner.tenant_id, name="Pet Owner")
    assert list(owner.pets.values_list("name", flat=True)) == ["Miso"]


def test_a_file_with_errors_shows_each_row_and_writes_nothing(matrix: TenantMatrix):
    browser = logged_in(matrix.a.owner)
    before = snapshot(matrix)
    page = browser.post(
        "/app/clients/import/", upload(b"name,email\nFine,fine@import.test\nBad,bad@\n")
    )
    assert page.status_code == 400
    assert re.search(r"<td data-label=\"Row\">3</td>", page.content.decode())
    assert "email: Enter a valid email address." in text(page)
    assert "1 row has errors" in text(page)
    assert 'name="preview"' not in page.content.decode()  # no way to confirm
    assert snapshot(matrix) == before


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"name;email\nA;a@b.test\n", "Column 1 (name;email) is not one this import knows"),
        ("name\nZoë\n".encode("cp1252"), "The file is not UTF-8 text"),
        (b"", "The submitted file is empty."),
    ],
)
def test_a_bad_file_is_a_400_naming_the_problem(matrix: TenantMatrix, data: bytes, message: str):
    page = logged_in(matrix.a.manager).post("/app/clients/import/", upload(data))
    assert page.status_code == 400 and message in text(page)


def test_a_file_with_a_bom_is_read(matrix: TenantMatrix):
    page = logged_in(matrix.a.manager).post(
        "/app/clients/import/", upload("\ufeffNAME\nZoë Bom\n".encode())
    )
    assert page.status_code == 200 and "Zoë Bom" in text(page)


def test_an_upload_over_the_cap_stays_off_the_disk(matrix: TenantMatrix, settings, tmp_path: Path):
    # Over Django's own in-memory threshold (2.5 MB), which would otherwise spool it to a file.
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    data = b"name\n" + b"A fairly long client name here\n" * 100_000
    assert len(data) > 2.5 * 1024 * 1024
    page = logged_in(matrix.a.manager).post("/app/clients/import/", upload(data))
    assert page.status_code == 400 and "The file is larger than 2 MB" in text(page)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("role", ["staff", "client_login"])
def test_staff_and_clients_get_403(matrix: TenantMatrix, role: str):
    browser = logged_in(getattr(matrix.a, role))
    before = snapshot(matrix)
    assert browser.get("/app/clients/import/").status_code == 403
    assert browser.post("/app/clients/import/", upload(GOOD)).status_code == 403
    sealed = sealed_of(logged_in(matrix.a.manager).post("/app/clients/import/", upload(GOOD)))
    assert browser.post("/app/clients/import/confirm/", {"preview": sealed}).status_code == 403
    assert snapshot(matrix) == before


def test_a_preview_is_bound_to_its_member_and_business(matrix: TenantMatrix):
    sealed = sealed_of(logged_in(matrix.a.manager).post("/app/clients/import/", upload(GOOD)))
    before = snapshot(matrix)
    # The owner of the same business, and the owner of another, cannot use it.
    for actor in (matrix.a.owner, matrix.b.owner):
        page = logged_in(actor).post("/app/clients/import/confirm/", {"preview": sealed})
        assert page.status_code == 400 and "expired or was altered" in text(page)
        assert "Ada Import" not in page.content.decode()
    assert snapshot(matrix) == before


def test_a_tampered_forged_or_expired_preview_is_a_400(matrix: TenantMatrix, monkeypatch):
    browser = logged_in(matrix.a.manager)
    sealed = sealed_of(browser.post("/app/clients/import/", upload(GOOD)))
    a = matrix.a.manager
    payload = {
        "business": str(a.tenant_id),
        "member": str(a.membership.pk),
        "rows": [[2, {"name": "Forged"}]],
    }
    tampered = sealed[:-3] + ("AAA" if not sealed.endswith("AAA") else "BBB")
    before = snapshot(matrix)
    for forged in (
        tampered,
        signing.dumps(payload, salt="another purpose", compress=True),
        signing.dumps(payload, key="not the server's key", salt=imports.PREVIEW_SALT),
        '[[2, {"name": "Forged"}]]',
        "",
    ):
        page = browser.post("/app/clients/import/confirm/", {"preview": forged})
        assert page.status_code == 400, forged
    # Correctly signed rows that are not rows at all.
    for rows in ([[2, {"door_code": "1234"}]], [["2", {"name": "x"}]], "rows"):
        bad = signing.dumps({**payload, "rows": rows}, salt=imports.PREVIEW_SALT)
        assert browser.post("/app/clients/import/confirm/", {"preview": bad}).status_code == 400
    monkeypatch.setattr(imports, "PREVIEW_MAX_AGE", -1)
    expired = browser.post("/app/clients/import/confirm/", {"preview": sealed})
    assert expired.status_code == 400 and "expired or was altered" in text(expired)
    assert snapshot(matrix) == before


def test_the_upload_and_the_confirm_need_the_csrf_token(matrix: TenantMatrix):
    browser = logged_in(matrix.a.manager)
    sealed = sealed_of(browser.post("/app/clients/import/", upload(GOOD)))
    browser.handler.enforce_csrf_checks = True
    before = snapshot(matrix)
    assert browser.post("/app/clients/import/", upload(GOOD)).status_code == 403
    assert browser.post("/app/clients/import/confirm/", {"preview": sealed}).status_code == 403
    assert snapshot(matrix) == before


def test_logged_out_visitors_are_sent_to_log_in(matrix: TenantMatrix):
    from tests.web.support import anonymous

    for method, url in (("get", "/app/clients/import/"), ("post", "/app/clients/import/confirm/")):
        response = getattr(anonymous(), method)(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# --- custodia clients import ------------------------------------------------------------------


def run_import(matrix: TenantMatrix, path: Path, *extra: str, email: str = "") -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    args = ["--business", matrix.a.owner.business.slug]
    args += ["--email", email or matrix.a.manager.user.email]
    call_command("clients", "import", *args, str(path), *extra, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_checks_with_dry_run_then_imports(matrix: TenantMatrix, tmp_path: Path):
    path = tmp_path / "clients.csv"
    path.write_bytes(GOOD)
    before = snapshot(matrix)
    out, _ = run_import(matrix, path, "--dry-run")
    assert "2 clients would be added (dry run: nothing was written)" in out
    assert snapshot(matrix) == before
    out, _ = run_import(matrix, path)
    assert "imported 2 clients" in out
    assert {"Ada Import", "Bo Import"} <= names_in(matrix.a)


def test_the_command_names_each_bad_row_and_writes_nothing(matrix: TenantMatrix, tmp_path: Path):
    path = tmp_path / "clients.csv"
    path.write_bytes(b"name,email\nFine,fine@import.test\nBad,bad@\n")
    before = snapshot(matrix)
    for extra in ((), ("--dry-run",)):
        err = StringIO()
        with pytest.raises(CommandError, match="1 errors; nothing was imported"):
            call_command(
                "clients",
                "import",
                "--business",
                matrix.a.owner.business.slug,
                "--email",
                matrix.a.owner.user.email,
                str(path),
                *extra,
                stderr=err,
            )
        assert "row 3, email: Enter a valid email address." in err.getvalue()
        assert "bad@" not in err.getvalue()
    assert snapshot(matrix) == before


def test_the_command_refuses_a_bad_file_a_missing_file_and_staff(
    matrix: TenantMatrix, tmp_path: Path
):
    path = tmp_path / "clients.csv"
    path.write_bytes(b"name,e-mail\nA,a@b.test\n")
    before = snapshot(matrix)
    with pytest.raises(CommandError, match=r"Column 2 \(e-mail\) is not one this import knows"):
        run_import(matrix, path)
    with pytest.raises(CommandError, match="Cannot read"):
        run_import(matrix, tmp_path / "missing.csv")
    path.write_bytes(GOOD)
    with pytest.raises(CommandError, match="may not add clients"):
        run_import(matrix, path, email=matrix.a.staff.user.email)
    with pytest.raises(CommandError, match="not an active member"):
        run_import(matrix, path, email=matrix.b.owner.user.email)
    assert snapshot(matrix) == before
