"""Visit photos: staff upload, the client sees them, nobody else reaches them; EXIF is gone,
bytes are sealed, every read and write is in the trail, and they go with the client."""

from __future__ import annotations

import io
import json
import re

import pytest
from PIL import Image

from custodia.clients.access import access_client_by_id
from custodia.clients.actions import do_delete_client
from custodia.core.audit import AuditAction
from custodia.core.permissions import Role
from custodia.crypto.fields import Sealed
from custodia.lifecycle.erasure import do_erase_client
from custodia.scheduling.models import VisitPhoto
from custodia.scheduling.reporting import do_add_visit_photo
from custodia.tenancy.reads import Intent
from tests.acting import act
from tests.audit.support import chain_events
from tests.factories import UserFactory, add_member
from tests.scheduling.photos_support import GPS_MAKER, photo_bytes, upload
from tests.web.support import logged_in, text

THUMB = re.compile(r'src="(/app/visits/[^"]+/photos/[^"]+/thumbnail/)"')


def add_photo(business, data: bytes | None = None) -> VisitPhoto:
    act(business.staff)
    return do_add_visit_photo(business.visit, data or photo_bytes(), actor=business.staff)


def photo_urls(business, photo: VisitPhoto) -> dict[str, str]:
    base = f"/app/visits/{business.visit.pk}/photos/{photo.pk}/"
    return {"image": base, "thumbnail": base + "thumbnail/", "delete": base + "delete/"}


def test_staff_upload_a_photo_and_the_client_sees_it(matrix):
    a = matrix.a
    staff = logged_in(a.staff)
    page = staff.get(f"/app/visits/{a.visit.pk}/").content.decode()
    assert 'type="file"' in page and 'accept="image/*"' in page and 'capture="environment"' in page
    assert 'enctype="multipart/form-data"' in page
    sent = staff.post(f"/app/visits/{a.visit.pk}/photos/", {"photo": upload()})
    assert sent.status_code == 302, text(sent)

    client = logged_in(a.client_login)
    portal_page = client.get(f"/app/visits/{a.visit.pk}/")
    assert portal_page.status_code == 200
    [thumb_url] = THUMB.findall(portal_page.content.decode())
    thumb = client.get(thumb_url)
    assert thumb.status_code == 200
    assert thumb["Content-Type"] == "image/jpeg"
    assert thumb["Cache-Control"] == "private, no-store"
    small = Image.open(io.BytesIO(thumb.content))
    assert max(small.size) == 320
    full = client.get(thumb_url.removesuffix("thumbnail/"))
    assert full.status_code == 200 and full["Cache-Control"] == "private, no-store"
    assert Image.open(io.BytesIO(full.content)).size == (1200, 900)

    act(a.owner)
    events = chain_events(a.owner)
    actions = [event["action"] for event in events]
    assert AuditAction.VISIT_PHOTO_ADD in actions
    reads = [event for event in events if event["action"] == AuditAction.VISIT_PHOTO_READ]
    assert [json.loads(read["detail"])["part"] for read in reads] == ["thumbnail", "image"]
    assert {str(read["client_id"]) for read in reads} == {str(a.client.pk)}


def test_location_and_camera_details_are_removed_and_orientation_applied(matrix):
    source = photo_bytes()
    assert GPS_MAKER.encode() in source
    photo = add_photo(matrix.a, source)
    act(matrix.a.owner)
    stored = VisitPhoto.objects.get(pk=photo.pk)
    for blob in (stored.image, stored.thumbnail):
        assert GPS_MAKER.encode() not in blob
        reopened = Image.open(io.BytesIO(blob))
        assert reopened.format == "JPEG"
        assert dict(reopened.getexif()) == {}
        assert "exif" not in reopened.info and "icc_profile" not in reopened.info

    # A portrait photo stored as landscape with an orientation tag is stored upright.
    sideways = Image.new("RGB", (400, 200), (10, 120, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    out = io.BytesIO()
    sideways.save(out, format="JPEG", exif=exif)
    upright = add_photo(matrix.a, out.getvalue())
    assert (upright.width, upright.height) == (200, 400)


def test_big_photos_are_scaled_down(matrix):
    photo = add_photo(matrix.a, photo_bytes((4000, 3000)))
    assert (photo.width, photo.height) == (2048, 1536)


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4 not a photo",
        b"GIF89a" + b"\0" * 32,
        b"\xff\xd8\xff\xe0 truncated jpeg",
        b"<svg xmlns='http://www.w3.org/2000/svg'></svg>",
    ],
)
def test_anything_but_an_image_is_a_400_with_a_message(matrix, data):
    staff = logged_in(matrix.a.staff)
    response = staff.post(
        f"/app/visits/{matrix.a.visit.pk}/photos/", {"photo": upload(data, "x.jpg")}
    )
    assert response.status_code == 400
    assert "This file is not a photo we can read" in text(response)
    act(matrix.a.owner)
    assert not VisitPhoto.objects.exists()


def test_no_file_and_an_empty_file_are_400s(matrix):
    staff = logged_in(matrix.a.staff)
    url = f"/app/visits/{matrix.a.visit.pk}/photos/"
    assert "Choose a photo to upload." in text(staff.post(url, {}))
    assert staff.post(url, {"photo": upload(b"")}).status_code == 400


