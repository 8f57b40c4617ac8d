"""Searches stay index conditions under row-level security.

The planner lets a query's condition run ahead of a policy's (and so become an index condition)
only when the condition's operator is leakproof. LIKE is not: a name search with it read every
row of the business. The benchmark (`make bench`, scenario 2) records the real plans on a large
dataset; here, where the app role may not ANALYZE, the tests check the operators themselves.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection

from custodia.clients.access import list_clients
from custodia.clients.actions import do_create_client
from custodia.tenancy.lookups import prefix_upper_bound
from tests.acting import act
from tests.factories import TenantMatrix

pytestmark = pytest.mark.django_db


def operator_is_leakproof(operator: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.proleakproof FROM pg_operator o JOIN pg_proc p ON p.oid = o.oprcode"
            " WHERE o.oprname = %s AND o.oprleft = 'text'::regtype"
            " AND o.oprright = 'text'::regtype",
            [operator],
        )
        row = cursor.fetchone()
    assert row is not None, operator
    return bool(row[0])


@pytest.mark.parametrize(
    ("query", "column", "operator"),
    [
        ("alp", "part", "^@"),
        ("client@alpha.test", "email_search", "="),
        ("+1 202 555 0100", "phone_search", "="),
    ],
)
def test_search_conditions_use_leakproof_operators(
    matrix: TenantMatrix, query: str, column: str, operator: str
) -> None:
    act(matrix.a.owner)
    sql = str(list_clients(matrix.a.owner, query=query).query)
    assert re.search(rf'"{column}"(::text)? {re.escape(operator)} ', sql), sql
    assert " LIKE " not in sql.upper(), sql
    assert operator_is_leakproof(operator)


def test_the_name_prefix_is_a_range_of_leakproof_pattern_operators(matrix: TenantMatrix) -> None:
    act(matrix.a.owner)
    sql = str(list_clients(matrix.a.owner, query="alp").query)
    # A range a prepared statement's generic plan can still serve from the index (the name's
    # word-start parts: tests/clients/test_name_search.py).
    assert '"part" ~>=~ alp AND ' in sql and '"part" ~<~ alq AND ' in sql, sql
    assert all(operator_is_leakproof(operator) for operator in ("~>=~", "~<~", "^@"))


def test_like_is_not_leakproof_which_is_why_prefix_exists() -> None:
    assert not operator_is_leakproof("~~")


@pytest.mark.parametrize(
    ("prefix", "upper"),
    [
        ("alp", "alq"),
        ("z", "{"),
        ("caf\u00e9", "caf\u00ea"),
        ("a\U0010ffff", "b"),
        ("\U0010ffff", None),
        ("x\ud7ff", "x\ue000"),
    ],
)
def test_prefix_upper_bound(prefix: str, upper: str | None) -> None:
    assert prefix_upper_bound(prefix) == upper


def test_prefix_search_with_awkward_last_characters(matrix: TenantMatrix) -> None:
    owner = matrix.a.owner
    act(owner)
    for name in ("Zo\u00eb \U0010ffff", "Zo\u00eb \U0010ffffz", "Zo\u00eb!", "Zo\u00ebz"):
        do_create_client(actor=owner, name=name)
    found = {c.name for c in list_clients(owner, query="zo\u00eb \U0010ffff")}
    assert found == {"Zo\u00eb \U0010ffff", "Zo\u00eb \U0010ffffz"}
    assert len(list(list_clients(owner, query="zo\u00eb"))) == 4


def test_prefix_search_finds_exactly_the_prefixed_names(matrix: TenantMatrix) -> None:
    owner = matrix.a.owner
    act(owner)
    names = {client.name for client in list_clients(owner, query="ALPHA  ")}
    assert names and all(name.lower().startswith("alpha") for name in names)
    # Pattern characters are literal in a prefix: no wildcard matches.
    assert list(list_clients(owner, query="%%")) == []
    assert list(list_clients(owner, query="_lpha")) == []
