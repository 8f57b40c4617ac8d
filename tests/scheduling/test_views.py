"""Services, calendar, visits, staff's day and clients' visit requests."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from custodia.scheduling.access import access_visit_by_id, list_services, list_visits
from custodia.scheduling.actions import do_create_visit, do_update_visit
from custodia.tenancy.reads import Intent
from tests.acting import act
from tests.web.support import logged_in, snapshot, text, title


def local(moment: dt.datetime) -> str:
    """A time as the browser's date-time field sends it."""
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def test_manager_creates_edits_and_retires_services(matrix):
    a = matrix.a
    browser = logged_in(a.manager)
    form = browser.get("/app/services/new/").content.decode()
    for field, label in (
        ("name", "Service name"),
        ("duration_minutes", "Duration (minutes)"),
        ("price", "Price"),
    ):
        assert f'<label for="id_{field}">{label}' in form
    created = browser.post(
        "/app/services/new/", {"name": "Cat visit", "duration_minutes": "30", "price": "18.50"}
    )
    assert created.status_code == 302 and created["Location"] == "/app/services/"
    act(a.owner)
    service = list_services(a.owner).get(name="Cat visit")
    assert (service.duration_minutes, service.price_cents) == (30, 1850)
    listing = browser.get("/app/services/")
    assert "Cat visit" in text(listing) and "18.50" in text(listing)

    edited = browser.post(
        f"/app/services/{service.pk}/edit/",
        {"name": "Cat visit (long)", "duration_minutes": "45", "price": "25"},
    )
    assert edited.status_code == 302
    retired = browser.post(f"/app/services/{service.pk}/retire/")
    assert retired.status_code == 302
    act(a.owner)
    assert not list_services(a.owner).filter(pk=service.pk).exists()
    service = list_services(a.owner, include_inactive=True).get(pk=service.pk)
    assert (service.name, service.duration_minutes, service.is_active) == (
        "Cat visit (long)",
        45,
        False,
    )
    assert "Retired" in text(browser.get("/app/services/"))
    browser.post(f"/app/services/{service.pk}/retire/")
    act(a.owner)
    assert list_services(a.owner).filter(pk=service.pk).exists()


def test_bad_service_input_is_a_400_with_messages(matrix):
    browser = logged_in(matrix.a.manager)
    before = snapshot(matrix)
    response = browser.post(
        "/app/services/new/", {"name": "", "duration_minutes": "2", "price": "-1"}
    )
    assert response.status_code == 400
    body = text(response)
    assert "This field is required." in body
    assert "Ensure this value is greater than or equal to 5." in body
    assert "Ensure this value is greater than or equal to 0." in body
    assert (
        browser.post(
            "/app/services/new/", {"name": "x", "duration_minutes": "ten", "price": "1"}
        ).status_code
        == 400
    )
    assert browser.get("/app/services/nope/edit/").status_code == 404
    assert browser.get(f"/app/services/{matrix.b.service.pk}/edit/").status_code == 404
    assert snapshot(matrix) == before


def test_staff_and_clients_see_services_but_cannot_change_them(matrix):
    for actor in (matrix.a.staff, matrix.a.client_login):
        page = logged_in(actor).get("/app/services/")
        assert page.status_code == 200 and "Walk" in text(page)
        assert "New service" not in text(page) and "/retire/" not in page.content.decode()


