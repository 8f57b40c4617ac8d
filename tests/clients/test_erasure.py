"""Erasure of one client: a client asks from the portal, an owner or manager confirms with a
fresh step-up (or erases directly); afterwards no trace of the client's personal data is left in
the database, their visits still count, their portal login is detached, and the audit trail
names them by id only.

The attacks: the client confirming their own request, staff, another business's owner, an API
token and a stale step-up: each refused, nothing changed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import ProgrammingError, connection, transaction
from django.http import Http404

from custodia.accounts.models import User
from custodia.accounts.stepup import StepUpRequired
from custodia.clients.models import Client, ErasureRequest, HomeAccess
from custodia.core.actor import Actor
from custodia.core.dbcontext import set_db_context
from custodia.lifecycle.erasure import ERASED_NAME, do_erase_client, do_request_erasure
from custodia.scheduling.models import Visit
from custodia.tenancy.models import Membership
from tests.acting import act
from tests.audit.support import chain_events
from tests.factories import Business, TenantMatrix, stale
from tests.web.support import age_session, logged_in, snapshot, text

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


def personal_data(business: Business) -> list[str]:
    """What the factories put in the client's record and home access, and the login's."""
    client = business.client
    return [
        client.name,
        client.email,
        "555 0100",
        "5550100",
        "1 Main Street",
        "Miso",
        "Key under the mat",
        "4711",
        "0815",
        business.client_login.user.email,
        business.client_login.user.full_name,
    ]


def text_rows_holding(needles: list[str], business: Business) -> dict[str, list[str]]:
    """Every text, varchar and jsonb column of every table the app role may read, in the
    business's owner context, searched for each needle (case-insensitively)."""
    found: dict[str, list[str]] = {}
    with transaction.atomic():
        set_db_context(
            tenant_id=business.owner.tenant_id, user_id=business.owner.user.pk, role="owner"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT table_name, column_name FROM information_schema.columns"
                " WHERE table_schema = 'public'"
                " AND data_type IN ('text', 'character varying', 'jsonb', 'ARRAY')"
            )
            columns = cursor.fetchall()
        for table, column in columns:
            for needle in needles:
                try:
                    with transaction.atomic(), connection.cursor() as cursor:
                        cursor.execute(
                            f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE %s',  # noqa: S608
                            [f"%{needle}%"],
                        )
                        count = cursor.fetchone()[0]
                except ProgrammingError:
                    break  # a table the app role may not read at all
                if count:
                    found.setdefault(needle, []).append(f"{table}.{column}")
    return found


def decrypted_values(business: Business) -> list[str]:
    """Every sealed value of the business, opened, as its owner reads them."""
    act(business.owner)
    values: list[str] = []
    for client in Client.objects.filter(tenant_id=business.owner.tenant_id):
        values += [client.email, client.phone, client.address, client.notes]
    for home in HomeAccess.objects.filter(tenant_id=business.owner.tenant_id):
        values += [home.instructions, home.door_code, home.alarm_code]
    for visit in Visit.objects.filter(tenant_id=business.owner.tenant_id):
        values += [visit.request_note, visit.report]
    return values


def add_report(business: Business) -> None:
    act(business.owner)
    visit = Visit.objects.get(pk=business.visit.pk)
    visit.report = "Miso ate well; Alpha Client's spare key returned"
    visit.request_note = "Call +1 555 0100 first"
    visit.save(update_fields=["report", "request_note"])


