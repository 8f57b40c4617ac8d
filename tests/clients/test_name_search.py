"""Search by any word of a name (clients_clientnamepart, clients/0008): what it finds, who sees
what, how the table follows the clients, and that the lookup stays an index condition under
row-level security at a size where the planner chooses freely."""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from custodia.clients.access import NAME_TOO_SHORT, list_clients
from custodia.clients.actions import do_create_client, do_delete_client, do_update_client
from custodia.clients.models import NAME_SEPARATORS, Client, ClientNamePart, name_key, name_parts
from custodia.core.actor import Actor
from custodia.lifecycle.erasure import ERASED_NAME, do_erase_client
from tests.acting import act
from tests.factories import TenantMatrix
from tests.web.support import logged_in, text

pytestmark = pytest.mark.django_db

MIGRATION = importlib.import_module("custodia.clients.migrations.0008_nameparts")

NAMES = (
    "Ashley Leeds",
    "Kim Lee",
    "Ashleigh Smith",
    "Mary-Jane O'Neil",
    "Zoë  D\u2019Arcy (Zed)",
    "Anne-Lee Brown",
    "lee",
    "X",
)


def fetch(query: str, params: Any = ()) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return list(cursor.fetchall())


def names(actor: Actor, query: str) -> set[str]:
    return {client.name for client in list_clients(actor, query=query)}


@pytest.fixture
def named(matrix: TenantMatrix) -> dict[str, Client]:
    """The NAMES in business A, and "Kim Lee" in B too."""
    act(matrix.a.owner)
    made = {name: do_create_client(actor=matrix.a.owner, name=name) for name in NAMES}
    act(matrix.b.owner)
    do_create_client(actor=matrix.b.owner, name="Kim Lee")
    return made


def test_the_database_cuts_names_as_the_reference_does(db: None) -> None:
    assert MIGRATION.NAME_SEPARATORS == NAME_SEPARATORS
    for name in (*NAMES, "", "a", "-", "a  b", "'quoted' name", "x-", "-x", "o'", "1 2 3"):
        key = name_key(name)
        cut = {row[0] for row in fetch("SELECT custodia_name_parts(%s)", [key])}
        assert cut == name_parts(key), name
    assert name_parts("ashley o'neil-leeds") == {
        "ashley o'neil-leeds",
        "o'neil-leeds",
        "neil-leeds",
        "leeds",
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Lee", {"Ashley Leeds", "Kim Lee", "Anne-Lee Brown", "lee"}),
        ("LEEDS", {"Ashley Leeds"}),
        ("ashl", {"Ashley Leeds", "Ashleigh Smith"}),
        ("ley", set()),  # inside a word: not a word's beginning
        ("kim l", {"Kim Lee"}),
        ("  kim   lee ", {"Kim Lee"}),
        ("jane", {"Mary-Jane O'Neil"}),
        ("neil", {"Mary-Jane O'Neil"}),
        ("o'ne", {"Mary-Jane O'Neil"}),
        ("jane o'", {"Mary-Jane O'Neil"}),
        ("arcy", {"Zoë  D\u2019Arcy (Zed)"}),
        ("zed)", {"Zoë  D\u2019Arcy (Zed)"}),
        ("zoë d", {"Zoë  D\u2019Arcy (Zed)"}),
        ("brown", {"Anne-Lee Brown"}),
        ("%e", set()),
        ("l_e", set()),
    ],
)
def test_any_word_of_the_name_finds_it(
    matrix: TenantMatrix, named: dict[str, Client], query: str, expected: set[str]
) -> None:
    act(matrix.a.owner)
    assert names(matrix.a.owner, query) == expected


def test_each_client_once_in_name_order_and_paged(
    matrix: TenantMatrix, named: dict[str, Client]
) -> None:
    owner = matrix.a.owner
    act(owner)
    # "Lee Lee": two parts start with "lee"; the client is listed once.
    do_create_client(actor=owner, name="Lee Lee")
    found = [client.name for client in list_clients(owner, query="lee")]
    assert found == ["Anne-Lee Brown", "Ashley Leeds", "Kim Lee", "lee", "Lee Lee"]


