"""A member's calendar feed (docs/visits.md, "Calendar feed"): who may make one, what its address
opens and what it never does, what it holds and never holds, and what the trail and logs keep."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from icalendar import Calendar

from custodia.accounts.actions import (
    do_create_api_token,
    do_create_calendar_feed,
    do_revoke_calendar_feed,
)
from custodia.accounts.models import CalendarFeed
from custodia.accounts.stepup import StepUpRequired
from custodia.core.actor import Actor
from custodia.core.audit import AuditAction
from custodia.core.dbcontext import clear
from custodia.scheduling.actions import do_create_visit
from custodia.tenancy.actions import do_deactivate_member
from tests.acting import act, resolve_token
from tests.audit.support import chain_events
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix, stale
from tests.web.support import anonymous, logged_in
from tests.web.test_logs import Capture, captured  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

PAGE = "/app/security/calendar-feed/"
CREATE = "/app/security/calendar-feed/new/"
REVOKE = "/app/security/calendar-feed/revoke/"
FEED_URL = re.compile(r'value="https://[^/"]+(/calendar/([0-9a-f]{12})/([A-Za-z0-9_-]+)\.ics)"')
# What business A's client and home hold (tests/factories.py): never in a feed.
NEVER_IN_A_FEED = (
    "4711",  # door code
    "0815",  # alarm code
    "Key under the mat",  # access instructions
    "1 Main Street",  # address
    "Cat: Miso",  # notes
    "client@alpha.test",
    "555 0100",
    "Client",  # the client's last name ("Alpha Client"): first names only
)


def make_feed(actor: Actor) -> tuple[CalendarFeed, str]:
    """A feed of `actor`'s, and its path (`/calendar/<prefix>/<secret>.ics`)."""
    act(actor)
    feed, secret_path = do_create_calendar_feed(actor=actor)
    return feed, f"/calendar/{secret_path}.ics"


def fetch(path: str, client: HttpsClient | None = None) -> Any:
    """The feed as a calendar app gets it: no session, no cookie."""
    return (client or anonymous()).get(path)


def events_of(response: Any) -> list[Any]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    return list(Calendar.from_ical(response.content).walk("VEVENT"))


# --- Making and revoking, on the page --------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "manager", "staff"])
def test_members_make_a_feed_whose_address_is_shown_once(matrix: TenantMatrix, role: str) -> None:
    actor = getattr(matrix.a, role)
    browser = logged_in(actor)
    assert browser.get(PAGE).status_code == 200
    made = browser.post(CREATE)
    assert made.status_code == 200
    found = FEED_URL.search(made.content.decode())
    assert found, made.content
    path, prefix, secret = found.groups()
    act(actor)
    feed = CalendarFeed.objects.get(prefix=prefix)
    assert feed.membership_id == actor.membership.pk and feed.revoked_at is None
    # Only a digest is stored; the page that lists it later never shows the secret.
    assert secret not in feed.digest and secret not in browser.get(PAGE).content.decode()
    assert fetch(path).status_code == 200


def test_a_client_member_cannot_make_a_feed(matrix: TenantMatrix) -> None:
    browser = logged_in(matrix.a.client_login)
    assert browser.get(PAGE).status_code == 403
    assert browser.post(CREATE).status_code == 403
    act(matrix.a.client_login)
    with pytest.raises(PermissionDenied):
        do_create_calendar_feed(actor=matrix.a.client_login)
    act(matrix.a.owner)
    assert not CalendarFeed.objects.filter(tenant_id=matrix.a.owner.tenant_id).exists()


def test_a_logged_out_browser_is_sent_to_log_in(matrix: TenantMatrix) -> None:
    for answer in (anonymous().get(PAGE), anonymous().post(CREATE), anonymous().post(REVOKE)):
        assert answer.status_code == 302 and "/accounts/login/" in answer["Location"]