def test_calendar_shows_the_week_with_navigation(matrix):
    a = matrix.a
    browser = logged_in(a.manager)
    page = browser.get("/app/calendar/")
    assert page.status_code == 200 and title(page) == "Calendar · Custodia"
    body = text(page)
    assert "Alpha Client" in body and "Bravo Client" not in body
    assert "Previous week" in body and "Next week" in body and "New visit" in body
    html = page.content.decode()
    assert html.count('<section class="day') == 7

    starts = timezone.localtime(a.visit.starts_at)
    monday = starts.date() - dt.timedelta(days=starts.weekday())
    assert f"?week={monday - dt.timedelta(days=7):%Y-%m-%d}" in html
    assert f"?week={monday + dt.timedelta(days=7):%Y-%m-%d}" in html
    # Any day of a week shows that week.
    same = browser.get("/app/calendar/", {"week": f"{monday + dt.timedelta(days=3):%Y-%m-%d}"})
    assert "Alpha Client" in text(same)
    later = browser.get("/app/calendar/", {"week": f"{monday + dt.timedelta(days=14):%Y-%m-%d}"})
    assert later.status_code == 200 and "Alpha Client" not in text(later)


def test_calendar_with_a_malformed_week_is_a_400_with_a_message(matrix):
    browser = logged_in(matrix.a.manager)
    for bad in ("2024-13-45", "yesterday", "'; DROP TABLE x; --"):
        page = browser.get("/app/calendar/", {"week": bad})
        assert page.status_code == 400
        assert "Give the week as YYYY-MM-DD." in text(page)


def test_manager_schedules_a_visit(matrix):
    a = matrix.a
    browser = logged_in(a.manager)
    form = browser.get("/app/visits/new/", {"client": str(a.client.pk)}).content.decode()
    for field, label in (
        ("client", "Client"),
        ("staff", "Staff member"),
        ("service", "Service"),
        ("starts_at", "Start"),
        ("ends_at", "End"),
    ):
        assert f'<label for="id_{field}">{label}' in form
    # Only the business's own clients, staff and services are offered.
    assert str(matrix.b.client.pk) not in form and str(matrix.b.staff.membership.pk) not in form
    assert str(a.client_login.membership.pk) not in form

    starts = timezone.now() + dt.timedelta(days=2)
    response = browser.post(
        "/app/visits/new/",
        {
            "client": str(a.client.pk),
            "staff": str(a.staff.membership.pk),
            "service": str(a.service.pk),
            "starts_at": local(starts),
        },
    )
    assert response.status_code == 302
    visit_id = response["Location"].split("/")[-2]
    act(a.owner)
    visit = access_visit_by_id(a.owner, visit_id, intent=Intent.SHOW)
    assert visit.ends_at - visit.starts_at == dt.timedelta(minutes=60)
    assert visit.staff_id == a.staff.membership.pk
    assert "Visit scheduled." in text(browser.get(response["Location"]))


def test_bad_visit_input_is_a_400_with_messages_and_nothing_saved(matrix):
    a = matrix.a
    browser = logged_in(a.manager)
    before = snapshot(matrix)
    starts = local(timezone.now() + dt.timedelta(days=2))
    cases = [
        (
            {
                "client": str(a.other_client.pk),
                "staff": str(a.staff.membership.pk),
                "starts_at": starts,
                "service": str(a.service.pk),
            },
            "Choose a staff member assigned to this client",
        ),
        (
            {"client": str(a.client.pk), "starts_at": starts},
            "Give an end time or choose a service.",
        ),
        (
            {"client": str(a.client.pk), "starts_at": "tomorrow-ish"},
            "Enter a date and time, e.g. 2030-05-17 14:30.",
        ),
        (
            {"client": str(matrix.b.client.pk), "starts_at": starts, "service": str(a.service.pk)},
            "Select a valid choice.",
        ),
        (
            {"client": str(a.client.pk), "starts_at": starts, "ends_at": starts},
            "A visit must end after it starts.",
        ),
    ]
    for data, message in cases:
        response = browser.post("/app/visits/new/", data)
        assert response.status_code == 400, data
        assert message in text(response), message
    assert snapshot(matrix) == before


