"""Owners and managers see door and alarm codes only after confirming it's them, visit or not."""

from __future__ import annotations

from typing import Any

import pytest

from custodia.clients.access import home_access_for
from tests.acting import act
from tests.api.conftest import send
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix, stale
from tests.web.support import age_session

pytestmark = pytest.mark.django_db


def test_a_visit_near_does_not_spare_a_manager_the_step_up(matrix: TenantMatrix) -> None:
    manager = stale(matrix.a.manager)  # no proof at all
    act(manager)
    # A visit starts in two hours: it opens the codes to its staff member, not to managers
    # (tests/security/test_door_codes.py has the attack this stops).
    assert home_access_for(manager, matrix.a.client) is None


def test_away_from_visits_the_codes_need_a_fresh_step_up(matrix: TenantMatrix) -> None:
    manager = stale(matrix.a.manager)
    act(manager)
    assert home_access_for(manager, matrix.a.other_client) is None
    act(matrix.a.manager)  # just authenticated
    codes = home_access_for(matrix.a.manager, matrix.a.other_client)
    assert codes is not None and codes.door_code == "9999"


def test_an_api_token_never_reveals_codes_to_a_manager(matrix: TenantMatrix, api_as: Any) -> None:
    owner = api_as(matrix.a.owner)
    far = send(owner, "GET", f"/clients/{matrix.a.other_client.pk}").json()
    assert far["home_access"] is None and "9999" not in str(far)
    near = send(owner, "GET", f"/clients/{matrix.a.client.pk}").json()
    assert near["home_access"] is None and "4711" not in str(near)


def test_the_detail_page_hides_codes_and_offers_a_step_up(matrix: TenantMatrix) -> None:
    browser = HttpsClient().act_as(matrix.a.manager)
    path = f"/app/clients/{matrix.a.other_client.pk}/"
    assert "9999" in browser.get(path).content.decode()
    age_session(browser, 10 * 60)
    page = browser.get(path).content.decode()
    assert "9999" not in page
    assert f'href="/app/step-up/?next={path.replace("/", "%2F")}"' in page


def test_the_editor_sends_a_stale_manager_to_step_up(matrix: TenantMatrix) -> None:
    browser = HttpsClient().act_as(matrix.a.manager)
    age_session(browser, 10 * 60)
    path = f"/app/clients/{matrix.a.other_client.pk}/edit/"
    answer = browser.get(path)
    assert answer.status_code == 302
    assert answer["Location"] == f"/app/step-up/?next={path.replace('/', '%2F')}"


def test_staff_are_unaffected_by_step_up(matrix: TenantMatrix) -> None:
    staff = matrix.a.staff  # assigned to the client, visit in two hours
    act(staff)
    assert home_access_for(staff, matrix.a.client) is not None
    act(matrix.a.other_staff)
    assert home_access_for(matrix.a.other_staff, matrix.a.other_client) is None