def test_a_body_over_the_upload_limit_is_a_413(matrix, settings):
    settings.FILE_UPLOAD_MAX_BYTES = 50_000
    staff = logged_in(matrix.a.staff)
    big = photo_bytes((1600, 1600)) + b"\0" * 60_000
    response = staff.post(f"/app/visits/{matrix.a.visit.pk}/photos/", {"photo": upload(big)})
    assert response.status_code == 413


def test_out_of_reach_photos_are_404(matrix):
    a, b = matrix.a, matrix.b
    photo = add_photo(a)
    act(a.owner)
    neighbour = add_member(a.owner, UserFactory(), Role.CLIENT, client=a.other_client)
    urls = photo_urls(a, photo)
    for who in (a.other_staff, matrix.outsider, neighbour):
        browser = logged_in(who)
        assert browser.get(urls["image"]).status_code == 404, who
        assert browser.get(urls["thumbnail"]).status_code == 404, who
        assert browser.get(f"/app/visits/{a.visit.pk}/").status_code == 404, who
    # Members with the permission to report get 404 for a photo they cannot reach ...
    for who in (a.other_staff, matrix.outsider):
        browser = logged_in(who)
        assert browser.post(urls["delete"]).status_code == 404
        assert (
            browser.post(f"/app/visits/{a.visit.pk}/photos/", {"photo": upload()}).status_code
            == 404
        )
    # ... clients, who never report, 403 (as on every report route).
    for who in (neighbour, a.client_login):
        browser = logged_in(who)
        assert browser.post(urls["delete"]).status_code == 403
        assert (
            browser.post(f"/app/visits/{a.visit.pk}/photos/", {"photo": upload()}).status_code
            == 403
        )
    # Another business's visit with this photo id, and this visit with an unknown photo.
    owner_b = logged_in(b.owner)
    assert owner_b.get(f"/app/visits/{b.visit.pk}/photos/{photo.pk}/").status_code == 404
    owner_a = logged_in(a.owner)
    assert owner_a.get(f"/app/visits/{a.visit.pk}/photos/{b.visit.pk}/").status_code == 404
    assert owner_a.get(f"/app/visits/{a.visit.pk}/photos/not-an-id/").status_code == 404
    act(a.owner)
    assert VisitPhoto.objects.filter(pk=photo.pk).exists()
    refused = [e for e in chain_events(a.owner) if e["action"] == AuditAction.ACCESS_DENIED]
    assert any(e["target_type"] == "visitphoto" for e in refused)


def test_the_database_hides_photos_of_other_visits(matrix):
    """Row-level security: the staff member not on the visit, and another household's client,
    see no photo row even when the query asks for every one."""
    a = matrix.a
    add_photo(a)
    act(a.owner)
    neighbour = add_member(a.owner, UserFactory(), Role.CLIENT, client=a.other_client)
    for who, expected in ((a.other_staff, 0), (neighbour, 0), (a.staff, 1), (a.client_login, 1)):
        act(who)
        assert VisitPhoto.objects.count() == expected, who
    act(matrix.outsider)
    assert VisitPhoto.objects.count() == 0


def test_the_uploader_or_a_manager_deletes_a_photo(matrix):
    a = matrix.a
    first = add_photo(a)
    second = add_photo(a)
    act(a.owner)
    # A manager's photo on the staff member's visit: the staff member may not delete it.
    managers = do_add_visit_photo(a.visit, photo_bytes(), actor=a.owner)
    staff = logged_in(a.staff)
    assert staff.post(photo_urls(a, managers)["delete"]).status_code == 403
    assert staff.post(photo_urls(a, first)["delete"]).status_code == 302
    manager = logged_in(a.manager)
    assert manager.post(photo_urls(a, second)["delete"]).status_code == 302
    act(a.owner)
    assert list(VisitPhoto.objects.values_list("pk", flat=True)) == [managers.pk]
    deleted = [e for e in chain_events(a.owner) if e["action"] == AuditAction.VISIT_PHOTO_DELETE]
    assert {e["target_id"] for e in deleted} == {str(first.pk), str(second.pk)}


def test_photos_are_sealed_with_the_business_key(matrix):
    photo = add_photo(matrix.a)
    act(matrix.a.owner)
    raw = VisitPhoto.objects.filter(pk=photo.pk).values_list("image", "thumbnail").get()
    for value in raw:
        assert isinstance(value, Sealed)
        assert value.blob[:1] == b"\x01" and b"\xff\xd8\xff" not in value.blob[:64]


def test_deleting_or_erasing_the_client_deletes_the_photos(matrix):
    a = matrix.a
    add_photo(a)
    act(a.owner)
    client = access_client_by_id(a.owner, a.client.pk, intent=Intent.CHANGE)
    do_erase_client(client, actor=a.owner)
    assert not VisitPhoto.objects.exists()
    [erased] = [e for e in chain_events(a.owner) if e["action"] == AuditAction.CLIENT_ERASE]
    assert json.loads(erased["detail"])["photos_deleted"] == 1

    b = matrix.b
    add_photo(b)
    act(b.owner)
    client = access_client_by_id(b.owner, b.client.pk, intent=Intent.CHANGE)
    do_delete_client(client, actor=b.owner)
    assert not VisitPhoto.objects.exists()