def test_a_client_asks_and_the_managers_are_told_without_customer_data(
    matrix: TenantMatrix,
) -> None:
    a = matrix.a
    portal = logged_in(a.client_login)
    page = portal.get("/app/portal/")
    assert "Ask for my data to be erased" in text(page)
    mail.outbox.clear()
    done = portal.post("/app/portal/erasure/")
    assert done.status_code == 302 and done["Location"] == "/app/portal/"
    act(a.owner)
    [request] = ErasureRequest.objects.filter(client=a.client)
    assert request.erased_at is None
    # One notice, to the owner and the manager, naming the business and a link, no client.
    [notice] = mail.outbox
    assert sorted(notice.to) == sorted([a.owner.user.email, a.manager.user.email])
    assert f"/app/clients/{a.client.pk}/" in notice.body
    for secret in personal_data(a):
        assert secret not in notice.body and secret not in notice.subject
    # Asked twice: still one request, one notice.
    portal.post("/app/portal/erasure/")
    act(a.owner)
    assert ErasureRequest.objects.filter(client=a.client).count() == 1
    assert len(mail.outbox) == 1
    assert "Your request of" in text(portal.get("/app/portal/"))
    # The record's page and the client list tell the managers; staff see nothing of it.
    assert "asked on" in text(logged_in(a.manager).get(f"/app/clients/{a.client.pk}/"))
    listing = logged_in(a.owner).get("/app/clients/").content.decode()
    assert f"/app/clients/{a.client.pk}/erase/" in listing
    assert "/erase/" not in logged_in(a.staff).get("/app/clients/").content.decode()
    [event] = [e for e in chain_events(a.owner) if e["action"] == "client.erasure_request"]
    assert event["client_id"] == a.client.pk and event["actor_role"] == "client"


def test_a_manager_erases_on_request_and_nothing_personal_is_left(matrix: TenantMatrix) -> None:
    a, b = matrix.a, matrix.b
    add_report(a)
    needles = personal_data(a)
    # The searches find the data while it is there (so their silence afterwards means something).
    assert set(text_rows_holding(needles, a)) >= {a.client.name, a.client_login.user.email}
    opened = " ".join(decrypted_values(a))
    assert "4711" in opened and "Miso" in opened and "555 0100" in opened
    act(a.client_login)
    do_request_erasure(actor=a.client_login)
    act(a.owner)
    visits_before = Visit.objects.filter(client=a.client).count()
    before_b = snapshot(matrix)["b"]
    login = a.client_login.user.pk

    browser = logged_in(a.manager)
    assert browser.get(f"/app/clients/{a.client.pk}/erase/").status_code == 200
    done = browser.post(f"/app/clients/{a.client.pk}/erase/")
    assert done.status_code == 302, text(done)[:300]

    # Short codes (door and alarm) are searched among the opened values only: four digits turn
    # up by chance in the hex of hashes and request ids that text columns hold.
    assert text_rows_holding([n for n in needles if len(n) >= 7 or not n.isdigit()], a) == {}
    opened = decrypted_values(a)
    for needle in needles:
        assert not any(needle.lower() in value.lower() for value in opened), needle
    act(a.owner)
    client = Client.objects.get(pk=a.client.pk)
    assert client.name == ERASED_NAME and client.erased_at is not None
    assert client.email == client.phone == client.address == client.notes == ""
    assert client.email_search is None and client.phone_search is None
    # Visits stay, anonymous, for the statistics.
    assert Visit.objects.filter(client=a.client).count() == visits_before == 1
    # The portal login is detached, and with no business left it holds nothing of the person.
    assert not Membership.objects.filter(client=a.client).exists()
    user = User.objects.get(pk=login)
    assert not user.is_active and user.email.endswith("@erased.invalid") and user.full_name == ""
    assert not user.has_usable_password()
    # The request is completed; the erasure is one audit event with ids and counts.
    assert ErasureRequest.objects.get(client=a.client).erased_by_id == a.manager.membership.pk
    event = chain_events(a.owner)[-1]
    assert event["action"] == "client.erase" and event["client_id"] == a.client.pk
    assert json.loads(event["detail"])["visits_kept"] == 1
    # Nothing in the whole trail names the client.
    trail = json.dumps(chain_events(a.owner), default=str)
    for needle in needles:
        assert needle not in trail, needle
    # The other business is untouched.
    assert snapshot(matrix)["b"] == before_b
    act(b.owner)
    assert Client.objects.get(pk=b.client.pk).email == b.client.email
    # A second erasure is refused plainly.
    act(a.owner)
    with pytest.raises(ValidationError):
        do_erase_client(Client.objects.get(pk=a.client.pk), actor=a.owner)


