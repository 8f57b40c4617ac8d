"""What each role sees through the API, and what the writes do."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.core import mail

from custodia.scheduling.access import access_visit_by_id
from custodia.tenancy.access import access_member_by_id
from custodia.tenancy.reads import Intent
from tests.acting import act
from tests.api.conftest import send, soon
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix


def items(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    return response.json()["items"]


def test_client_list_shows_each_role_its_own(matrix: TenantMatrix, caller: Any) -> None:
    a = matrix.a
    seen = {
        role: [c["id"] for c in items(send(caller(actor), "GET", "/clients"))]
        for role, actor in [
            ("owner", a.owner),
            ("manager", a.manager),
            ("staff", a.staff),
            ("other_staff", a.other_staff),
            ("client", a.client_login),
            ("outsider", matrix.outsider),
        ]
    }
    assert sorted(seen["owner"]) == sorted([str(a.client.pk), str(a.other_client.pk)])
    assert sorted(seen["manager"]) == sorted(seen["owner"])
    assert seen["staff"] == [str(a.client.pk)]
    assert seen["other_staff"] == []
    assert seen["client"] == [str(a.client.pk)]
    assert sorted(seen["outsider"]) == sorted(
        [str(matrix.b.client.pk), str(matrix.b.other_client.pk)]
    )


def test_visit_list_shows_each_role_its_own(matrix: TenantMatrix, caller: Any) -> None:
    a = matrix.a
    visit = str(a.visit.pk)
    assert [v["id"] for v in items(send(caller(a.manager), "GET", "/visits"))] == [visit]
    assert [v["id"] for v in items(send(caller(a.staff), "GET", "/visits"))] == [visit]
    assert items(send(caller(a.other_staff), "GET", "/visits")) == []
    assert [v["id"] for v in items(send(caller(a.client_login), "GET", "/visits"))] == [visit]
    assert visit not in send(caller(matrix.outsider), "GET", "/visits").content.decode()


def test_visit_filters(matrix: TenantMatrix, api_as: Any) -> None:
    client = api_as(matrix.a.owner)
    starts = matrix.a.visit.starts_at

    def found(**query: str) -> int:
        return len(items(send(client, "GET", "/visits", data=query)))

    assert (
        found(
            start=(starts - dt.timedelta(hours=1)).isoformat(),
            end=(starts + dt.timedelta(hours=1)).isoformat(),
        )
        == 1
    )
    assert found(start=(starts + dt.timedelta(days=1)).isoformat()) == 0
    assert found(end=(starts - dt.timedelta(days=1)).isoformat()) == 0
    assert found(client_id=str(matrix.a.client.pk)) == 1
    assert found(client_id=str(matrix.a.other_client.pk)) == 0
    assert found(staff_id=str(matrix.a.staff.membership.pk)) == 1
    assert found(client_id=str(matrix.b.client.pk)) == 0  # another tenant's id: just nothing


def test_client_search_and_pagination(matrix: TenantMatrix, api_as: Any) -> None:
    client = api_as(matrix.a.owner)
    page = send(client, "GET", "/clients", data={"limit": 1}).json()
    assert page["count"] == 2 and len(page["items"]) == 1 and not page["count_capped"]
    second = send(client, "GET", "/clients", data={"limit": 1, "cursor": page["next_cursor"]})
    assert second.json()["items"][0]["id"] != page["items"][0]["id"]
    assert [c["name"] for c in items(send(client, "GET", "/clients", data={"q": "alpha o"}))] == [
        "Alpha Other"
    ]
    by_email = items(send(client, "GET", "/clients", data={"q": "CLIENT@alpha.test"}))
    assert [c["name"] for c in by_email] == ["Alpha Client"]
    assert items(send(api_as(matrix.outsider), "GET", "/clients", data={"q": "Alpha"})) == []


def test_client_search_by_any_word_of_the_name(matrix: TenantMatrix, api_as: Any) -> None:
    owner = api_as(matrix.a.owner)
    for name in ("Ashley Leeds", "Kim Lee", "Ashleigh Smith"):
        assert send(owner, "POST", "/clients", {"name": name}).status_code == 201
    found = items(send(owner, "GET", "/clients", data={"q": "Lee"}))
    assert [c["name"] for c in found] == ["Ashley Leeds", "Kim Lee"]
    short = send(owner, "GET", "/clients", data={"q": "L"})
    assert short.status_code == 422
    assert short.json()["errors"] == {"q": ["Type at least 2 characters of a name."]}
    # Staff find only their assigned client (Alpha Client), whatever word they type.
    staff = api_as(matrix.a.staff)
    assert [c["name"] for c in items(send(staff, "GET", "/clients", data={"q": "client"}))] == [
        "Alpha Client"
    ]
    assert items(send(staff, "GET", "/clients", data={"q": "lee"})) == []
    assert items(send(api_as(matrix.outsider), "GET", "/clients", data={"q": "lee"})) == []


def test_home_access_only_for_those_who_may_see_it(
    matrix: TenantMatrix, caller: Any, web_as: Any
) -> None:
    path = f"/clients/{matrix.a.client.pk}"
    # Staff around their own visit (in 2 h), with a token too; owners and managers only in a
    # session that has just proved itself, never with a token (tests/security/test_door_codes.py).
    seen_by = (caller(matrix.a.staff), web_as(matrix.a.owner), web_as(matrix.a.manager))
    for reader in seen_by:
        home = send(reader, "GET", path).json()["home_access"]
        assert home["door_code"] == "4711" and home["alarm_code"] == "0815"
    for actor in (matrix.a.owner, matrix.a.manager):
        assert send(caller(actor), "GET", path).json()["home_access"] is None
    mine = send(caller(matrix.a.client_login), "GET", path)
    assert mine.status_code == 200 and mine.json()["home_access"] is None
    # The list never carries codes, whoever asks.
    listing = send(caller(matrix.a.owner), "GET", "/clients").content.decode()
    assert "home_access" not in listing and "4711" not in listing


def test_staff_outside_the_visit_window_get_no_codes(matrix: TenantMatrix, api_as: Any) -> None:
    act(matrix.a.owner)
    later = matrix.a.visit.starts_at + dt.timedelta(days=30)
    response = send(
        api_as(matrix.a.owner),
        "PATCH",
        f"/visits/{matrix.a.visit.pk}",
        {"starts_at": later.isoformat(), "ends_at": (later + dt.timedelta(hours=1)).isoformat()},
    )
    assert response.status_code == 200, response.content
    home = send(api_as(matrix.a.staff), "GET", f"/clients/{matrix.a.client.pk}").json()
    assert home["home_access"] is None


def test_create_client_then_update_it(matrix: TenantMatrix, web_as: Any) -> None:
    # A session that has just logged in: a manager sees the codes of a client with no visit near
    # only after a fresh step-up (tests/clients/test_home_access_reveal.py).
    client = web_as(matrix.a.manager)
    created = send(
        client,
        "POST",
        "/clients",
        {"name": " Dana ", "email": "dana@example.test", "door_code": "1234"},
    )
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == "Dana" and body["home_access"]["door_code"] == "1234"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", body["created_at"]
    )
    changed = send(
        client, "PATCH", f"/clients/{body['id']}", {"phone": "+1 555 0199", "door_code": ""}
    )
    assert changed.json()["phone"] == "+1 555 0199"
    assert changed.json()["home_access"]["door_code"] == ""
    assert changed.json()["email"] == "dana@example.test"  # untouched


def test_assign_and_unassign_staff(matrix: TenantMatrix, api_as: Any) -> None:
    owner = api_as(matrix.a.owner)
    client_path = f"/clients/{matrix.a.other_client.pk}"
    other_staff = str(matrix.a.other_staff.membership.pk)
    assert send(api_as(matrix.a.other_staff), "GET", client_path).status_code == 404
    assigned = send(owner, "POST", f"{client_path}/staff", {"membership_id": other_staff})
    assert assigned.status_code == 201 and assigned.json()["id"] == other_staff
    listed = send(owner, "GET", f"{client_path}/staff").json()
    assert [m["id"] for m in listed] == [other_staff]
    assert send(api_as(matrix.a.other_staff), "GET", client_path).status_code == 200
    assert send(owner, "DELETE", f"{client_path}/staff/{other_staff}").status_code == 204
    assert send(api_as(matrix.a.other_staff), "GET", client_path).status_code == 404


def test_staff_see_only_themselves_among_a_clients_staff(matrix: TenantMatrix, api_as: Any) -> None:
    listed = send(api_as(matrix.a.staff), "GET", f"/clients/{matrix.a.client.pk}/staff").json()
    assert [m["id"] for m in listed] == [str(matrix.a.staff.membership.pk)]


def test_invitation_answer_never_carries_the_secret(matrix: TenantMatrix, web_as: Any) -> None:
    response = send(
        web_as(matrix.a.manager),
        "POST",
        "/staff/invitations",
        {"email": "New.Person@Example.test", "role": "staff"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "email", "role", "created_at", "expires_at"}
    assert body["email"] == "new.person@example.test" and body["role"] == "staff"
    link = re.search(r"/invite/(\w+)/(\S+)/", mail.outbox[-1].body)
    assert link is not None
    prefix, secret = link.groups()
    assert secret not in response.content.decode() and prefix not in response.content.decode()


def test_only_an_owner_invites_an_owner(matrix: TenantMatrix, web_as: Any) -> None:
    body = {"email": "boss@example.test", "role": "owner"}
    assert send(web_as(matrix.a.manager), "POST", "/staff/invitations", body).status_code == 403
    assert send(web_as(matrix.a.owner), "POST", "/staff/invitations", body).status_code == 201


def test_inviting_a_member_is_refused_to_an_api_token(matrix: TenantMatrix, api_as: Any) -> None:
    # Granting the run of the business, or a staff member's view of door codes around their
    # visits, needs a fresh proof, which a token can never give.
    for role in ("owner", "manager", "staff"):
        body = {"email": f"{role}@example.test", "role": role}
        answer = send(api_as(matrix.a.owner), "POST", "/staff/invitations", body)
        assert answer.status_code == 403 and "an API token cannot" in answer.json()["detail"]


def test_manager_cannot_deactivate_a_manager(matrix: TenantMatrix, api_as: Any) -> None:
    response = send(
        api_as(matrix.a.manager),
        "PATCH",
        f"/staff/{matrix.a.owner.membership.pk}",
        {"is_active": False},
    )
    assert response.status_code == 403


def test_owner_changes_a_role_from_a_recently_confirmed_session(matrix: TenantMatrix) -> None:
    response = send(
        HttpsClient().act_as(matrix.a.owner),  # logged in just now
        "PATCH",
        f"/staff/{matrix.a.staff.membership.pk}",
        {"role": "manager"},
    )
    assert response.json()["role"] == "manager"
    act(matrix.a.owner)
    assert access_member_by_id(matrix.a.owner, matrix.a.staff.membership.pk).role == "manager"


def test_a_role_change_is_refused_to_an_api_token(matrix: TenantMatrix, api_as: Any) -> None:
    # A token cannot re-authenticate, and a role change needs a fresh proof (accounts/stepup.py).
    response = send(
        api_as(matrix.a.owner),
        "PATCH",
        f"/staff/{matrix.a.staff.membership.pk}",
        {"role": "manager"},
    )
    assert response.status_code == 403
    assert "an API token cannot" in response.json()["detail"]
    act(matrix.a.owner)
    assert access_member_by_id(matrix.a.owner, matrix.a.staff.membership.pk).role == "staff"


def test_manager_schedules_and_client_requests(matrix: TenantMatrix, caller: Any) -> None:
    a = matrix.a
    scheduled = send(
        caller(a.manager),
        "POST",
        "/visits",
        {
            "client_id": str(a.client.pk),
            "staff_id": str(a.staff.membership.pk),
            "starts_at": soon(days=5),
            "ends_at": soon(days=5, hours=2),
        },
    )
    assert scheduled.status_code == 201, scheduled.content
    assert scheduled.json()["status"] == "scheduled"
    assert scheduled.json()["service_id"] is None
    requested = send(
        caller(a.client_login),
        "POST",
        "/visits",
        {"starts_at": soon(days=6), "service_id": str(a.service.pk), "note": "Side door please"},
    )
    assert requested.status_code == 201, requested.content
    body = requested.json()
    assert body["status"] == "requested" and body["staff_id"] is None
    assert body["client_id"] == str(a.client.pk) and body["request_note"] == "Side door please"


def test_staff_report_on_their_visit_but_change_nothing_else(
    matrix: TenantMatrix, api_as: Any
) -> None:
    staff = api_as(matrix.a.staff)
    path = f"/visits/{matrix.a.visit.pk}"
    done = send(staff, "PATCH", path, {"status": "completed", "report": "All good"})
    assert done.json()["status"] == "completed" and done.json()["report"] == "All good"
    moved = send(staff, "PATCH", path, {"starts_at": soon(days=9)})
    assert moved.status_code == 422 and "starts_at" in moved.json()["errors"]
    act(matrix.a.owner)
    visit = access_visit_by_id(matrix.a.owner, matrix.a.visit.pk, intent=Intent.SHOW)
    assert visit.starts_at == matrix.a.visit.starts_at


def test_manager_reassigns_and_unassigns_a_visit(matrix: TenantMatrix, api_as: Any) -> None:
    manager = api_as(matrix.a.manager)
    path = f"/visits/{matrix.a.visit.pk}"
    cleared = send(manager, "PATCH", path, {"staff_id": None, "service_id": None})
    assert cleared.status_code == 200, cleared.content
    assert cleared.json()["staff_id"] is None and cleared.json()["service_id"] is None
    back = send(manager, "PATCH", path, {"staff_id": str(matrix.a.staff.membership.pk)})
    assert back.json()["staff_id"] == str(matrix.a.staff.membership.pk)


def test_services_retired_are_hidden_from_clients(matrix: TenantMatrix, caller: Any) -> None:
    owner = caller(matrix.a.owner)
    send(owner, "PATCH", f"/services/{matrix.a.service.pk}", {"is_active": False})
    assert len(items(send(owner, "GET", "/services"))) == 0
    assert len(items(send(owner, "GET", "/services", data={"include_inactive": "true"}))) == 1
    client = caller(matrix.a.client_login)
    assert items(send(client, "GET", "/services", data={"include_inactive": "true"})) == []