@pytest.mark.parametrize("query", ["a", " l ", "%", "é"])
def test_one_character_is_refused_with_a_message(matrix: TenantMatrix, query: str) -> None:
    act(matrix.a.owner)
    with pytest.raises(ValidationError) as refused:
        list_clients(matrix.a.owner, query=query)
    assert refused.value.message_dict == {"q": [NAME_TOO_SHORT]}


def test_staff_and_clients_find_only_what_they_may_see(
    matrix: TenantMatrix, named: dict[str, Client]
) -> None:
    a = matrix.a
    act(a.owner)
    do_update_client(a.client, actor=a.owner, name="Robin Leeward")
    do_update_client(a.other_client, actor=a.owner, name="Robin Lee")
    act(a.staff)  # assigned to a.client only
    assert names(a.staff, "lee") == {"Robin Leeward"}
    assert names(a.staff, "robin") == {"Robin Leeward"}
    act(a.other_staff)  # assigned to nobody
    assert names(a.other_staff, "lee") == set()
    act(a.client_login)
    assert names(a.client_login, "robin") == {"Robin Leeward"}
    # The parts themselves, under RLS: staff read those of their own clients only.
    for actor, expected in (
        (a.staff, {a.client.pk}),
        (a.other_staff, set()),
        (a.client_login, {a.client.pk}),
    ):
        act(actor)
        seen = {row[0] for row in fetch("SELECT client_id FROM clients_clientnamepart")}
        assert seen == expected, actor.role
    act(matrix.b.owner)
    seen = {row[0] for row in fetch("SELECT client_id FROM clients_clientnamepart")}
    assert seen and not seen & ({client.pk for client in named.values()} | {a.client.pk})
    # Another business's owner finds its own "Kim Lee", never A's.
    act(matrix.b.owner)
    found = list(list_clients(matrix.b.owner, query="kim"))
    assert [c.tenant_id for c in found] == [matrix.b.owner.tenant_id]


def parts_of(client: Client) -> set[str]:
    return set(ClientNamePart.objects.filter(client=client).values_list("part", flat=True))


def test_the_parts_follow_the_client(matrix: TenantMatrix) -> None:
    owner = matrix.a.owner
    act(owner)
    client = do_create_client(actor=owner, name="Kim Lee")
    assert parts_of(client) == {"kim lee", "lee"}
    do_update_client(client, actor=owner, email="kim@example.test")
    assert parts_of(client) == {"kim lee", "lee"}
    do_update_client(client, actor=owner, name="Kim Park-Lee")
    assert parts_of(client) == {"kim park-lee", "park-lee", "lee"}
    assert names(owner, "park") == {"Kim Park-Lee"}
    assert names(owner, "kim lee") == set()
    # Erasure renames the record: nothing of the old name stays searchable.
    do_erase_client(client, actor=owner)
    assert parts_of(client) == name_parts(name_key(ERASED_NAME))
    assert names(owner, "park") == set() and names(owner, "lee") == set()
    doomed = do_create_client(actor=owner, name="Sam Doe")
    do_delete_client(doomed, actor=owner)
    assert fetch(
        "SELECT count(*) FROM clients_clientnamepart WHERE client_id = %s", [doomed.pk]
    ) == [(0,)]


def test_the_web_search_finds_any_word_and_explains_a_short_query(
    matrix: TenantMatrix, named: dict[str, Client]
) -> None:
    browser = logged_in(matrix.a.manager)
    found = browser.get("/app/clients/", {"q": "Lee"})
    assert found.status_code == 200
    for name in ("Ashley Leeds", "Kim Lee", "Anne-Lee Brown"):
        assert name in text(found)
    assert "Ashleigh Smith" not in text(found)
    short = browser.get("/app/clients/", {"q": "L"})
    assert short.status_code == 400
    assert NAME_TOO_SHORT in text(short)
    # No search ran: the unsearched first page is shown under the message.
    assert "Ashleigh Smith" in text(short)