def test_an_owner_erases_without_a_request_and_a_login_with_another_business_stays(
    matrix: TenantMatrix,
) -> None:
    from custodia.core.permissions import Role
    from tests.factories import add_member

    a, b = matrix.a, matrix.b
    # The client's login also works for Bravo (as staff there).
    add_member(b.owner, a.client_login.user, Role.STAFF)
    act(a.owner)
    do_erase_client(Client.objects.get(pk=a.client.pk), actor=a.owner)
    user = User.objects.get(pk=a.client_login.user.pk)
    assert user.is_active and user.email == a.client_login.user.email
    act(a.owner)
    assert not Membership.objects.filter(client=a.client).exists()
    assert json.loads(chain_events(a.owner)[-1]["detail"])["requests_completed"] == 0


def client_of(actor: Actor, client_id: Any) -> Client:
    act(actor)
    return Client.objects.get(pk=client_id)


@pytest.mark.parametrize("role", ["staff", "other_staff", "client_login"])
def test_staff_and_the_client_themself_cannot_erase_or_confirm(
    matrix: TenantMatrix, role: str
) -> None:
    a = matrix.a
    act(a.client_login)
    do_request_erasure(actor=a.client_login)
    client = client_of(a.owner, a.client.pk)
    member = getattr(a, role)
    before = snapshot(matrix)
    act(member)
    with pytest.raises(PermissionDenied):
        do_erase_client(client, actor=member)
    browser = logged_in(member)
    assert browser.get(f"/app/clients/{a.client.pk}/erase/").status_code == 403
    assert browser.post(f"/app/clients/{a.client.pk}/erase/").status_code == 403
    assert snapshot(matrix) == before
    act(a.owner)
    assert ErasureRequest.objects.get(client=a.client).erased_at is None


def test_another_business_owner_gets_404_and_nothing_changes(matrix: TenantMatrix) -> None:
    a, b = matrix.a, matrix.b
    client = client_of(a.owner, a.client.pk)
    before = snapshot(matrix)
    act(b.owner)
    with pytest.raises(Http404):
        do_erase_client(client, actor=b.owner)
    browser = logged_in(b.owner)
    assert browser.get(f"/app/clients/{a.client.pk}/erase/").status_code == 404
    assert browser.post(f"/app/clients/{a.client.pk}/erase/").status_code == 404
    assert snapshot(matrix) == before


def test_a_token_or_a_stale_step_up_cannot_erase(matrix: TenantMatrix) -> None:
    a = matrix.a
    client = client_of(a.owner, a.client.pk)
    before = snapshot(matrix)
    token_actor = Actor(a.manager.user, a.manager.membership)  # what a bearer token makes
    act(token_actor)
    with pytest.raises(StepUpRequired):
        do_erase_client(client, actor=token_actor)
    act(a.manager)
    with pytest.raises(StepUpRequired):
        do_erase_client(client, actor=stale(a.manager))
    browser = logged_in(a.manager)
    age_session(browser, 3600)
    answer = browser.post(f"/app/clients/{a.client.pk}/erase/")
    assert answer.status_code == 302 and "/step-up/" in answer["Location"]
    assert snapshot(matrix) == before


def test_only_a_client_may_ask_and_only_for_themself(matrix: TenantMatrix) -> None:
    a = matrix.a
    for member in (a.owner, a.manager, a.staff):
        act(member)
        with pytest.raises(PermissionDenied):
            do_request_erasure(actor=member)
        assert logged_in(member).post("/app/portal/erasure/").status_code == 403
    act(a.owner)
    assert not ErasureRequest.objects.exists()
