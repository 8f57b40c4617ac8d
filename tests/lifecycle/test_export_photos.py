"""Visit photos and pets' photos in exports: the business export holds every photo of the
business, byte for byte as its page serves it, and none of another business; a client's own
download holds the photos of their own visits and pets only; every photo exported is named in a
bulk read of the trail."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from custodia.audit.models import AuditEvent
from custodia.clients.models import Pet
from custodia.clients.profile_actions import do_create_pet, do_set_pet_photo
from custodia.lifecycle.export import access
from custodia.lifecycle.export.actions import write_business_archive
from custodia.lifecycle.export.archive import MANIFEST, README, verify_archive
from custodia.lifecycle.export.models import Export
from custodia.scheduling.actions import do_create_visit
from custodia.scheduling.models import VisitPhoto
from custodia.scheduling.reporting import do_add_visit_photo
from tests.acting import act
from tests.factories import TenantMatrix
from tests.lifecycle.export_support import csv_rows, export_env, json_rows, read_zip
from tests.scheduling.photos_support import photo_bytes
from tests.web.support import logged_in

__all__ = ["export_env"]


def add_photo(actor: Any, visit: Any, size: tuple[int, int] = (1200, 900)) -> VisitPhoto:
    act(actor)
    return do_add_visit_photo(visit, photo_bytes(size), actor=actor)


def served(actor: Any, photo: VisitPhoto) -> bytes:
    response = logged_in(actor).get(f"/app/visits/{photo.visit_id}/photos/{photo.pk}/")
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    return response.content


def name_of(photo: VisitPhoto) -> str:
    return f"photos/{photo.visit_id}/{photo.pk}.jpg"


@pytest.fixture
def photos(matrix: TenantMatrix) -> dict[str, VisitPhoto]:
    """A photo of the client's visit (by its staff member), one of the other client's visit (by
    the manager), and one in the other business."""
    a, b = matrix.a, matrix.b
    act(a.owner)
    other_visit = do_create_visit(
        actor=a.owner,
        client=a.other_client,
        starts_at=timezone.now() + dt.timedelta(hours=5),
        service=a.service,
    )
    return {
        "mine": add_photo(a.staff, a.visit),
        "other": add_photo(a.manager, other_visit, (800, 600)),
        "bravo": add_photo(b.staff, b.visit, (640, 480)),
    }


def export_events(actor: Any, entity: str) -> list[AuditEvent]:
    act(actor)
    return [
        event
        for event in AuditEvent.objects.filter(
            tenant_id=actor.tenant_id, action="export.read"
        ).order_by("id")
        if event.detail.get("entity") == entity
    ]


def test_the_business_export_holds_every_photo_as_served(
    matrix: TenantMatrix, photos: dict[str, VisitPhoto], export_env: Path, tmp_path: Path
):
    a = matrix.a
    mine, other, bravo = photos["mine"], photos["other"], photos["bravo"]
    expected = {name_of(photo): served(a.owner, photo) for photo in (mine, other)}
    path = tmp_path / "export.zip"
    calls: list[tuple[int, int, str]] = []
    act(a.owner)
    with open(path, "wb") as out:
        built = write_business_archive(a.owner, out, progress=lambda *c: calls.append(c))
    manifest = verify_archive(path)
    files = read_zip(path.read_bytes())
    # The exact JPEG bytes the photo page serves, each listed with its sum in the manifest.
    for name, data in expected.items():
        assert files[name] == data and data.startswith(b"\xff\xd8")
        listed = manifest["files"][name]
        assert listed == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    assert sorted(n for n in files if n.startswith("photos/")) == sorted(expected)
    assert json.loads(files[MANIFEST])["manifest"]["files"].keys() == set(files) - {MANIFEST}
    rows = {row["id"]: row for row in json_rows(files, "visit_photos")}
    assert set(rows) == {str(mine.pk), str(other.pk)}
    row = rows[str(mine.pk)]
    assert row["visit_id"] == str(a.visit.pk) and row["file"] == name_of(mine)
    assert row["content_type"] == "image/jpeg" and row["size"] == len(expected[name_of(mine)])
    assert (row["width"], row["height"]) == (1200, 900)
    assert row["created_by_id"] == str(a.staff.membership.pk)
    assert rows[str(other.pk)]["created_by_id"] == str(a.manager.membership.pk)
    assert [r["id"] for r in csv_rows(files, "visit_photos")] == list(rows)
    assert built.rows["visit_photos"] == 2
    assert "photos/<visit_id>/<photo_id>.jpg" in files[README].decode()
    # Nothing of the other business.
    everything = b"".join(files.values())
    assert str(bravo.pk).encode() not in everything
    act(matrix.b.owner)
    assert VisitPhoto.objects.get(pk=bravo.pk).image not in everything
    # Progress counts the photos.
    assert "visit_photos" in [stage for _, _, stage in calls]
    assert calls[-1][0] == calls[-1][1]
    # The trail: one bulk read naming both photos and both clients.
    [event] = export_events(a.owner, "visit_photos")
    assert event.purpose == "export" and event.actor_role == "owner"
    assert sorted(event.detail["ids"]) == sorted([str(mine.pk), str(other.pk)])
    assert event.detail["count"] == 2
    assert {str(s) for s in event.subject_ids} == {str(a.client.pk), str(a.other_client.pk)}
    assert not export_events(matrix.b.owner, "visit_photos")


def test_photos_are_read_in_bounded_batches(
    matrix: TenantMatrix,
    photos: dict[str, VisitPhoto],
    export_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    a = matrix.a
    monkeypatch.setattr(access, "PHOTO_BATCH", 1)
    monkeypatch.setattr(access, "PHOTO_OPEN", 1)
    path = tmp_path / "export.zip"
    act(a.owner)
    with open(path, "wb") as out:
        write_business_archive(a.owner, out, progress=None)
    verify_archive(path)
    files = read_zip(path.read_bytes())
    assert {name_of(photos["mine"]), name_of(photos["other"])} <= set(files)
    events = export_events(a.owner, "visit_photos")
    assert [event.detail["count"] for event in events] == [1, 1]
    assert {event.detail["ids"][0] for event in events} == {
        str(photos["mine"].pk),
        str(photos["other"].pk),
    }


def test_a_clients_download_holds_their_own_photos_only(
    matrix: TenantMatrix, photos: dict[str, VisitPhoto], export_env: Path, tmp_path: Path
):
    a = matrix.a
    mine = photos["mine"]
    data = served(a.client_login, mine)
    response = logged_in(a.client_login).post("/app/portal/my-data/")
    assert response.status_code == 200
    (tmp_path / "mine.zip").write_bytes(response.content)
    manifest = verify_archive(tmp_path / "mine.zip")
    files = read_zip(response.content)
    assert files[name_of(mine)] == data
    assert manifest["files"][name_of(mine)]["sha256"] == hashlib.sha256(data).hexdigest()
    assert [n for n in files if n.startswith("photos/")] == [name_of(mine)]
    [row] = json_rows(files, "visit_photos")
    assert row["id"] == str(mine.pk) and row["file"] == name_of(mine)
    assert "created_by_id" not in row
    everything = b"".join(files.values())
    for photo in (photos["other"], photos["bravo"]):
        assert str(photo.pk).encode() not in everything
    [event] = export_events(a.owner, "visit_photos")
    assert event.actor_role == "client" and event.detail["ids"] == [str(mine.pk)]
    assert [str(s) for s in event.subject_ids] == [str(a.client.pk)]


def test_the_console_export_holds_the_photos_and_counts_them(
    matrix: TenantMatrix, photos: dict[str, VisitPhoto], export_env: Path, tmp_path: Path
):
    a = matrix.a
    path = tmp_path / "b.zip"
    call_command(
        "export", "create", "--business", a.owner.business.slug, "--email", a.owner.user.email,
        "--out", str(path), stdout=io.StringIO(),
    )  # fmt: skip
    call_command("export", "verify", str(path), stdout=io.StringIO())
    files = read_zip(path.read_bytes())
    assert files[name_of(photos["mine"])] == served(a.owner, photos["mine"])
    act(a.owner)
    export = Export.objects.get(tenant_id=a.owner.tenant_id)
    assert export.rows["visit_photos"] == 2


# --- Pets' photos ---------------------------------------------------------------------------------


@pytest.fixture
def pets(matrix: TenantMatrix) -> dict[str, Pet]:
    """A pet with a photo for each client of A, one without, and one with a photo in B."""
    made = {}
    for key, business, client, photo in (
        ("mine", matrix.a, matrix.a.client, (900, 700)),
        ("other", matrix.a, matrix.a.other_client, (640, 480)),
        ("bare", matrix.a, matrix.a.client, None),
        ("bravo", matrix.b, matrix.b.client, (500, 400)),
    ):
        act(business.owner)
        pet = do_create_pet(client, actor=business.owner, name=f"Pet {key}")
        if photo is not None:
            pet = do_set_pet_photo(pet, photo_bytes(photo), actor=business.owner)
        made[key] = pet
    return made


def served_pet_photo(actor: Any, pet: Pet) -> bytes:
    response = logged_in(actor).get(f"/app/pets/{pet.pk}/photo/")
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    return response.content


def test_the_business_export_holds_every_pets_photo_as_served(
    matrix: TenantMatrix, pets: dict[str, Pet], export_env: Path, tmp_path: Path
):
    a = matrix.a
    mine, other = pets["mine"], pets["other"]
    expected = {f"pets/{pet.pk}.jpg": served_pet_photo(a.owner, pet) for pet in (mine, other)}
    path = tmp_path / "export.zip"
    act(a.owner)
    with open(path, "wb") as out:
        built = write_business_archive(a.owner, out, progress=None)
    manifest = verify_archive(path)
    files = read_zip(path.read_bytes())
    assert sorted(n for n in files if n.startswith("pets/")) == sorted(expected)
    for name, data in expected.items():
        assert files[name] == data and data.startswith(b"\xff\xd8")
        assert manifest["files"][name]["sha256"] == hashlib.sha256(data).hexdigest()
    rows = {row["id"]: row for row in json_rows(files, "pet_photos")}
    assert set(rows) == {str(mine.pk), str(other.pk)}
    assert rows[str(mine.pk)]["client_id"] == str(a.client.pk)
    assert rows[str(mine.pk)]["file"] == f"pets/{mine.pk}.jpg"
    assert built.rows["pet_photos"] == 2
    assert "pets/<pet_id>.jpg" in files[README].decode()
    # The pet without a photo is a row of pets.csv only; nothing of the other business.
    assert str(pets["bare"].pk) in {row["id"] for row in json_rows(files, "pets")}
    everything = b"".join(files.values())
    assert str(pets["bravo"].pk).encode() not in everything
    [event] = export_events(a.owner, "pet_photos")
    assert sorted(event.detail["ids"]) == sorted([str(mine.pk), str(other.pk)])
    assert {str(s) for s in event.subject_ids} == {str(a.client.pk), str(a.other_client.pk)}


def test_a_clients_download_holds_their_own_pets_photos_only(
    matrix: TenantMatrix, pets: dict[str, Pet], export_env: Path, tmp_path: Path
):
    a = matrix.a
    mine = pets["mine"]
    data = served_pet_photo(a.client_login, mine)
    response = logged_in(a.client_login).post("/app/portal/my-data/")
    assert response.status_code == 200
    (tmp_path / "mine.zip").write_bytes(response.content)
    verify_archive(tmp_path / "mine.zip")
    files = read_zip(response.content)
    assert [n for n in files if n.startswith("pets/")] == [f"pets/{mine.pk}.jpg"]
    assert files[f"pets/{mine.pk}.jpg"] == data
    [row] = json_rows(files, "pet_photos")
    assert row["id"] == str(mine.pk) and "client_id" not in row
    everything = b"".join(files.values())
    for pet in (pets["other"], pets["bravo"]):
        assert str(pet.pk).encode() not in everything
    [event] = export_events(a.owner, "pet_photos")
    assert event.actor_role == "client" and event.detail["ids"] == [str(mine.pk)]
