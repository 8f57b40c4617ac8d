"""Client pages: list and search, record, edit, delete, assignment, portal invitation, portal."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import unquote

from django.utils import timezone

from custodia.clients.access import assigned_staff, home_access_for, list_clients
from custodia.clients.actions import do_create_client
from custodia.clients.models import Client
from custodia.scheduling.actions import do_update_visit
from custodia.tenancy.access import list_invitations
from tests.acting import act
from tests.web.support import logged_in, snapshot, text, title


def test_manager_lists_searches_and_pages_clients(matrix):
    browser = logged_in(matrix.a.manager)
    page = browser.get("/app/clients/")
    assert page.status_code == 200 and title(page) == "Clients · Custodia"
    assert "Alpha Client" in text(page) and "Alpha Other" in text(page)
    assert "Bravo" not in text(page)
    assert '<label for="id_q">Search clients' in page.content.decode()

    found = browser.get("/app/clients/", {"q": "alpha o"})
    assert "Alpha Other" in text(found) and "Alpha Client" not in text(found)
    by_email = browser.get("/app/clients/", {"q": "CLIENT@alpha.test"})
    assert "Alpha Client" in text(by_email) and "Alpha Other" not in text(by_email)
    nothing = browser.get("/app/clients/", {"q": "Bravo"})
    assert "No clients match your search." in text(nothing)

    act(matrix.a.owner)
    for n in range(50):
        do_create_client(actor=matrix.a.owner, name=f"Zed {n:02d}")
    first = browser.get("/app/clients/")
    assert "52 clients" in text(first) and "Zed 47" in text(first)
    assert "Previous page" not in text(first)
    # Pages are linked by cursor (tenancy/paging.py): no page numbers, no name in the link.
    next_link = re.search(r'href="\?cursor=([^"]+)" rel="next"', first.content.decode())
    assert next_link and "zed" not in next_link[1].lower()
    second = browser.get("/app/clients/", {"cursor": unquote(next_link[1])})
    assert "Zed 48" in text(second) and "Zed 49" in text(second)
    assert "Alpha Client" not in text(second) and "Next page" not in text(second)
    previous = re.search(r'href="\?cursor=([^"]+)" rel="prev"', second.content.decode())
    assert previous
    back = browser.get("/app/clients/", {"cursor": unquote(previous[1])})
    assert "Alpha Client" in text(back) and "Zed 47" in text(back)
    # An old page number is ignored; a cursor edited by hand is a 400 that says so, above the
    # first page.
    assert browser.get("/app/clients/", {"page": "x'--"}).status_code == 200
    edited = browser.get("/app/clients/", {"cursor": unquote(next_link[1])[:-2]})
    assert edited.status_code == 400
    assert "That page link is not valid" in text(edited) and "Alpha Client" in text(edited)


def test_malformed_search_is_a_400_with_a_message(matrix):
    browser = logged_in(matrix.a.manager)
    page = browser.get("/app/clients/", {"q": "x" * 121})
    assert page.status_code == 400
    assert "Ensure this value has at most 120 characters" in text(page)
    page = browser.get("/app/clients/", {"q": "a\x00b"})
    assert page.status_code == 400 and "Null characters are not allowed." in text(page)


def test_staff_see_only_their_assigned_client(matrix):
    browser = logged_in(matrix.a.staff)
    page = browser.get("/app/clients/")
    assert "Alpha Client" in text(page) and "Alpha Other" not in text(page)
    assert "New client" not in text(page)
    assert browser.get(f"/app/clients/{matrix.a.other_client.pk}/").status_code == 404
    # Even a search for the other client's name finds nothing.
    assert "Alpha Other" not in text(browser.get("/app/clients/", {"q": "Alpha Other"}))


def test_staff_see_home_access_only_around_their_visit(matrix):
    a = matrix.a
    browser = logged_in(a.staff)
    soon = browser.get(f"/app/clients/{a.client.pk}/")
    assert "4711" in text(soon) and "Key under the mat" in text(soon)
    assert "/assign/" not in soon.content.decode() and "Edit client" not in text(soon)

    act(a.owner)
    later = timezone.now() + dt.timedelta(days=10)
    do_update_visit(a.visit, actor=a.owner, starts_at=later, ends_at=later + dt.timedelta(hours=1))
    far = browser.get(f"/app/clients/{a.client.pk}/")
    assert far.status_code == 200
    assert "4711" not in text(far) and "0815" not in text(far)
    assert "Access instructions are shown around your visits" in text(far)


def test_manager_creates_a_client(matrix):
    browser = logged_in(matrix.a.manager)
    form = browser.get("/app/clients/new/").content.decode()
    for field, label in (
        ("name", "Name"),
        ("email", "Email"),
        ("phone", "Phone"),
        ("address", "Address"),
        ("notes", "Notes"),
        ("instructions", "Access instructions"),
        ("door_code", "Door code"),
        ("alarm_code", "Alarm code"),
    ):
        assert f'<label for="id_{field}">{label}' in form
    response = browser.post(
        "/app/clients/new/",
        {
            "name": "  Carla Cat  ",
            "email": "carla@example.test",
            "phone": "+1 555 0199",
            "address": "2 Side Street",
            "door_code": "1234",
        },
    )
    assert response.status_code == 302
    act(matrix.a.manager)
    carla = list_clients(matrix.a.manager, query="carla").get()
    assert response["Location"] == f"/app/clients/{carla.pk}/"
    assert carla.name == "Carla Cat"
    assert home_access_for(matrix.a.manager, carla).door_code == "1234"
    page = browser.get(response["Location"])
    assert "Client created." in text(page) and "1234" in text(page)


def test_bad_client_input_is_a_400_with_messages_and_nothing_saved(matrix):
    browser = logged_in(matrix.a.manager)
    before = snapshot(matrix)
    response = browser.post(
        "/app/clients/new/", {"name": "", "email": "not-an-email", "phone": "12"}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "This field is required." in page
    assert "Enter a valid email address." in page
    assert 'aria-describedby="id_name_error"' in page
    assert 'id="id_name_error"' in page
    # The action's own check (phone digits) reaches the field too.
    response = browser.post("/app/clients/new/", {"name": "Dora", "phone": "12"})
    assert response.status_code == 400
    assert "Enter a phone number with at least 5 digits." in text(response)
    assert 'aria-describedby="id_phone_error"' in response.content.decode()
    assert snapshot(matrix) == before


def test_manager_edits_a_client_and_home_access(matrix):
    a = matrix.a
    browser = logged_in(a.manager)
    form = browser.get(f"/app/clients/{a.client.pk}/edit/")
    assert form.status_code == 200 and 'value="4711"' in form.content.decode()
    response = browser.post(
        f"/app/clients/{a.client.pk}/edit/",
        {
            "name": "Alpha Client Renamed",
            "email": "client@alpha.test",
            "door_code": "2468",
            "instructions": "Key with the neighbour",
        },
    )
    assert response.status_code == 302
    act(a.owner)
    client = list_clients(a.owner, query="alpha client renamed").get()
    assert home_access_for(a.owner, client).door_code == "2468"
    bad = browser.post(f"/app/clients/{a.client.pk}/edit/", {"name": " "})
    assert bad.status_code == 400 and "This field is required." in text(bad)


def test_malformed_or_unknown_client_ids_are_404(matrix):
    browser = logged_in(matrix.a.manager)
    for bad in (
        "not-a-uuid",
        "1%27%20OR%201=1",
        "00000000-0000-0000-0000-000000000000",
        str(matrix.b.client.pk),
    ):
        response = browser.get(f"/app/clients/{bad}/")
        assert response.status_code == 404
        assert title(response) == "Not found · Custodia"
        # The error page reveals nothing about what was looked for.
        assert bad not in response.content.decode()
        assert "No such client" not in text(response)


def test_manager_deletes_a_client_after_confirming(matrix):
    a = matrix.a
    browser = logged_in(a.manager)
    confirm = browser.get(f"/app/clients/{a.other_client.pk}/delete/")
    assert confirm.status_code == 200 and "Delete Alpha Other?" in text(confirm)
    assert browser.get(f"/app/clients/{a.other_client.pk}/").status_code == 200
    response = browser.post(f"/app/clients/{a.other_client.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/app/clients/"
    act(a.owner)
    assert not Client.objects.filter(pk=a.other_client.pk).exists()
    assert browser.get(f"/app/clients/{a.other_client.pk}/").status_code == 404


def test_delete_needs_post_with_csrf(matrix):
    a = matrix.a
    browser = logged_in(a.manager)
    browser.handler.enforce_csrf_checks = True
    response = browser.post(f"/app/clients/{a.other_client.pk}/delete/")
    assert response.status_code == 403
    browser.handler.enforce_csrf_checks = False
    assert browser.put(f"/app/clients/{a.other_client.pk}/delete/").status_code == 405
    act(a.owner)
    assert Client.objects.filter(pk=a.other_client.pk).exists()


def test_manager_assigns_and_unassigns_staff(matrix):
    a = matrix.a
    browser = logged_in(a.manager)
    page = browser.get(f"/app/clients/{a.other_client.pk}/").content.decode()
    assert '<label for="id_staff">Staff member' in page
    response = browser.post(
        f"/app/clients/{a.other_client.pk}/assign/", {"staff": str(a.other_staff.membership.pk)}
    )
    assert response.status_code == 302
    act(a.owner)
    assert [m.pk for m in assigned_staff(a.owner, a.other_client)] == [a.other_staff.membership.pk]
    # The newly assigned staff member now sees the client.
    assert logged_in(a.other_staff).get(f"/app/clients/{a.other_client.pk}/").status_code == 200

    response = browser.post(
        f"/app/clients/{a.other_client.pk}/unassign/{a.other_staff.membership.pk}/"
    )
    assert response.status_code == 302
    act(a.owner)
    assert not assigned_staff(a.owner, a.other_client).exists()
    assert logged_in(a.other_staff).get(f"/app/clients/{a.other_client.pk}/").status_code == 404


def test_assigning_someone_from_another_business_or_a_client_is_refused(matrix):
    a = matrix.a
    browser = logged_in(a.manager)
    before = snapshot(matrix)
    for bad in (str(matrix.b.staff.membership.pk), str(a.client_login.membership.pk), "nope", ""):
        response = browser.post(f"/app/clients/{a.other_client.pk}/assign/", {"staff": bad})
        assert response.status_code == 400
        assert "Select a valid choice" in text(response) or "This field is required" in text(
            response
        )
    assert snapshot(matrix) == before


def test_manager_invites_a_client_to_the_portal(matrix, mailoutbox):
    a = matrix.a
    browser = logged_in(a.manager)
    response = browser.post(
        f"/app/clients/{a.other_client.pk}/invite/", {"email": "other@alpha.test"}
    )
    assert response.status_code == 302
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["other@alpha.test"]
    act(a.owner)
    invitation = list_invitations(a.owner).get()
    assert invitation.role == "client" and invitation.client_id == a.other_client.pk
    bad = browser.post(f"/app/clients/{a.other_client.pk}/invite/", {"email": "nope"})
    assert bad.status_code == 400 and "Enter a valid email address." in text(bad)
    # A client who already has a portal login is not offered another invitation.
    assert "This client has a portal login." in text(browser.get(f"/app/clients/{a.client.pk}/"))


def test_client_sees_only_themself_in_the_portal(matrix):
    a = matrix.a
    browser = logged_in(a.client_login)
    assert browser.get("/app/").url == "/app/portal/"
    page = browser.get("/app/portal/")
    assert page.status_code == 200 and title(page) == "My portal · Custodia"
    body = text(page)
    assert "Alpha Client" in body and "1 Main Street" in body and "+1 555 0100" in body
    assert "Alpha Other" not in body
    # Internal notes and home access are the business's, not shown in the portal.
    assert "Cat: Miso" not in body and "4711" not in body
    assert "Walk" in body  # their visit
    assert browser.get(f"/app/clients/{a.other_client.pk}/").status_code == 404
    assert browser.get(f"/app/clients/{matrix.b.client.pk}/").status_code == 404
    assert browser.get(f"/app/clients/{a.client.pk}/").url == "/app/portal/"
    assert browser.get("/app/clients/").status_code == 403
    nav = page.content.decode()
    assert 'href="/app/portal/"' in nav and 'href="/app/clients/"' not in nav


def test_an_empty_post_gets_the_field_messages(matrix):
    response = logged_in(matrix.a.manager).post("/app/clients/new/", {})
    assert response.status_code == 400 and "This field is required." in text(response)
    response = logged_in(matrix.a.client_login).post("/app/portal/request/", {})
    assert response.status_code == 400 and "This field is required." in text(response)