def test_an_api_token_cannot_make_or_revoke_a_feed(matrix: TenantMatrix, api_as: Any) -> None:
    _feed, path = make_feed(matrix.a.staff)
    api = api_as(matrix.a.staff)
    for answer in (api.get(PAGE), api.post(CREATE), api.post(REVOKE)):
        # The pages are a session's: a bearer token is no login there.
        assert answer.status_code in {302, 403}
    act(matrix.a.staff)
    assert CalendarFeed.objects.filter(membership_id=matrix.a.staff.membership.pk).count() == 1
    assert fetch(path).status_code == 200
    # Nor can the actor a token makes: it never steps up.
    act(matrix.a.staff)
    _token, plain = do_create_api_token(actor=matrix.a.staff, name="feed")
    clear()
    token_actor = resolve_token(plain)
    assert token_actor is not None
    with pytest.raises(StepUpRequired):
        do_create_calendar_feed(actor=token_actor)
    # And a session past its step-up is sent to confirm first.
    act(stale(matrix.a.staff))
    with pytest.raises(StepUpRequired):
        do_create_calendar_feed(actor=stale(matrix.a.staff))


def test_a_new_feed_revokes_the_one_before(matrix: TenantMatrix) -> None:
    first, first_path = make_feed(matrix.a.staff)
    second, second_path = make_feed(matrix.a.staff)
    assert fetch(first_path).status_code == 404
    assert fetch(second_path).status_code == 200
    first.refresh_from_db()
    assert first.revoked_at is not None


def test_revoking_on_the_page_stops_the_address(matrix: TenantMatrix) -> None:
    _feed, path = make_feed(matrix.a.staff)
    browser = logged_in(matrix.a.staff)
    answer = browser.post(REVOKE)
    assert answer.status_code == 302 and answer["Location"] == PAGE
    assert fetch(path).status_code == 404
    assert "no calendar feed" in browser.get(PAGE).content.decode()


def test_another_member_cannot_revoke_a_feed(matrix: TenantMatrix) -> None:
    feed, path = make_feed(matrix.a.staff)
    for other in (matrix.a.owner, matrix.a.other_staff, matrix.outsider):
        # Their own page revokes their own feed (none): never someone else's.
        assert logged_in(other).post(REVOKE).status_code == 302
        act(other)
        from django.http import Http404

        with pytest.raises(Http404):
            do_revoke_calendar_feed(feed, actor=other)
    assert fetch(path).status_code == 200


# --- The address -------------------------------------------------------------------------------


def test_wrong_unknown_malformed_and_revoked_addresses_get_one_404(matrix: TenantMatrix) -> None:
    feed, path = make_feed(matrix.a.staff)
    prefix, secret = path.removeprefix("/calendar/").removesuffix(".ics").split("/")
    wrong = f"/calendar/{prefix}/{secret[:-4]}AAAA.ics"
    unknown = f"/calendar/000000000000/{secret}.ics"
    malformed = [f"/calendar/{prefix}/short.ics", f"/calendar/NOTAPREFIX!/{secret}.ics"]
    too_long = f"/calendar/{prefix}/{'a' * 300}.ics"
    answers = [fetch(url) for url in (wrong, unknown, *malformed, too_long)]
    act(matrix.a.staff)
    do_revoke_calendar_feed(feed, actor=matrix.a.staff)
    answers.append(fetch(path))
    for answer in answers:
        assert answer.status_code == 404
        assert answer.content == b"No such calendar feed."
        assert answer["Content-Type"] == "text/plain; charset=utf-8"


def test_another_businesss_prefix_with_this_secret_is_404(matrix: TenantMatrix) -> None:
    _mine, path = make_feed(matrix.a.staff)
    theirs, their_path = make_feed(matrix.b.staff)
    secret = path.rsplit("/", 1)[1]
    assert fetch(f"/calendar/{theirs.prefix}/{secret}").status_code == 404
    their_secret = their_path.rsplit("/", 1)[1]
    mine_prefix = path.split("/")[2]
    assert fetch(f"/calendar/{mine_prefix}/{their_secret}").status_code == 404
    assert fetch(path).status_code == 200 and fetch(their_path).status_code == 200


