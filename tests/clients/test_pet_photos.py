"""A pet's photo (docs/profiles.md): a manager uploads it on the pet's page, re-encoded without
EXIF and sealed; whoever may see the pet sees it (each serving recorded), nobody else reaches it;
key rotation reseals it (tests/crypto/test_rotation.py); erasing the client removes it."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from custodia.clients.access import access_client_by_id
from custodia.clients.models import Pet
from custodia.clients.profile_actions import do_create_pet, do_set_pet_photo
from custodia.core.audit import AuditAction
from custodia.lifecycle.erasure import do_erase_client
from custodia.tenancy.reads import Intent
from tests.acting import act
from tests.audit.support import chain_events
from tests.crypto.support import stored
from tests.factories import TenantMatrix
from tests.scheduling.photos_support import GPS_MAKER, photo_bytes, upload
from tests.web.support import logged_in, text

pytestmark = pytest.mark.django_db


def _pet(matrix: TenantMatrix, *, client: object = None, photo: bool = True) -> Pet:
    owner = matrix.a.owner
    act(owner)
    pet = do_create_pet(client or matrix.a.client, actor=owner, name="Miso")
    if photo:
        do_set_pet_photo(pet, photo_bytes(), actor=owner)
    return pet


def test_a_manager_uploads_and_removes_a_pets_photo_without_javascript(
    matrix: TenantMatrix,
) -> None:
    pet = _pet(matrix, photo=False)
    browser = logged_in(matrix.a.manager)
    page = browser.get(f"/app/pets/{pet.pk}/edit/").content.decode()
    assert 'enctype="multipart/form-data"' in page
    assert 'accept="image/*"' in page and 'capture="environment"' in page
    assert f"/app/pets/{pet.pk}/photo/thumbnail/" not in page
    saved = browser.post(f"/app/pets/{pet.pk}/photo/upload/", {"photo": upload()})
    assert saved.status_code == 302 and saved["Location"] == f"/app/pets/{pet.pk}/edit/"
    card = browser.get(f"/app/clients/{matrix.a.client.pk}/").content.decode()
    assert f"/app/pets/{pet.pk}/photo/thumbnail/" in card

    thumb = browser.get(f"/app/pets/{pet.pk}/photo/thumbnail/")
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    assert thumb["Cache-Control"] == "private, no-store"
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 320
    full = browser.get(f"/app/pets/{pet.pk}/photo/")
    assert full.status_code == 200 and full["Cache-Control"] == "private, no-store"
    assert Image.open(io.BytesIO(full.content)).size == (1200, 900)

    removed = browser.post(f"/app/pets/{pet.pk}/photo/remove/")
    assert removed.status_code == 302
    assert browser.get(f"/app/pets/{pet.pk}/photo/").status_code == 404
    act(matrix.a.owner)
    assert Pet.objects.filter(pk=pet.pk, photo__isnull=True, photo_thumbnail__isnull=True).exists()
    events = chain_events(matrix.a.owner)
    updates = [
        json.loads(e["detail"])["fields"]
        for e in events
        if e["action"] == AuditAction.PET_UPDATE and e["target_id"] == str(pet.pk)
    ]
    assert updates == [["photo"], ["photo"]]
    reads = [
        json.loads(e["detail"]).get("part")
        for e in events
        if e["action"] == AuditAction.PROFILE_READ and e["target_id"] == str(pet.pk)
    ]
    assert reads[-2:] == ["photo_thumbnail", "photo"]


def test_exif_is_stripped_and_the_photo_is_sealed(matrix: TenantMatrix) -> None:
    source = photo_bytes()
    assert GPS_MAKER.encode() in source
    pet = _pet(matrix)
    act(matrix.a.owner)
    fresh = Pet.objects.get(pk=pet.pk)
    for blob in (fresh.photo, fresh.photo_thumbnail):
        assert GPS_MAKER.encode() not in blob
        reopened = Image.open(io.BytesIO(blob))
        assert reopened.format == "JPEG" and dict(reopened.getexif()) == {}
    # Raw SQL: ciphertext, never a JPEG.
    for column in ("photo", "photo_thumbnail"):
        raw = stored(matrix.a.owner, "clients_pet", column, pet.pk)
        assert raw[:1] == b"\x01" and b"\xff\xd8\xff" not in raw[:64]
        assert GPS_MAKER.encode() not in raw


def test_who_sees_the_pet_sees_its_photo(matrix: TenantMatrix) -> None:
    pet = _pet(matrix)
    for actor in (matrix.a.owner, matrix.a.manager, matrix.a.staff, matrix.a.client_login):
        response = logged_in(actor).get(f"/app/pets/{pet.pk}/photo/thumbnail/")
        assert response.status_code == 200, actor.role


def test_outsiders_get_404(matrix: TenantMatrix) -> None:
    pet = _pet(matrix)
    # Another household of the same business: its client's login does not reach this pet.
    other = _pet(matrix, client=matrix.a.other_client)
    for path in (f"/app/pets/{pet.pk}/photo/", f"/app/pets/{pet.pk}/photo/thumbnail/"):
        for actor in (matrix.b.owner, matrix.b.manager, matrix.b.staff, matrix.b.client_login):
            assert logged_in(actor).get(path).status_code == 404, ("other business", actor.role)
        # A staff member not assigned to the client.
        assert logged_in(matrix.a.other_staff).get(path).status_code == 404
    client = logged_in(matrix.a.client_login)
    assert client.get(f"/app/pets/{other.pk}/photo/thumbnail/").status_code == 404
    # Staff assigned to the client see the photo, but they do not change it.
    staff = logged_in(matrix.a.staff)
    assert staff.post(f"/app/pets/{pet.pk}/photo/upload/", {"photo": upload()}).status_code == 403
    assert staff.post(f"/app/pets/{pet.pk}/photo/remove/").status_code == 403
    # Another business's manager cannot change it either.
    b_manager = logged_in(matrix.b.manager)
    assert (
        b_manager.post(f"/app/pets/{pet.pk}/photo/upload/", {"photo": upload()}).status_code == 404
    )
    assert b_manager.post(f"/app/pets/{pet.pk}/photo/remove/").status_code == 404
    assert logged_in(matrix.a.manager).get("/app/pets/not-an-id/photo/").status_code == 404


def test_a_bad_file_is_a_400_with_a_message(matrix: TenantMatrix) -> None:
    pet = _pet(matrix, photo=False)
    browser = logged_in(matrix.a.manager)
    response = browser.post(
        f"/app/pets/{pet.pk}/photo/upload/", {"photo": upload(b"%PDF-1.4 nope", "x.jpg")}
    )
    assert response.status_code == 400
    assert "This file is not a photo we can read" in text(response)
    act(matrix.a.owner)
    assert Pet.objects.get(pk=pet.pk).photo_updated_at is None


def test_erasing_the_client_removes_the_pet_and_its_photo(matrix: TenantMatrix) -> None:
    pet = _pet(matrix)
    act(matrix.a.owner)
    client = access_client_by_id(matrix.a.owner, matrix.a.client.pk, intent=Intent.CHANGE)
    do_erase_client(client, actor=matrix.a.owner)
    act(matrix.a.owner)
    assert not Pet.objects.filter(pk=pet.pk).exists()
