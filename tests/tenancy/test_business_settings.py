"""A business's settings page: only its owners change them, within bounds, audited; its time
zone is the one its people see and enter times in."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from custodia.audit.models import AuditEvent
from custodia.core.audit import AuditAction
from custodia.scheduling.models import Visit
from custodia.tenancy.actions import do_update_business_profile
from custodia.tenancy.models import Business
from custodia.tenancy.profile import parse_opening_hours
from tests.acting import act
from tests.web.support import actor_for, anonymous, logged_in, snapshot, text, title

URL = "/app/settings/"


def form(**changes: str) -> dict[str, str]:
    data = {
        "name": "Alpha Sitters",
        "time_zone": "Pacific/Auckland",
        "currency": "nzd",
        "access_window_before_hours": "6",
        "access_window_after_hours": "2",
        "reminder_hours_before": "48",
        "opens_0": "09:00",
        "closes_0": "17:30",
        "opens_5": "10:00",
        "closes_5": "12:00",
    }
    data.update(changes)
    return data


def business_of(owner) -> Business:
    act(owner)
    return Business.objects.get(pk=owner.tenant_id)


def profile_events(owner) -> list[dict[str, Any]]:
    act(owner)
    return list(
        AuditEvent.objects.filter(
            tenant_id=owner.tenant_id, action=AuditAction.BUSINESS_PROFILE_UPDATE
        ).values_list("detail", flat=True)
    )


def test_an_owner_changes_the_settings(matrix):
    browser = logged_in(matrix.a.owner)
    page = browser.get(URL)
    assert page.status_code == 200 and title(page) == "Business settings · Custodia"
    html = page.content.decode()
    assert '<label for="id_time_zone">Time zone' in html
    assert '<option value="Pacific/Auckland">Pacific/Auckland</option>' in html
    assert 'name="reminder_hours_before" value="24"' in html
    response = browser.post(URL, form())
    assert response.status_code == 302 and response["Location"] == URL
    assert "Business settings saved." in text(browser.get(URL))
    business = business_of(matrix.a.owner)
    assert (business.name, business.time_zone, business.currency) == (
        "Alpha Sitters",
        "Pacific/Auckland",
        "NZD",
    )
    assert (business.access_window_before_hours, business.access_window_after_hours) == (6, 2)
    assert business.reminder_hours_before == 48
    assert business.opening_hours == "09:00-17:30,,,,,10:00-12:00,"
    assert parse_opening_hours(business.opening_hours)[0] == (dt.time(9), dt.time(17, 30))
    # The other business is untouched; the change is in the trail, without the name.
    assert business_of(matrix.b.owner).reminder_hours_before == 24
    [event] = profile_events(matrix.a.owner)
    assert set(event["changed"]) == {
        "name",
        "time_zone",
        "currency",
        "opening_hours",
        "access_window_before_hours",
        "access_window_after_hours",
        "reminder_hours_before",
    }
    assert event["time_zone"] == "Pacific/Auckland" and "name" not in event
    # The form shows what is stored; saving it unchanged records nothing.
    html = browser.get(URL).content.decode()
    assert 'name="opens_5" value="10:00"' in html
    assert browser.post(URL, form()).status_code == 302
    assert len(profile_events(matrix.a.owner)) == 1


def test_the_nav_links_the_page_for_owners_only(matrix):
    assert 'href="/app/settings/"' in logged_in(matrix.a.owner).get("/app/").content.decode()
    for role in ("manager", "staff"):
        page = logged_in(actor_for(matrix, role)).get("/app/").content.decode()
        assert 'href="/app/settings/"' not in page


@pytest.mark.parametrize("role", ["manager", "staff", "other_staff", "client"])
def test_other_roles_cannot_see_or_change_them(matrix, role):
    before = snapshot(matrix)
    browser = logged_in(actor_for(matrix, role))
    assert browser.get(URL).status_code == 403
    assert browser.post(URL, form()).status_code == 403
    assert snapshot(matrix) == before
    assert profile_events(matrix.a.owner) == []


def test_an_outsider_changes_only_their_own_business(matrix):
    response = logged_in(matrix.outsider).post(URL, form(name="Bravo New"))
    assert response.status_code == 302
    assert business_of(matrix.a.owner).name == "Alpha"
    assert business_of(matrix.b.owner).name == "Bravo New"


def test_a_logged_out_visitor_is_sent_to_log_in(matrix):
    before = snapshot(matrix)
    response = anonymous().post(URL, form())
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert snapshot(matrix) == before


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"time_zone": "Mars/Olympus"}, "Choose a time zone from the list."),
        ({"time_zone": ""}, "This field is required."),
        ({"currency": "XYZ"}, "Choose an ISO 4217 currency code such as USD or EUR."),
        ({"currency": "12"}, "Ensure this value has at least 3 characters"),
        ({"name": "   "}, "This field is required."),
        ({"reminder_hours_before": "169"}, "A whole number of hours from 0 to 168."),
        ({"reminder_hours_before": "-1"}, "A whole number of hours from 0 to 168."),
        ({"access_window_before_hours": "x"}, "A whole number of hours from 0 to 168."),
        ({"closes_0": "08:00"}, "Monday: closing time must be after opening."),
        ({"closes_0": ""}, "Monday: give both times, or leave both empty when closed."),
        ({"opens_3": "25:00", "closes_3": "26:00"}, "Enter a time such as 09:30."),
    ],
)
def test_bad_input_is_a_form_error(matrix, changes, message):
    before = snapshot(matrix)
    response = logged_in(matrix.a.owner).post(URL, form(**changes))
    assert response.status_code == 400
    assert message in text(response)
    assert snapshot(matrix) == before


def arguments(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "Alpha",
        "time_zone": "UTC",
        "currency": "USD",
        "opening_hours": [None] * 7,
        "access_window_before_hours": 24,
        "access_window_after_hours": 12,
        "reminder_hours_before": 24,
    }
    values.update(changes)
    return values


def test_the_action_refuses_lesser_roles_and_other_businesses(matrix):
    a = matrix.a
    business = business_of(a.owner)
    for role in ("manager", "staff", "client_login"):
        actor = act(getattr(a, role))
        with pytest.raises(PermissionDenied):
            do_update_business_profile(business, actor=actor, **arguments(name="Taken"))
    outsider = act(matrix.outsider)
    with pytest.raises(Http404):
        do_update_business_profile(business, actor=outsider, **arguments(name="Taken"))
    assert business_of(a.owner).name == "Alpha"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"opening_hours": [(dt.time(10), dt.time(9))] + [None] * 6}, "opening_hours"),
        ({"opening_hours": [None] * 6}, "opening_hours"),
        ({"reminder_hours_before": True}, "reminder_hours_before"),
        ({"access_window_after_hours": 500}, "access_window_after_hours"),
        ({"time_zone": "Nowhere"}, "time_zone"),
        ({"currency": "EURO"}, "currency"),
        ({"name": "\n"}, "name"),
    ],
)
def test_the_action_checks_every_value(matrix, changes, field):
    owner = act(matrix.a.owner)
    business = business_of(owner)
    with pytest.raises(ValidationError) as caught:
        do_update_business_profile(business, actor=owner, **arguments(**changes))
    assert field in caught.value.error_dict


# --- Times in the business's zone ---------------------------------------------------------------


def set_zone(owner, zone: str) -> None:
    actor = act(owner)
    business = business_of(owner)
    do_update_business_profile(
        business, actor=actor, **arguments(name=business.name, time_zone=zone)
    )


def test_each_business_sees_a_visit_at_its_own_local_time(matrix):
    """The same instant, 20:00 UTC, in two businesses: Auckland reads the next morning, Los
    Angeles the same day's noon."""
    instant = dt.datetime(2030, 1, 15, 20, 0, tzinfo=dt.UTC)
    shown = {}
    for business, zone in ((matrix.a, "Pacific/Auckland"), (matrix.b, "America/Los_Angeles")):
        set_zone(business.owner, zone)
        act(business.owner)
        Visit.objects.filter(pk=business.visit.pk).update(
            starts_at=instant, ends_at=instant + dt.timedelta(hours=1)
        )
        page = logged_in(business.owner).get(f"/app/visits/{business.visit.pk}/")
        assert page.status_code == 200
        shown[zone] = text(page)
    assert "Wed 16 Jan 2030" in shown["Pacific/Auckland"]
    assert "09:00–10:00" in shown["Pacific/Auckland"]
    assert "Tue 15 Jan 2030" in shown["America/Los_Angeles"]
    assert "12:00–13:00" in shown["America/Los_Angeles"]


def test_a_time_entered_is_read_in_the_business_zone(matrix):
    a = matrix.a
    set_zone(a.owner, "America/Los_Angeles")
    response = logged_in(a.owner).post(
        "/app/visits/new/",
        {
            "client": str(a.client.pk),
            "staff": str(a.staff.membership.pk),
            "starts_at": "2030-07-04T09:30",
            "ends_at": "2030-07-04T10:30",
        },
    )
    assert response.status_code == 302
    act(a.owner)
    visit = Visit.objects.exclude(pk=a.visit.pk).get(tenant_id=a.owner.tenant_id)
    # Pacific daylight time is UTC-7 in July.
    assert visit.starts_at == dt.datetime(2030, 7, 4, 16, 30, tzinfo=dt.UTC)
    local = visit.starts_at.astimezone(zoneinfo.ZoneInfo("America/Los_Angeles"))
    assert (local.hour, local.minute) == (9, 30)