def test_a_deactivated_member_s_feed_stops(matrix: TenantMatrix) -> None:
    _feed, path = make_feed(matrix.a.staff)
    act(matrix.a.owner)
    do_deactivate_member(matrix.a.staff.membership, actor=matrix.a.owner)
    assert fetch(path).status_code == 404


def test_only_get_and_head(matrix: TenantMatrix) -> None:
    _feed, path = make_feed(matrix.a.staff)
    assert anonymous().head(path).status_code == 200
    assert anonymous().post(path).status_code == 405


def test_a_signed_in_browser_of_another_business_gets_the_feed_s_member_only(
    matrix: TenantMatrix,
) -> None:
    """A session cookie sent along changes nothing: the address alone decides."""
    _feed, path = make_feed(matrix.a.staff)
    events = events_of(fetch(path, logged_in(matrix.outsider)))
    assert [str(event["summary"]) for event in events] == ["Walk: Alpha"]


# --- What it holds --------------------------------------------------------------------------


def test_the_feed_holds_the_member_s_visits_and_no_door_code(matrix: TenantMatrix) -> None:
    a = matrix.a
    act(a.owner)
    # Another staff member's visit of another client, and one of staff's out of the window.
    from custodia.clients.actions import do_assign_staff

    do_assign_staff(a.other_client, a.other_staff.membership, actor=a.owner)
    do_create_visit(
        actor=a.owner,
        client=a.other_client,
        staff=a.other_staff.membership,
        service=a.service,
        starts_at=timezone.now() + dt.timedelta(days=1),
    )
    do_create_visit(
        actor=a.owner,
        client=a.client,
        staff=a.staff.membership,
        service=a.service,
        starts_at=timezone.now() + dt.timedelta(days=200),
    )
    _feed, path = make_feed(a.staff)
    response = fetch(path)
    body = response.content.decode()
    [event] = events_of(response)
    assert str(event["summary"]) == "Walk: Alpha"
    assert str(event["uid"]) == f"visit-{a.visit.pk}@custodia"
    assert event.decoded("dtstart") == a.visit.starts_at.replace(microsecond=0)
    assert str(event["url"]).endswith(f"/app/visits/{a.visit.pk}/")
    for value in NEVER_IN_A_FEED:
        assert value not in body, value
    assert "LOCATION" not in body and "DESCRIPTION" not in body
    assert response["Cache-Control"] == "private, no-store"


def test_times_are_in_the_business_s_zone(matrix: TenantMatrix) -> None:
    from custodia.tenancy.models import Business

    act(matrix.a.owner)
    updated = Business.objects.filter(pk=matrix.a.owner.tenant_id).update(
        time_zone="America/New_York"
    )
    assert updated == 1
    _feed, path = make_feed(matrix.a.staff)
    response = fetch(path)
    body = response.content.decode()
    assert "X-WR-TIMEZONE:America/New_York" in body
    assert "BEGIN:VTIMEZONE" in body and "TZID=America/New_York" in body
    [event] = events_of(response)
    assert event.decoded("dtstart") == matrix.a.visit.starts_at.replace(microsecond=0)


# --- The trail and the logs ------------------------------------------------------------------


def test_making_fetching_and_revoking_are_recorded_without_the_secret(
    matrix: TenantMatrix,
) -> None:
    feed, path = make_feed(matrix.a.staff)
    secret = path.rsplit("/", 1)[1].removesuffix(".ics")
    assert fetch(path).status_code == 200
    act(matrix.a.staff)
    do_revoke_calendar_feed(feed, actor=matrix.a.staff)
    events = chain_events(matrix.a.owner)
    made = [e for e in events if e["action"] == AuditAction.CALENDAR_FEED_CREATE]
    read = [e for e in events if e["action"] == AuditAction.VISIT_FEED]
    revoked = [e for e in events if e["action"] == AuditAction.CALENDAR_FEED_REVOKE]
    assert len(made) == len(read) == len(revoked) == 1
    assert json.loads(made[0]["detail"]) == {"prefix": feed.prefix}
    assert json.loads(revoked[0]["detail"]) == {"prefix": feed.prefix}
    assert str(read[0]["actor_user_id"]) == str(matrix.a.staff.user.pk)
    assert read[0]["actor_role"] == "staff"
    detail = json.loads(read[0]["detail"])
    assert detail == {"count": 1, "ids": [str(matrix.a.visit.pk)]}
    assert secret not in repr(events)


