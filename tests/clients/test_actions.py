"""Client records: validation with clear field errors, deletion, and search that stays in reach."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from custodia.clients.access import (
    access_client_by_id,
    home_access_for,
    list_clients,
    search_problem,
)
from custodia.clients.actions import do_create_client, do_delete_client, do_update_client
from custodia.clients.models import Assignment, Client, HomeAccess
from custodia.core.actor import Actor
from custodia.crypto.keyring import blind_index
from custodia.scheduling.models import Visit
from custodia.tenancy.models import Membership
from custodia.tenancy.reads import Intent
from tests.acting import act
from tests.factories import TenantMatrix

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def rows_of(actor: Actor) -> list[tuple[Any, ...]]:
    act(actor)
    return list(Client.objects.order_by("id").values_list()) + list(
        HomeAccess.objects.order_by("client_id").values_list()
    )


# --- Validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"name": ""}, {"name"}),
        ({"name": "   \n"}, {"name"}),
        ({"name": None}, {"name"}),
        ({}, {"name"}),
        ({"name": "Ann", "email": "not-an-email"}, {"email"}),
        ({"name": "Ann", "email": "ann@"}, {"email"}),
        ({"name": "Ann", "phone": "12-34"}, {"phone"}),
        ({"name": "Ann", "phone": "call me"}, {"phone"}),
        ({"name": "N" * 121}, {"name"}),
        ({"name": "Ann", "phone": "1" * 41}, {"phone"}),
        ({"name": "Ann", "address": "a" * 2001}, {"address"}),
        ({"name": "Ann", "notes": "n" * 10_001}, {"notes"}),
        ({"name": "Ann", "door_code": "1" * 41}, {"door_code"}),
        ({"name": "Ann", "alarm_code": "1" * 41}, {"alarm_code"}),
        ({"name": "Ann", "instructions": "i" * 4001}, {"instructions"}),
        ({"name": "Ann", "tenant_id": "x"}, {"tenant_id"}),
        ({"name": "Ann", "name_search": "zzz"}, {"name_search"}),
        ({"name": "", "email": "bad", "phone": "1"}, {"name", "email", "phone"}),
    ],
)
def test_bad_client_input_gets_field_errors_and_writes_nothing(
    matrix: TenantMatrix, fields: dict[str, Any], errors: set[str]
) -> None:
    owner = matrix.a.owner
    before = rows_of(owner)
    act(owner)
    with pytest.raises(ValidationError) as caught:
        do_create_client(actor=owner, **fields)
    assert set(caught.value.message_dict) == errors
    assert all(caught.value.message_dict[field] for field in errors)
    # The same input as an update of an existing record is refused the same way.
    update = {k: v for k, v in fields.items() if k != "name"} or {"name": ""}
    act(owner)
    with pytest.raises(ValidationError):
        do_update_client(matrix.a.client, actor=owner, **update)
    assert rows_of(owner) == before


def test_limits_are_inclusive_and_input_is_trimmed(matrix: TenantMatrix) -> None:
    owner = matrix.a.owner
    act(owner)
    client = do_create_client(
        actor=owner,
        name="  " + "N" * 120 + "  ",
        email=" Ann@Example.TEST ",
        phone=" +44 (0)20 7946 0958 ",
        door_code="1" * 40,
        notes="n" * 10_000,
    )
    assert client.name == "N" * 120
    assert client.email == "Ann@Example.TEST"
    # The search keys are the business's blind indexes of the normalised values.
    assert client.email_search == blind_index(owner.tenant_id, "email", "ann@example.test")
    assert client.phone_search == blind_index(owner.tenant_id, "phone", "4402079460958")
    assert client.name_search == "n" * 120
    act(owner)
    home = home_access_for(owner, client)
    assert home is not None and home.door_code == "1" * 40


def test_update_changes_only_what_is_given(matrix: TenantMatrix) -> None:
    owner = matrix.a.owner
    act(owner)
    do_update_client(matrix.a.client, actor=owner, name="Renamed  Person", door_code="1234")
    act(owner)
    client = access_client_by_id(owner, matrix.a.client.pk, intent=Intent.SHOW)
    assert (client.name, client.email, client.notes) == (
        "Renamed  Person",
        "client@alpha.test",
        "Cat: Miso",
    )
    assert client.name_search == "renamed person"
    home = home_access_for(owner, client)
    assert home is not None and (home.door_code, home.alarm_code) == ("1234", "0815")


def test_deleting_a_client_takes_everything_of_theirs(matrix: TenantMatrix) -> None:
    a = matrix.a
    act(a.owner)
    do_delete_client(a.client, actor=a.owner)
    act(a.owner)
    assert not Client.objects.filter(name="Alpha Client").exists()
    assert not HomeAccess.objects.filter(client__name="Alpha Client").exists()
    assert not Assignment.objects.filter(staff=a.staff.membership).exists()
    assert not Visit.objects.filter(pk=a.visit.pk).exists()
    assert not Membership.objects.filter(pk=a.client_login.membership.pk).exists()
    # B's namesake data is untouched.
    act(matrix.b.owner)
    assert (
        access_client_by_id(matrix.b.owner, matrix.b.client.pk, intent=Intent.SHOW)
        == matrix.b.client
    )
    assert Visit.objects.filter(pk=matrix.b.visit.pk).exists()


# --- Search ----------------------------------------------------------------------------------


@pytest.fixture
def lookalikes(matrix: TenantMatrix) -> dict[str, Client]:
    """Clients with the same names, emails and phones in both businesses."""
    made = {}
    for key, business in (("a", matrix.a), ("b", matrix.b)):
        act(business.owner)
        made[f"{key}.ann"] = do_create_client(
            actor=business.owner, name="Ann Lee", email="ann@shared.test", phone="+1 202 555 0142"
        )
        made[f"{key}.anna"] = do_create_client(
            actor=business.owner,
            name="Anna  Marie",
            email="anna@shared.test",
            phone="0202-555-0143",
        )
    return made


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ann", {"a.ann", "a.anna"}),
        ("ANN", {"a.ann", "a.anna"}),
        ("  anna   marie ", {"a.anna"}),
        ("Ann L", {"a.ann"}),
        ("nn", set()),  # a word's beginning, not any run of letters inside it
        ("lee", {"a.ann"}),
        ("marie", {"a.anna"}),
        ("ee", set()),
        ("ann@shared.test", {"a.ann"}),
        ("ANN@Shared.TEST", {"a.ann"}),
        ("ann@shared", set()),
        ("@shared.test", set()),
        ("+1 (202) 555-0142", {"a.ann"}),
        ("+1 202 555-0142", {"a.ann"}),
        ("12025550142", {"a.ann"}),
        ("202 555 0142", set()),  # phone search is exact on digits, not a suffix match
        ("02025550143", {"a.anna"}),
    ],
)
def test_search_by_name_prefix_exact_email_and_phone_digits(
    matrix: TenantMatrix, lookalikes: dict[str, Client], query: str, expected: set[str]
) -> None:
    act(matrix.a.owner)
    found = {client.pk for client in list_clients(matrix.a.owner, query=query)}
    assert found == {lookalikes[key].pk for key in expected}


def test_search_stays_inside_what_the_role_sees(
    matrix: TenantMatrix, lookalikes: dict[str, Client]
) -> None:
    a = matrix.a
    act(a.staff)
    assert [c.pk for c in list_clients(a.staff, query="alpha")] == [a.client.pk]
    assert list(list_clients(a.staff, query="ann")) == []
    assert list(list_clients(a.staff, query="client@alpha.test")) == [a.client]
    act(a.client_login)
    assert list(list_clients(a.client_login, query="al")) == [a.client]
    assert list(list_clients(a.client_login, query="ann@shared.test")) == []
    act(a.owner)
    assert list(list_clients(a.owner, query="client@bravo.test")) == []
    assert list(list_clients(a.owner, query="bravo")) == []


ALPHABET = "AaNnLlEe @.+-()0123456789sharedtbvo"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=st.text(alphabet=ALPHABET, max_size=30))
@example(query="a")
@example(query="%")
@example(query="_")
@example(query="\\")
@example(query="' OR ''='")
@example(query="x" * 5000)
def test_no_query_ever_returns_a_row_out_of_reach(
    matrix: TenantMatrix, lookalikes: dict[str, Client], query: str
) -> None:
    for actor, allowed in (
        (matrix.a.owner, None),
        (matrix.a.staff, {matrix.a.client.pk}),
        (matrix.a.client_login, {matrix.a.client.pk}),
        (matrix.a.other_staff, set()),
    ):
        act(actor)
        try:
            found = list(list_clients(actor, query=query))
        except ValidationError:
            assert search_problem(query), query
            continue
        assert all(client.tenant_id == matrix.a.owner.tenant_id for client in found), query
        if allowed is not None:
            assert {client.pk for client in found} <= allowed, query


@pytest.mark.parametrize("query", ["%%", "__", "a%", "%@%", "\\\\", "%e"])
def test_like_wildcards_are_literal(
    matrix: TenantMatrix, lookalikes: dict[str, Client], query: str
) -> None:
    act(matrix.a.owner)
    assert list(list_clients(matrix.a.owner, query=query)) == []
