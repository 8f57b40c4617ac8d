"""How the cache sits in a request: outside its transaction (a rolled-back request keeps its
counts, and holds no cache row locked while it runs), one statement per operation, in a table
the app role can use but not change."""

from __future__ import annotations

import collections
from typing import Any

import pytest
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from custodia.accounts.adapter import AccountAdapter
from custodia.cache.backend import PostgresCache
from tests.conftest import HttpsClient
from tests.factories import PASSWORD, UserFactory


@pytest.fixture(autouse=True)
def own_hash_slots(settings: Any, tmp_path: Any) -> None:
    """This process's own hashing slots: other test runs on the machine share var/run's."""
    settings.PASSWORD_HASH_SLOT_DIR = tmp_path / "hash-slots"


def login(client: HttpsClient, email: str, password: str) -> Any:
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(reverse("account_login"), {"login": email, "password": password})


@pytest.mark.usefixtures("cache_backend")
def test_a_cache_write_survives_the_rollback_of_the_transaction_around_it(db):
    with pytest.raises(RuntimeError), transaction.atomic():
        cache.set("counted", [1.0], 60)
        assert cache.add("lock", True, 60)
        raise RuntimeError("the request failed")
    assert cache.get("counted") == [1.0]
    assert not cache.add("lock", True, 60)


@pytest.mark.usefixtures("cache_backend")
def test_sign_ins_answered_with_a_500_still_count_against_the_address(db, settings, monkeypatch):
    """A request that fails after its password check is rolled back (TenantMiddleware): its
    rate-limit count must not be, or a way to make sign-ins fail would be unlimited guesses.
    (With Django's DatabaseCache the count was written inside that transaction and lost.)"""
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login": "2/m/ip"}
    original = AccountAdapter.authentication_failed

    def fail_loudly(self: AccountAdapter, request: Any, **credentials: Any) -> None:
        original(self, request, **credentials)
        raise RuntimeError("something broke after the password check")

    monkeypatch.setattr(AccountAdapter, "authentication_failed", fail_loudly)
    user = UserFactory()
    guesser = HttpsClient(raise_request_exception=False)
    for guess in ("first wrong guess", "second wrong guess"):
        assert login(guesser, user.email, guess).status_code == 500
    assert login(guesser, user.email, "third wrong guess").status_code == 429


def test_a_sign_in_runs_no_cache_statement_on_the_request_connection(db):
    """The request's own connection never touches the cache table, and every cache operation is
    a single statement: a password sign-in with the default rate limits costs 20 (allauth's
    lock, read, write and unlock for each of "login" and the two "login_failed_address" rates,
    and again to take the latter two back once the password proves right), where Django's
    DatabaseCache ran 40 statements and their savepoints inside the request's transaction."""
    statements: collections.Counter[str] = collections.Counter()
    original = PostgresCache._run

    def counted(self: PostgresCache, name: str, params: Any) -> Any:
        statements[name] += 1
        return original(self, name, params)

    user = UserFactory()
    client = HttpsClient()
    client.get(reverse("account_login"))
    with pytest.MonkeyPatch.context() as patch, CaptureQueriesContext(connection) as request_sql:
        patch.setattr(PostgresCache, "_run", counted)
        assert login(client, user.email, PASSWORD).status_code == 302
    assert not [q for q in request_sql.captured_queries if "cache" in q["sql"]]
    assert sum(statements.values()) <= 20, statements
    assert statements["add"] == statements["delete"] == statements["get"] == statements["set"]


# --- The table ------------------------------------------------------------------------------------


def fetch(sql: str) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def test_the_table_is_unlogged_and_djangos_cache_table_is_gone(db):
    assert fetch(
        "SELECT relpersistence, relrowsecurity FROM pg_class WHERE relname = 'custodia_cache_entry'"
    ) == [("u", False)]
    assert fetch("SELECT to_regclass('custodia_cache')") == [(None,)]


@pytest.mark.parametrize(
    "statement",
    [
        "TRUNCATE custodia_cache_entry",
        "DROP TABLE custodia_cache_entry",
        "ALTER TABLE custodia_cache_entry SET LOGGED",
        "ALTER TABLE custodia_cache_entry ADD COLUMN note text",
        "CREATE TRIGGER spy AFTER INSERT ON custodia_cache_entry"
        " FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
    ],
)
def test_the_app_role_can_use_the_table_but_not_change_it(db, statement):
    with (
        pytest.raises(DatabaseError, match="permission denied|must be owner"),
        transaction.atomic(),
    ):
        fetch(statement)


def test_the_app_role_may_only_read_and_write_rows_and_nobody_else_anything(db):
    privileges = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
    held = {
        privilege
        for privilege in privileges
        if fetch(
            f"SELECT has_table_privilege('custodia_app', 'custodia_cache_entry', '{privilege}')"
        )[0][0]
    }
    assert held == {"SELECT", "INSERT", "UPDATE", "DELETE"}
    assert fetch(
        "SELECT count(*) FROM information_schema.role_table_grants"
        " WHERE table_name = 'custodia_cache_entry' AND grantee = 'PUBLIC'"
    ) == [(0,)]