def test_the_secret_never_reaches_a_log_line(matrix: TenantMatrix, captured: Capture) -> None:  # noqa: F811
    _feed, path = make_feed(matrix.a.staff)
    secret = path.rsplit("/", 1)[1].removesuffix(".ics")
    prefix = path.split("/")[2]
    browser = HttpsClient(raise_request_exception=False)
    assert browser.get(path).status_code == 200
    assert browser.get(f"/calendar/{prefix}/{secret[:-2]}xx.ics").status_code == 404
    assert browser.post(path).status_code == 405
    # django.request logs the 404 and 405 with their path (every logger is at DEBUG here).
    lines = captured.lines + captured.texts
    assert any(f"/calendar/{prefix}/[redacted]" in line for line in lines), lines
    assert not any(secret in line or secret[:-2] in line for line in lines)


def test_a_signed_in_browser_opening_a_wrong_address_gets_the_404(matrix: TenantMatrix) -> None:
    """The session's actor acts again for the refusal it records (never a 500)."""
    _feed, path = make_feed(matrix.a.staff)
    prefix = path.split("/")[2]
    browser = logged_in(matrix.a.manager)
    for wrong in (f"/calendar/{prefix}/{'x' * 43}.ics", "/calendar/walkprefix/walksecret.ics"):
        answer = browser.get(wrong)
        assert answer.status_code == 404 and answer.content == b"No such calendar feed."
    denied = [
        event
        for event in chain_events(matrix.a.owner)
        if event["action"] == AuditAction.ACCESS_DENIED
    ]
    assert len(denied) == 2
    assert all(str(event["actor_user_id"]) == str(matrix.a.manager.user.pk) for event in denied)
    assert not any(prefix in str(event["detail"]) for event in denied)


def test_deleting_the_business_takes_every_member_s_feed_with_it(
    matrix: TenantMatrix, django_capture_on_commit_callbacks: Any
) -> None:
    """Feeds the owner cannot otherwise see (other members') go too; their addresses stop."""
    from django.db import connection

    from custodia.tenancy.actions import do_delete_business
    from custodia.tenancy.models import Business

    a = matrix.a
    paths = [make_feed(member)[1] for member in (a.owner, a.manager, a.staff)]
    _theirs, their_path = make_feed(matrix.b.staff)
    act(a.owner)
    business = Business.objects.get(pk=a.owner.tenant_id)
    with django_capture_on_commit_callbacks(execute=True):
        do_delete_business(business, actor=a.owner, confirm_slug=business.slug)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for path in paths:
        assert fetch(path).status_code == 404
    assert fetch(their_path).status_code == 200


def test_a_secret_key_rotation_re_digests_a_feed_at_its_first_fetch(
    matrix: TenantMatrix, settings: Any
) -> None:
    """Like an API token: the address made under the old key works through the fallback, is
    re-digested under the new key at that fetch, and so outlives the fallback's retirement; a
    feed not fetched meanwhile stops with it (its member makes a new one)."""
    feed, path = make_feed(matrix.a.staff)
    _, idle_path = make_feed(matrix.a.manager)
    old_digest = feed.digest
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "rotated-" + "q8Wm3Zt6Yp1Lx9Vb4Nc7Hd2Kf5Gj0Rs" * 2
    assert fetch(path).status_code == 200
    clear()
    act(matrix.a.staff)
    feed.refresh_from_db()
    assert feed.digest != old_digest
    settings.SECRET_KEY_FALLBACKS = []
    assert fetch(path).status_code == 200
    assert fetch(idle_path).status_code == 404
