"""GET /api/v1/visits/calendar, the calendar's feed: who sees which visits, the bounded range,
the staff filter and colours, times in the business's zone, one bulk read per answer."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from custodia.core.audit import AuditAction
from custodia.scheduling.actions import do_create_visit
from custodia.scheduling.rows import STAFF_COLOURS, UNASSIGNED_COLOUR, staff_colour
from custodia.tenancy.zones import zone_for
from tests.acting import act
from tests.api.conftest import assert_error, send
from tests.audit.support import chain_events, written


def feed(start: dt.datetime, end: dt.datetime, **extra: str) -> str:
    return "/visits/calendar?" + urlencode(
        {"start": start.isoformat(), "end": end.isoformat(), **extra}
    )


def this_week() -> str:
    now = timezone.now().replace(microsecond=0)
    return feed(now - dt.timedelta(days=1), now + dt.timedelta(days=6))


def ids_in(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {event["id"] for event in response.json()}


def test_managers_see_every_visit_staff_their_own(matrix, caller, web_as):
    a = matrix.a
    act(a.owner)
    unassigned = do_create_visit(
        actor=a.owner,
        client=a.other_client,
        starts_at=timezone.now() + dt.timedelta(days=1),
        ends_at=timezone.now() + dt.timedelta(days=1, hours=1),
    )
    everyone = {str(a.visit.pk), str(unassigned.pk)}
    assert ids_in(send(caller(a.owner), "GET", this_week())) == everyone
    assert ids_in(send(web_as(a.manager), "GET", this_week())) == everyone
    assert ids_in(send(web_as(a.staff), "GET", this_week())) == {str(a.visit.pk)}
    # A staff member not assigned to the client sees none of its visits.
    assert ids_in(send(web_as(a.other_staff), "GET", this_week())) == set()


def test_the_outsider_sees_only_their_own_business(matrix, caller):
    response = send(caller(matrix.outsider), "GET", this_week())
    assert ids_in(response) == {str(matrix.b.visit.pk)}
    body = response.content.decode()
    assert str(matrix.a.visit.pk) not in body and matrix.a.client.name not in body


def test_clients_have_no_calendar(matrix, web_as):
    assert_error(send(web_as(matrix.a.client_login), "GET", this_week()), 403)


def test_without_login_401(db, client):
    assert send(client, "GET", this_week()).status_code == 401


@pytest.mark.parametrize(
    ("days", "status"), [(62, 200), (63, 400), (400, 400), (0, 400), (-1, 400)]
)
def test_the_range_is_bounded(matrix, caller, days, status):
    start = timezone.now().replace(microsecond=0)
    response = send(caller(matrix.a.owner), "GET", feed(start, start + dt.timedelta(days=days)))
    if status == 200:
        assert response.status_code == 200
    else:
        assert "days" in assert_error(response, 400)["detail"] or days <= 0


@pytest.mark.parametrize(
    "query",
    [
        "",
        "start=2026-01-01T00:00:00Z",
        "start=yesterday&end=tomorrow",
        "start=2026-01-01T00:00:00&end=2026-01-08T00:00:00",  # no time zone
        "start=2026-01-01T00:00:00Z&end=2026-01-08T00:00:00Z&staff=nobody",
    ],
)
def test_malformed_input_is_422(matrix, caller, query):
    assert_error(send(caller(matrix.a.owner), "GET", f"/visits/calendar?{query}"), 422)


def test_events_carry_zone_colour_and_no_record(matrix, caller):
    a = matrix.a
    [event] = send(caller(a.owner), "GET", this_week()).json()
    starts = dt.datetime.fromisoformat(event["start"])
    zone = zone_for(a.owner.business)
    # The same instant (the API writes milliseconds), in the business's zone.
    assert abs(starts - a.visit.starts_at) < dt.timedelta(milliseconds=1)
    assert starts.utcoffset() == a.visit.starts_at.astimezone(zone).utcoffset()
    assert event["title"] == a.client.name
    assert event["color"] == staff_colour(a.staff.membership.pk)
    assert event["staff_id"] == str(a.staff.membership.pk)
    assert event["url"] == f"/app/visits/{a.visit.pk}/"
    assert set(event) == {
        "id", "title", "start", "end", "status", "staff_id", "staff", "service", "color", "url"
    }  # fmt: skip


def test_no_door_code_in_the_feed(matrix, caller):
    body = send(caller(matrix.a.owner), "GET", this_week()).content.decode()
    for secret in ("4711", "0815", "Key under the mat", "Cat: Miso", "9999"):
        assert secret not in body


def test_the_staff_filter(matrix, caller):
    a = matrix.a
    owner = caller(a.owner)
    staff = str(a.staff.membership.pk)
    assert ids_in(send(owner, "GET", this_week() + f"&staff={staff}")) == {str(a.visit.pk)}
    other = str(a.other_staff.membership.pk)
    assert ids_in(send(owner, "GET", this_week() + f"&staff={other}")) == set()
    # Another business's staff member filters to nothing, never to their visits.
    b_staff = str(matrix.b.staff.membership.pk)
    assert ids_in(send(owner, "GET", this_week() + f"&staff={b_staff}")) == set()


def test_colours_are_stable_and_readable():
    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    for colour in (*STAFF_COLOURS, UNASSIGNED_COLOUR):
        # White text on it: WCAG AA for normal text.
        assert 1.05 / (luminance(colour) + 0.05) >= 4.5, colour
    assert len(set(STAFF_COLOURS)) == len(STAFF_COLOURS)
    assert staff_colour(None) == UNASSIGNED_COLOUR


def test_an_answer_is_one_bulk_read(matrix, caller):
    a = matrix.a
    client = caller(a.owner)
    after = max((event["id"] for event in chain_events(a.owner)), default=0)
    send(client, "GET", this_week())
    events = [e for e in written(chain_events(a.owner, after=after)) if e["action"] != "token.use"]
    visit_reads = [e for e in events if e["action"] == AuditAction.VISIT_LIST]
    assert len(visit_reads) == 1
    assert visit_reads[0]["detail"] == {"count": 1, "ids": [str(a.visit.pk)]}
    assert visit_reads[0]["subject_ids"] == [str(a.client.pk)]