# --- The plan at a size where the planner chooses freely --------------------------------------

SEALED = b"\x01" + bytes(32)


def _bulk_clients(actor: Actor, how_many: int, tag: str) -> None:
    """Rows for the planner only (the insert trigger cuts their parts), never read back: the
    sealed columns hold a placeholder."""
    act(actor)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO clients_client (id, tenant_id, name, email, phone, address, notes,"
            " name_search, email_search, phone_search, created_at, updated_at)"
            " SELECT gen_random_uuid(), %s, n, %s, %s, %s, %s, lower(n), NULL, NULL, now(), now()"
            " FROM (SELECT %s || ' ' || (ARRAY['Lee','Smith','Park','Okafor','Novak'])[1 + g %% 5]"
            "   || ' ' || g AS n FROM generate_series(1, %s) AS g) AS names",
            [actor.tenant_id, SEALED, SEALED, SEALED, SEALED, tag, how_many],
        )


def _explain(queryset: Any) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def _index_leads_with_tenant(index: str) -> bool:
    rows = fetch(
        "SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
        " WHERE c.relname = %s",
        [index],
    )
    return rows == [("tenant_id",)]


def test_name_search_at_the_benchs_size_stays_index_backed(matrix: TenantMatrix) -> None:
    """As the app role (custodia_app, RLS forced), with many more rows in another business:
    the parts are found through an index that leads with tenant_id, with tenant_id as an index
    condition, and when that index is the parts' own (tenant_id, part) index the part's range is
    an index condition too, not a filter; the whole search scans neither table.

    The app role may not ANALYZE, and these rows are never committed, so the planner sees the
    statistics of whatever the session committed before: a business it has no statistics for
    looks like one row, and then the (tenant_id, client_id) index costs the same and may be
    chosen (CI saw it). Which of the two is used is therefore not asserted here; `make bench`
    scenario 2 records the real plans at 200,000 clients among 2,000,000 after an ANALYZE, and
    tests/clients/test_search_plan.py checks that the range's operators are leakproof, which is
    what lets it be an index condition under RLS."""
    _bulk_clients(matrix.b.owner, 20000, "Bravo")
    _bulk_clients(matrix.a.owner, 2000, "Alpha")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        assert cursor.fetchone() == ("custodia_app", False)
    for actor in (matrix.a.owner, matrix.a.manager, matrix.a.staff):
        act(actor)
        for query in ("lee", "okafor 12", "Alpha Novak 1"):
            parts = ClientNamePart.objects.filter(
                tenant_id=actor.tenant_id, part__prefix=name_key(query)
            ).values("client_id")
            plan = _explain(parts)
            scan = re.search(
                r"Index (?:Only )?Scan using (\w+) on clients_clientnamepart"
                r".*\n\s+Index Cond: \((.*)\)",
                plan,
            )
            assert scan, plan
            index, condition = scan[1], scan[2]
            assert _index_leads_with_tenant(index), plan
            assert "tenant_id = " in condition, plan
            if index == "clientnamepart_tenant_part":
                assert "part ~>=~ " in condition and "part ~<~ " in condition, plan
            whole = _explain(list_clients(actor, query=query)[:51])
            for table in ("clients_client", "clients_clientnamepart"):
                assert f"Seq Scan on {table} " not in whole, whole
            used = re.findall(r"Index (?:Only )?Scan using (\w+) on clients_clientnamepart", whole)
            assert used and all(_index_leads_with_tenant(index) for index in used), whole
    act(matrix.a.owner)
    found = [client.name for client in list_clients(matrix.a.owner, query="okafor 12")]
    assert found and all(re.fullmatch(r"Alpha Okafor 12\d*", name) for name in found), found
