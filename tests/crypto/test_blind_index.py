"""Search over encrypted email and phone: blind indexes find exactly the right rows, case and
formatting aside, and never a row of another business holding the very same email or phone."""

from __future__ import annotations

from typing import Any

import pytest

from custodia.clients.access import list_clients
from custodia.clients.actions import do_assign_staff, do_create_client
from custodia.clients.models import Client
from custodia.core.actor import Actor
from custodia.core.permissions import Permission
from tests.acting import act
from tests.crypto.support import stored
from tests.factories import Business, TenantMatrix

pytestmark = pytest.mark.django_db

EMAIL = "Shared.Person@Example.test"
PHONE = "+1 (555) 010-7788"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def twin(business: Business, name: str, **fields: str) -> Client:
    act(business.owner)
    return do_create_client(actor=business.owner, name=name, **fields)


@pytest.fixture
def twins(matrix: TenantMatrix) -> dict[str, Client]:
    """The same email and phone in both businesses, plus near misses in Alpha."""
    return {
        "a": twin(matrix.a, "Twin Alpha", email=EMAIL, phone=PHONE),
        "a.lower": twin(matrix.a, "Twin Alpha Again", email=EMAIL.lower(), phone="15550107788"),
        "a.near": twin(matrix.a, "Near Miss", email="shared.person@example.tes", phone="555 0107"),
        "b": twin(matrix.b, "Twin Bravo", email=EMAIL, phone=PHONE),
    }


def found(actor: Actor, query: str) -> set[Any]:
    act(actor)
    return {client.pk for client in list_clients(actor, query=query)}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (EMAIL, {"a", "a.lower"}),
        ("  shared.person@EXAMPLE.TEST  ", {"a", "a.lower"}),
        ("shared.person@example.tes", {"a.near"}),
        ("person@example.test", set()),  # equality only, no substring
        (PHONE, {"a", "a.lower"}),
        ("1-555-010-7788", {"a", "a.lower"}),
        ("+1 555.010.7788", {"a", "a.lower"}),
        ("555 010 7788", set()),  # other digits: not a suffix match
        ("5550107", {"a.near"}),
        ("twin", {"a", "a.lower"}),
        ("Twin Alpha a", {"a.lower"}),
    ],
)
def test_owner_finds_exactly_the_matching_clients_of_their_business(
    matrix: TenantMatrix, twins: dict[str, Client], query: str, expected: set[str]
) -> None:
    assert found(matrix.a.owner, query) == {twins[key].pk for key in expected}


def test_the_other_business_finds_only_its_own_twin(
    matrix: TenantMatrix, twins: dict[str, Client]
) -> None:
    for query in (EMAIL, EMAIL.upper(), PHONE, "15550107788", "twin"):
        assert found(matrix.b.owner, query) == {twins["b"].pk}, query
        assert twins["b"].pk not in found(matrix.a.owner, query), query


def test_staff_find_only_their_assigned_clients(
    matrix: TenantMatrix, twins: dict[str, Client]
) -> None:
    a = matrix.a
    assert found(a.staff, EMAIL) == set()
    assert found(a.staff, PHONE) == set()
    act(a.owner)
    do_assign_staff(twins["a"], a.staff.membership, actor=a.owner)
    assert found(a.staff, EMAIL) == {twins["a"].pk}
    assert found(a.staff, PHONE) == {twins["a"].pk}
    assert found(a.other_staff, EMAIL) == set()
    assert found(a.client_login, EMAIL) == set()
    assert found(a.client_login, "client@alpha.test") == {a.client.pk}


def test_the_same_email_has_a_different_index_in_each_business(
    matrix: TenantMatrix, twins: dict[str, Client]
) -> None:
    a_email = stored(matrix.a.owner, "clients_client", "email_search", twins["a"].pk)
    a_lower = stored(matrix.a.owner, "clients_client", "email_search", twins["a.lower"].pk)
    b_email = stored(matrix.b.owner, "clients_client", "email_search", twins["b"].pk)
    assert len(a_email) == len(b_email) == 16
    assert a_email == a_lower  # case aside, the same email within a business
    assert a_email != b_email
    a_phone = stored(matrix.a.owner, "clients_client", "phone_search", twins["a"].pk)
    b_phone = stored(matrix.b.owner, "clients_client", "phone_search", twins["b"].pk)
    assert a_phone != b_phone
    assert b"15550107788" not in a_phone and b"shared" not in a_email.lower()


def test_cleared_email_leaves_no_index(matrix: TenantMatrix) -> None:
    client = twin(matrix.a, "No Contact")
    act(matrix.a.owner)
    row = Client.objects.values("email_search", "phone_search").get(pk=client.pk)
    assert row == {"email_search": None, "phone_search": None}


def caller_for(actor: Actor, api_as: Any, web_as: Any) -> Any:
    """A bearer-token client, or a session one for a role that has no tokens."""
    return api_as(actor) if actor.can(Permission.TOKENS_CREATE) else web_as(actor)


def api_found(caller: Any, query: str) -> set[str]:
    response = caller.get("/api/v1/clients", {"q": query})
    assert response.status_code == 200, response.content
    return {item["id"] for item in response.json()["items"]}


def test_the_api_searches_through_the_blind_index(
    matrix: TenantMatrix, twins: dict[str, Client], api_as: Any, web_as: Any
) -> None:
    a, b = matrix.a, matrix.b
    expected = {str(twins["a"].pk), str(twins["a.lower"].pk)}
    alpha = caller_for(a.owner, api_as, web_as)
    assert api_found(alpha, " SHARED.person@example.test ") == expected
    assert api_found(alpha, "(1) 555-010-7788") == expected
    bravo = caller_for(b.owner, api_as, web_as)
    assert api_found(bravo, EMAIL.lower()) == {str(twins["b"].pk)}
    assert api_found(bravo, "1 555 010 7788") == {str(twins["b"].pk)}
    staff = caller_for(a.staff, api_as, web_as)
    assert api_found(staff, EMAIL) == set()
    assert api_found(staff, "client@alpha.test") == {str(a.client.pk)}
    response = alpha.get("/api/v1/clients", {"q": EMAIL})
    body = response.json()["items"]
    assert {item["email"] for item in body} == {EMAIL, EMAIL.lower()}  # opened for the reader