def test_staff_report_on_their_own_visit_only(matrix):
    a = matrix.a
    browser = logged_in(a.staff)
    page = browser.get(f"/app/visits/{a.visit.pk}/")
    assert page.status_code == 200
    assert '<label for="id_report">Visit report' in page.content.decode()
    response = browser.post(
        f"/app/visits/{a.visit.pk}/update/", {"status": "completed", "report": "Miso ate well."}
    )
    assert response.status_code == 302
    act(a.owner)
    visit = access_visit_by_id(a.owner, a.visit.pk, intent=Intent.SHOW)
    assert (visit.status, visit.report) == ("completed", "Miso ate well.")
    # Staff cannot put a visit back to "requested" (a manager's call).
    bad = browser.post(f"/app/visits/{a.visit.pk}/update/", {"status": "requested"})
    assert bad.status_code == 400 and "Select a valid choice." in text(bad)

    other = logged_in(a.other_staff)
    assert other.get(f"/app/visits/{a.visit.pk}/").status_code == 404
    assert (
        other.post(f"/app/visits/{a.visit.pk}/update/", {"status": "cancelled"}).status_code == 404
    )
    act(a.owner)
    assert access_visit_by_id(a.owner, a.visit.pk, intent=Intent.SHOW).status == "completed"


def test_client_sees_own_visit_read_only(matrix):
    a = matrix.a
    browser = logged_in(a.client_login)
    page = browser.get(f"/app/visits/{a.visit.pk}/")
    assert page.status_code == 200 and "/update/" not in page.content.decode()
    assert (
        browser.post(f"/app/visits/{a.visit.pk}/update/", {"status": "cancelled"}).status_code
        == 403
    )
    assert browser.get(f"/app/visits/{matrix.b.visit.pk}/").status_code == 404
    assert browser.get("/app/visits/12345/").status_code == 404


