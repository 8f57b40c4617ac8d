"""Repeating visits: a series made from a rule in the new-visit form, one visit moved alone, the
following ones changed, the series ended. Lesser roles and other businesses are refused; bad
rules are a 400 that saves nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from custodia.scheduling.actions import do_update_visit
from custodia.scheduling.models import Visit, VisitStatus
from custodia.scheduling.series import (
    MAX_OCCURRENCES,
    Frequency,
    Repeat,
    Scope,
    do_change_following,
    do_create_series,
    do_end_series,
)
from tests.acting import act
from tests.factories import TenantMatrix
from tests.scheduling.test_views import local
from tests.web.support import actor_for, logged_in, snapshot, text


def next_monday_at(hour: int) -> dt.datetime:
    today = timezone.localdate()
    monday = today + dt.timedelta(days=7 - today.weekday())
    return timezone.make_aware(dt.datetime.combine(monday, dt.time(hour, 0)))


def in_days(days: int) -> str:
    return (timezone.localdate() + dt.timedelta(days=days)).isoformat()


def series(matrix: TenantMatrix, visit: Visit) -> list[Visit]:
    act(matrix.a.owner)
    return list(
        Visit.objects.filter(series_id=visit.series_id)
        .order_by("starts_at")
        .select_related("staff")
    )


def test_the_form_makes_a_weekly_series_on_two_days(matrix: TenantMatrix) -> None:
    a = matrix.a
    first = next_monday_at(8)
    browser = logged_in(a.manager)
    response = browser.post(
        "/app/visits/new/",
        {
            "client": str(a.client.pk),
            "staff": str(a.staff.membership.pk),
            "service": str(a.service.pk),
            "starts_at": local(first),
            "repeat": "weekly",
            "every": "1",
            "on_days": ["0", "2"],  # Monday and Wednesday
            "times": "6",
        },
    )
    assert response.status_code == 302, text(response)
    assert "6 visits scheduled." in text(browser.get(response["Location"]))
    act(a.owner)
    made = series(matrix, Visit.objects.get(pk=response["Location"].split("/")[-2]))
    assert len(made) == 6
    assert [timezone.localtime(v.starts_at).weekday() for v in made] == [0, 2, 0, 2, 0, 2]
    # The same wall-clock time every time, across any change of daylight saving time.
    assert {timezone.localtime(v.starts_at).time() for v in made} == {dt.time(8, 0)}
    assert all(v.staff_id == a.staff.membership.pk for v in made)
    assert made[0].series_rule.startswith("Every week on Mon, Wed, 6 times | RRULE:FREQ=WEEKLY")
    detail = text(browser.get(f"/app/visits/{made[2].pk}/"))
    assert "This visit is one of a series: Every week on Mon, Wed, 6 times." in detail


def test_bad_rules_are_a_400_and_save_nothing(matrix: TenantMatrix) -> None:
    a = matrix.a
    browser = logged_in(a.manager)
    before = snapshot(matrix)
    base = {
        "client": str(a.client.pk),
        "service": str(a.service.pk),
        "starts_at": local(next_monday_at(9)),
        "repeat": "daily",
    }
    cases = [
        ({}, "Give an end date or a number of visits (one of the two)."),
        ({"times": "3", "until": "2099-01-01"}, "Give an end date or a number of visits"),
        ({"times": str(MAX_OCCURRENCES + 1)}, "Ensure this value is less than or equal to 200."),
        ({"until": "2030-01-01", "every": "0"}, "Ensure this value is greater than or equal to 1"),
        (
            {"until": (timezone.localdate() + dt.timedelta(days=800)).isoformat()},
            "within two years",
        ),
        ({"until": (timezone.localdate() + dt.timedelta(days=300)).isoformat()}, "more than 200"),
        ({"until": "2001-01-01"}, "End the series after its first visit"),
        ({"times": "3", "staff": str(a.other_staff.membership.pk)}, "assigned to this client"),
    ]
    for extra, message in cases:
        response = browser.post("/app/visits/new/", {**base, **extra})
        assert response.status_code == 400, extra
        assert message in text(response), (message, text(response)[-600:])
    assert snapshot(matrix) == before


def test_one_visit_moves_alone_then_the_following_change_then_the_series_ends(
    matrix: TenantMatrix,
) -> None:
    a = matrix.a
    act(a.manager)
    made = do_create_series(
        actor=a.manager,
        client=a.client,
        starts_at=next_monday_at(8),
        service=a.service,
        staff=a.staff.membership,
        repeat=Repeat(Frequency.DAILY, count=5),
    )
    # One visit moved on its own page: only it changes.
    browser = logged_in(a.manager)
    moved_to = made[1].starts_at + dt.timedelta(hours=2)
    response = browser.post(
        f"/app/visits/{made[1].pk}/edit/",
        {
            "starts_at": local(moved_to),
            "ends_at": local(moved_to + dt.timedelta(hours=1)),
            "staff": str(a.staff.membership.pk),
            "service": str(a.service.pk),
        },
    )
    assert response.status_code == 302
    now = series(matrix, made[0])
    assert timezone.localtime(now[1].starts_at).hour == 10
    assert {timezone.localtime(v.starts_at).hour for v in now if v.pk != made[1].pk} == {8}
    # The third is done: a change of the following ones leaves it alone.
    act(a.staff)
    do_update_visit(now[2], actor=a.staff, status=VisitStatus.COMPLETED)
    response = browser.post(
        f"/app/visits/{made[1].pk}/series/",
        {"scope": "following", "start_time": "07:30", "minutes": "30", "staff": "none",
         "service": "keep"},
    )  # fmt: skip
    assert response.status_code == 302, text(response)
    assert "3 visits of the series changed." in text(browser.get(response["Location"]))
    now = series(matrix, made[0])
    times = [timezone.localtime(v.starts_at).strftime("%H:%M") for v in now]
    assert times == ["08:00", "07:30", "08:00", "07:30", "07:30"]
    assert [v.staff_id is None for v in now] == [False, True, False, True, True]
    assert all((v.ends_at - v.starts_at).seconds == 1800 for v in now if v.staff_id is None)
    # Ended after the second: the fourth and fifth go, the done third stays.
    response = browser.post(f"/app/visits/{made[1].pk}/series/end/")
    assert "Series ended: 2 later visits deleted." in text(browser.get(response["Location"]))
    assert [v.pk for v in series(matrix, made[0])] == [made[0].pk, made[1].pk, made[2].pk]


@pytest.mark.parametrize("role", ["staff", "client"])
def test_lesser_roles_cannot_make_change_or_end_a_series(matrix: TenantMatrix, role: str) -> None:
    a = matrix.a
    act(a.manager)
    made = do_create_series(
        actor=a.manager,
        client=a.client,
        starts_at=next_monday_at(8),
        service=a.service,
        staff=a.staff.membership,
        repeat=Repeat(Frequency.DAILY, count=3),
    )
    actor = actor_for(matrix, role)
    act(actor)
    with pytest.raises(PermissionDenied):
        do_create_series(
            actor=actor,
            client=a.client,
            starts_at=next_monday_at(9),
            service=a.service,
            repeat=Repeat(Frequency.DAILY, count=3),
        )
    before = snapshot(matrix)
    browser = logged_in(actor)
    change = {"scope": "all", "start_time": "06:00", "staff": "keep", "service": "keep"}
    for url, data in (
        (f"/app/visits/{made[0].pk}/series/", change),
        (f"/app/visits/{made[0].pk}/series/end/", {}),
    ):
        assert browser.post(url, data).status_code in (403, 404), url
    assert snapshot(matrix) == before


def test_another_business_gets_404_and_its_actions_refuse(matrix: TenantMatrix) -> None:
    a, b = matrix.a, matrix.b
    act(a.manager)
    made = do_create_series(
        actor=a.manager,
        client=a.client,
        starts_at=next_monday_at(8),
        service=a.service,
        repeat=Repeat(Frequency.DAILY, count=3),
    )
    before = snapshot(matrix)
    outsider = logged_in(matrix.outsider)
    for url in (f"/app/visits/{made[0].pk}/series/", f"/app/visits/{made[0].pk}/series/end/"):
        assert (
            outsider.post(url, {"scope": "all", "staff": "keep", "service": "keep"}).status_code
            == 404
        )
    act(b.owner)
    with pytest.raises((PermissionDenied, ValidationError, Exception)):
        do_end_series(made[0], actor=b.owner)
    assert snapshot(matrix) == before


def test_changing_a_visit_that_is_not_in_a_series_is_refused(matrix: TenantMatrix) -> None:
    a = matrix.a
    act(a.manager)
    with pytest.raises(ValidationError, match="not part of a series"):
        do_change_following(a.visit, actor=a.manager, scope=Scope.ALL, minutes=30)
