"""The pages of pets and household details: a manager adds, edits and removes; staff see them on
Today around their visit; the client sees their own in the portal."""

from __future__ import annotations

import pytest
from django.utils import timezone

from custodia.clients.models import Household, Pet
from custodia.clients.profile_actions import do_create_pet, do_update_household
from custodia.scheduling.actions import do_create_visit
from tests.acting import act
from tests.factories import TenantMatrix
from tests.web.support import logged_in

pytestmark = pytest.mark.django_db

WIFI_PASSWORD = "garden-wifi-pw"


def _seed(matrix: TenantMatrix) -> Pet:
    owner = matrix.a.owner
    act(owner)
    do_update_household(
        matrix.a.client,
        actor=owner,
        keys_held="Tag 14",
        wifi_password=WIFI_PASSWORD,
        emergency_contact="Ada Example",
    )
    return do_create_pet(matrix.a.client, actor=owner, name="Miso", medication="Thyroxine")


def test_a_manager_adds_edits_and_removes_a_pet(matrix: TenantMatrix) -> None:
    browser = logged_in(matrix.a.manager)
    client = matrix.a.client
    assert browser.get(f"/app/clients/{client.pk}/pets/new/").status_code == 200
    refused = browser.post(
        f"/app/clients/{client.pk}/pets/new/", {"name": "Rex", "birthday": "2999-01-01"}
    )
    assert refused.status_code == 400
    assert "A birthday cannot be in the future." in refused.content.decode()
    added = browser.post(
        f"/app/clients/{client.pk}/pets/new/",
        {"name": "Rex", "species": "dog", "medication": "Half a pill", "birthday": "2020-05-01"},
    )
    assert added.status_code == 302 and added["Location"] == f"/app/clients/{client.pk}/"
    act(matrix.a.manager)
    pet = Pet.objects.get(client=client, name="Rex")
    page = browser.get(f"/app/clients/{client.pk}/").content.decode()
    assert "Rex" in page and "Half a pill" in page
    edited = browser.post(f"/app/pets/{pet.pk}/edit/", {"name": "Rex", "medication": ""})
    assert edited.status_code == 302
    act(matrix.a.manager)
    assert Pet.objects.get(pk=pet.pk).medication == ""
    assert browser.get(f"/app/pets/{pet.pk}/delete/").status_code == 200
    assert browser.post(f"/app/pets/{pet.pk}/delete/").status_code == 302
    act(matrix.a.manager)
    assert not Pet.objects.filter(pk=pet.pk).exists()


def test_a_manager_edits_the_household(matrix: TenantMatrix) -> None:
    browser = logged_in(matrix.a.manager)
    path = f"/app/clients/{matrix.a.client.pk}/household/"
    assert browser.get(path).status_code == 200
    saved = browser.post(path, {"parking": "Driveway", "wifi_password": "pw-1"})
    assert saved.status_code == 302
    act(matrix.a.manager)
    home = Household.objects.get(client=matrix.a.client)
    assert (home.parking, home.wifi_password) == ("Driveway", "pw-1")
    too_long = browser.post(path, {"wifi_password": "x" * 500})
    assert too_long.status_code == 400


def test_staff_see_pets_and_household_on_today_around_their_visit(matrix: TenantMatrix) -> None:
    _seed(matrix)
    # A visit of staff's to `client` starting now: today, and inside the access window (the
    # matrix's own visit, two hours away, is tomorrow late in the evening).
    owner = matrix.a.owner
    act(owner)
    do_create_visit(
        actor=owner,
        client=matrix.a.client,
        staff=matrix.a.staff.membership,
        service=matrix.a.service,
        starts_at=timezone.now(),
    )
    page = logged_in(matrix.a.staff).get("/app/today/").content.decode()
    assert "Miso" in page and "Thyroxine" in page
    assert "Tag 14" in page and WIFI_PASSWORD in page and "Ada Example" in page
    # The other staff member has no visit and no assignment: nothing.
    other = logged_in(matrix.a.other_staff).get("/app/today/").content.decode()
    assert "Miso" not in other and WIFI_PASSWORD not in other


def test_the_client_sees_their_own_profile_in_the_portal(matrix: TenantMatrix) -> None:
    _seed(matrix)
    page = logged_in(matrix.a.client_login).get("/app/portal/").content.decode()
    assert "Miso" in page and "Thyroxine" in page and WIFI_PASSWORD in page
    # Read only: no links to change anything.
    assert "/pets/new/" not in page and "/household/" not in page