def test_client_requests_a_visit_and_a_manager_confirms_it(matrix):
    a = matrix.a
    client = logged_in(a.client_login)
    form = client.get("/app/portal/request/").content.decode()
    for field, label in (
        ("service", "Service"),
        ("starts_at", "Preferred start"),
        ("note", "Note for the business"),
    ):
        assert f'<label for="id_{field}">{label}' in form
    starts = timezone.now() + dt.timedelta(days=4)
    response = client.post(
        "/app/portal/request/",
        {
            "service": str(a.service.pk),
            "starts_at": local(starts),
            "note": "Ring twice",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/app/portal/"
    assert "Your request was sent." in text(client.get("/app/portal/"))
    act(a.owner)
    requested = list_visits(a.owner).get(status="requested")
    assert requested.client_id == a.client.pk and requested.staff_id is None

    manager = logged_in(a.manager)
    dashboard = manager.get("/app/")
    assert "Pending visit requests" in text(dashboard) and "Ring twice" not in text(dashboard)
    detail = manager.get(f"/app/visits/{requested.pk}/")
    assert "Confirm this request" in text(detail) and "Ring twice" in text(detail)
    # Confirming with staff who is not assigned to the client is refused, with the reason.
    refused = manager.post(
        f"/app/visits/{requested.pk}/confirm/", {"staff": str(a.other_staff.membership.pk)}
    )
    assert refused.status_code == 400
    assert "Choose a staff member assigned to this client" in text(refused)
    confirmed = manager.post(
        f"/app/visits/{requested.pk}/confirm/", {"staff": str(a.staff.membership.pk)}
    )
    assert confirmed.status_code == 302
    act(a.owner)
    visit = access_visit_by_id(a.owner, requested.pk, intent=Intent.SHOW)
    assert (visit.status, visit.staff_id) == ("scheduled", a.staff.membership.pk)
    again = manager.post(
        f"/app/visits/{requested.pk}/confirm/", {"staff": str(a.staff.membership.pk)}
    )
    assert again.status_code == 400 and "Only a requested visit can be confirmed." in text(again)


def test_visit_request_in_the_past_or_malformed_is_a_400(matrix):
    browser = logged_in(matrix.a.client_login)
    before = snapshot(matrix)
    past = browser.post(
        "/app/portal/request/", {"starts_at": local(timezone.now() - dt.timedelta(days=1))}
    )
    assert past.status_code == 400 and "Choose a time in the future." in text(past)
    foreign = browser.post(
        "/app/portal/request/",
        {
            "starts_at": local(timezone.now() + dt.timedelta(days=1)),
            "service": str(matrix.b.service.pk),
        },
    )
    assert foreign.status_code == 400 and "Select a valid choice." in text(foreign)
    long_note = browser.post(
        "/app/portal/request/",
        {
            "starts_at": local(timezone.now() + dt.timedelta(days=1)),
            "note": "x" * 2001,
        },
    )
    assert long_note.status_code == 400
    assert snapshot(matrix) == before


def test_today_lists_staffs_visits_with_access_where_visible(matrix):
    a = matrix.a
    act(a.owner)
    # Under way right now, so it is today's whatever the clock says (but 00:00-00:01).
    starts = timezone.now() - dt.timedelta(minutes=1)
    do_update_visit(
        a.visit, actor=a.owner, starts_at=starts, ends_at=starts + dt.timedelta(hours=1)
    )
    page = logged_in(a.staff).get("/app/today/")
    assert page.status_code == 200 and title(page) == "Today · Custodia"
    body = text(page)
    assert "Alpha Client" in body and "1 Main Street" in body
    assert "4711" in body and "Key under the mat" in body
    assert "You have no visits today." in text(logged_in(a.other_staff).get("/app/today/"))

    # Cancelled: the visit no longer opens the home-access window.
    act(a.owner)
    do_update_visit(a.visit, actor=a.owner, status="cancelled")
    body = text(logged_in(a.staff).get("/app/today/"))
    assert "4711" not in body
    assert "Access instructions are shown around your visits." in body


def test_managers_today_shows_the_teams_round_without_codes(matrix):
    a, b = matrix.a, matrix.b
    starts = timezone.now() - dt.timedelta(minutes=1)
    act(a.owner)
    do_update_visit(
        a.visit, actor=a.owner, starts_at=starts, ends_at=starts + dt.timedelta(hours=1)
    )
    do_create_visit(
        actor=a.owner,
        client=a.other_client,
        starts_at=starts,
        ends_at=starts + dt.timedelta(hours=2),
    )
    act(b.owner)
    do_update_visit(
        b.visit, actor=b.owner, starts_at=starts, ends_at=starts + dt.timedelta(hours=1)
    )
    owner = text(logged_in(a.owner).get("/app/today/"))
    assert "You have no visits today." in owner  # the owner's own round is empty
    team = owner.split("Team today", 1)[1]
    assert a.staff.user.display_name in team and "1 visit" in team
    assert "Alpha Client" in team and "Nobody yet" in team  # the unassigned visit too
    assert "4711" not in owner and "Key under the mat" not in owner  # codes: whoever goes
    assert b.client.name not in owner
    assert "Team today" not in text(logged_in(a.staff).get("/app/today/"))


def test_staff_dashboard_lists_their_next_visits(matrix):
    a = matrix.a
    page = logged_in(a.staff).get("/app/")
    assert page.status_code == 200 and "Your next visits" in text(page)
    assert "Alpha Client" in text(page)
    assert "Your next visits" in text(logged_in(a.other_staff).get("/app/"))
    assert "Alpha Client" not in text(logged_in(a.other_staff).get("/app/"))


def test_manager_dashboard_counts(matrix):
    a = matrix.a
    act(a.owner)
    do_create_visit(
        actor=a.owner,
        client=a.client,
        staff=a.staff.membership,
        starts_at=timezone.now() + dt.timedelta(days=1, minutes=1),
        ends_at=timezone.now() + dt.timedelta(days=1, hours=1),
    )
    page = logged_in(a.owner).get("/app/")
    assert page.status_code == 200 and title(page) == "Dashboard · Custodia"
    body = text(page)
    assert "2 Clients" in body
    assert "4 Staff" in body  # owner, manager and the two staff members
    assert "Pending requests" in body and "Visits this week" in body
