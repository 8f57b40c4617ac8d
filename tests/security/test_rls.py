"""Row-level security, proven with raw SQL on the app's own connection (role custodia_app).

Nothing here goes through access.py: these tests show what the database itself refuses when a
query forgets the tenant, names another tenant's rows, or tries to write across the boundary.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import pytest
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from custodia.clients.access import list_clients
from custodia.clients.models import Client
from custodia.core.actor import Actor
from custodia.core.dbcontext import clear, set_db_context
from custodia.core.permissions import Role
from custodia.scheduling.actions import do_create_visit
from tests.acting import act
from tests.factories import TenantMatrix, UserFactory
from tests.security.support import (
    TENANT_TABLES,
    Extras,
    add_extras,
    add_invitation,
    assert_unchanged,
    attempt,
    check_as_at_commit,
    execute,
    fetch,
    fetch_dicts,
    ids,
    scalar,
    snapshot,
)

pytestmark = pytest.mark.django_db

RLS_REFUSAL = "row-level security"


@pytest.fixture
def extras(matrix: TenantMatrix) -> Extras:
    return add_extras(matrix)


def refused(statement: str, params: Any = (), match: str = RLS_REFUSAL, label: str = "") -> str:
    """Run `statement` in a savepoint; it must fail with `match` in the message."""
    error = attempt(lambda: execute(statement, params))
    assert isinstance(error, DatabaseError), f"{label or statement}: not refused ({error!r})"
    message = str(error)
    assert re.search(match, message), f"{label or statement}: {message}"
    return message


def count(table: str, where: str = "TRUE", params: Any = ()) -> int:
    return int(scalar(f"SELECT count(*) FROM {table} WHERE {where}", params))


# A value of the shape an encrypted column accepts (crypto/rows.py, SEALED_CHECK). These tests
# are about who may write which rows, not what the values say: nothing reads it back.
SEALED = b"\x01" + bytes(32)
SEALED_SQL = "decode('01' || repeat('00', 32), 'hex')"


def visit_sql(tenant_id: object, client_id: object, **values: Any) -> tuple[str, list[Any]]:
    """An INSERT into scheduling_visit with sensible defaults (a requested visit tomorrow)."""
    start = timezone.now() + dt.timedelta(days=1)
    row = {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "client_id": client_id,
        "staff_id": None,
        "service_id": None,
        "starts_at": start,
        "ends_at": start + dt.timedelta(hours=1),
        "status": "requested",
        "request_note": SEALED,
        "report": SEALED,
        "created_at": timezone.now(),
        "updated_at": timezone.now(),
        **values,
    }
    columns = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    return f"INSERT INTO scheduling_visit ({columns}) VALUES ({marks})", list(row.values())


def insert_membership_sql(
    tenant_id: object, user_id: object, role: str, client_id: object = None
) -> tuple[str, list[Any]]:
    return (
        "INSERT INTO tenancy_membership (id, tenant_id, user_id, role, client_id, is_active,"
        " created_at) VALUES (%s, %s, %s, %s, %s, true, now())",
        [uuid.uuid4(), tenant_id, user_id, role, client_id],
    )


# --- The role itself -----------------------------------------------------------------------


def test_app_connects_as_a_role_without_privileges(db: None) -> None:
    user, superuser, bypass = fetch(
        "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
    )[0]
    assert user == "custodia_app" == settings.DATABASES["default"]["USER"]
    assert superuser is False
    assert bypass is False
    owned = count("pg_class", "relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)")
    assert owned == 0, "custodia_app must own no table, view, sequence or index"
    assert scalar("SELECT pg_has_role(current_user, 'custodia_owner', 'MEMBER')") is False


@pytest.mark.parametrize(
    "statement",
    [
        "SET ROLE custodia_owner",
        "ALTER TABLE clients_client DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE clients_client NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY clients_client_select ON clients_client",
        "CREATE POLICY open ON clients_client FOR SELECT USING (true)",
        "TRUNCATE clients_client",
        "CREATE TEMP TABLE scratch (x int)",
        "CREATE TABLE public.scratch (x int)",
        "CREATE SCHEMA scratch",
        # Shadowing a policy helper would rewrite every policy: the app may not.
        "CREATE OR REPLACE FUNCTION custodia_role() RETURNS text LANGUAGE sql"
        " AS $$ SELECT 'owner' $$",
        "CREATE FUNCTION public.custodia_tenant(x int) RETURNS int LANGUAGE sql AS $$ SELECT 1 $$",
        "ALTER TABLE scheduling_visit DISABLE TRIGGER scheduling_visit_staff_guard",
    ],
)
def test_app_role_cannot_weaken_the_schema(db: None, statement: str) -> None:
    refused(statement, match="permission denied|must be owner|must be member")


def test_turning_row_security_off_makes_queries_fail_not_leak(matrix: TenantMatrix) -> None:
    act(matrix.a.owner)
    with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
        execute("SET LOCAL row_security = off")
        fetch("SELECT * FROM clients_client")


# --- Every tenant table is guarded -----------------------------------------------------------


def test_every_tenant_table_forces_row_level_security(db: None) -> None:
    guarded = dict(
        fetch(
            "SELECT relname, relforcerowsecurity FROM pg_class WHERE relkind = 'r'"
            " AND relnamespace = 'public'::regnamespace AND relrowsecurity"
        )
    )
    assert set(TENANT_TABLES) <= set(guarded), set(TENANT_TABLES) - set(guarded)
    assert [table for table, forced in guarded.items() if not forced] == []

    # Any table with a tenant_id column is tenant-owned and must be guarded too.
    with_tenant_column = ids(
        "SELECT table_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND column_name = 'tenant_id'"
    )
    assert with_tenant_column - set(guarded) == set()

    nullable = dict(
        fetch(
            "SELECT table_name, is_nullable FROM information_schema.columns"
            " WHERE table_schema = 'public' AND column_name = 'tenant_id'"
        )
    )
    for table in guarded:
        if table == "tenancy_business":
            continue  # its own id is the tenant
        if table == "tenancy_closedbusiness":
            continue  # outlives its business: keyed by business_id, read in its context only
        if table in ("audit_auditevent", "audit_checkpoint"):
            # NULL is the platform chain (sign-ins): its policy lets only the person read theirs
            # (tests/audit/test_rls.py).
            continue
        if table in ("platform_operator", "platform_vulnerabilityreport", "detection_alert"):
            # The platform's own records, of no business: a login reads its own operator row,
            # only an active operator's context reads a report (tests/platform/).
            # detection_alert: NULL is a platform-wide alert; no policy of the app role matches
            # it; only the key-checked functions read or write it (tests/detection/).
            continue
        assert nullable.get(table) == "NO", f"{table}.tenant_id must exist and be NOT NULL"

    policies: dict[str, set[str]] = {}
    for table, command, qual, check, roles in fetch(
        "SELECT tablename, cmd, qual, with_check, roles::text[] FROM pg_policies"
        " WHERE schemaname = 'public'"
    ):
        policies.setdefault(table, set()).add(command)
        if list(roles) == ["custodia_owner"] and (
            table.startswith("audit_")
            or table == "detection_alert"
            or (table, command)
            in {
                ("tenancy_business", "SELECT"),
                ("tenancy_closedbusiness", "SELECT"),
                ("platform_operator", "SELECT"),
            }
        ):
            # The `custodia audit` commands (verify, purge) read and purge every chain, and name
            # them by business, as the owner role; the purge's work list (tenancy/0008) reads the
            # closed businesses' records as it; the platform's checks (who is an operator, an
            # operator is no member: platform/0002) read the operators as it; the detection
            # functions read and write platform alerts as it (detection/0001); the app role
            # never matches these policies.
            continue
        assert (qual or "").strip() != "true" and (check or "").strip() != "true", table
    for table in TENANT_TABLES:
        assert policies.get(table, set()) >= {"SELECT", "INSERT", "UPDATE", "DELETE"} or (
            "ALL" in policies.get(table, set())
        ), f"{table} lacks a policy per command: {policies.get(table)}"


def test_without_settings_every_tenant_table_reads_empty(
    matrix: TenantMatrix, extras: Extras
) -> None:
    for business in (matrix.a, matrix.b):
        act(business.owner)
        for table in TENANT_TABLES:
            assert count(table) > 0, f"{table} has no rows for the test to hide"
    clear()
    for table in TENANT_TABLES:
        assert count(table) == 0, f"{table} is readable without a tenant"
    # Settings that name a tenant that does not exist, or garbage, read nothing either.
    set_db_context(tenant_id=uuid.uuid4(), user_id=uuid.uuid4(), role=Role.OWNER)
    for table in TENANT_TABLES:
        assert count(table) == 0, table
    with pytest.raises(DatabaseError), transaction.atomic():
        set_db_context(tenant_id="not-a-uuid", role=Role.OWNER)
        count("clients_client")


# --- Tenant A cannot reach tenant B ----------------------------------------------------------


def _ids_of_b(matrix: TenantMatrix, extras: Extras) -> dict[str, set[Any]]:
    act(matrix.b.owner)
    found = {
        table: ids(f"SELECT {pk} FROM {table}") for table, (pk, _tenant) in TENANT_TABLES.items()
    }
    found["accounts_apitoken"] = {
        token.pk for key, (token, _plain) in extras.tokens.items() if key.startswith("b.")
    }
    return found


def test_no_role_of_a_reads_any_row_of_b(matrix: TenantMatrix, extras: Extras) -> None:
    of_b = _ids_of_b(matrix, extras)
    a_id = matrix.a.owner.tenant_id
    actors = {
        "owner": matrix.a.owner,
        "manager": matrix.a.manager,
        "staff": matrix.a.staff,
        "other_staff": matrix.a.other_staff,
        "client": matrix.a.client_login,
    }
    for name, actor in actors.items():
        act(actor)
        for table, (pk, tenant_column) in TENANT_TABLES.items():
            assert of_b[table], table
            by_id = count(table, f"{pk} = ANY(%s)", [list(of_b[table])])
            assert by_id == 0, f"A's {name} reads B's {table} by id"
            tenants = ids(f"SELECT DISTINCT {tenant_column} FROM {table}")
            assert tenants <= {a_id}, f"A's {name} reads B's {table} by full scan"


def _copy_row_for_insert(table: str, row: dict[str, Any]) -> tuple[str, list[Any]]:
    pk, _tenant = TENANT_TABLES[table]
    row = dict(row)
    if pk == "id":
        row["id"] = uuid.uuid4()
    for unique in ("prefix", "slug"):
        if unique in row:
            row[unique] = uuid.uuid4().hex[:12]
    columns = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    return f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values())


def test_a_cannot_insert_rows_into_b(matrix: TenantMatrix, extras: Extras) -> None:
    act(matrix.b.owner)
    samples = {table: fetch_dicts(f"SELECT * FROM {table} LIMIT 1")[0] for table in TENANT_TABLES}
    before = snapshot(matrix)
    for actor in (matrix.a.owner, matrix.a.manager):
        for table, sample in samples.items():
            act(actor)
            statement, params = _copy_row_for_insert(table, sample)
            refused(statement, params)
    assert_unchanged(matrix, before, "inserting B's tenant_id from A")


def test_a_cannot_update_or_delete_rows_of_b(matrix: TenantMatrix, extras: Extras) -> None:
    b_id = matrix.b.owner.tenant_id
    before = snapshot(matrix)
    act(matrix.a.owner)
    for table, (_pk, tenant_column) in TENANT_TABLES.items():
        changed = execute(
            f"UPDATE {table} SET {tenant_column} = {tenant_column} WHERE {tenant_column} = %s",
            [b_id],
        )
        assert changed == 0, f"A updated B's {table}"
        assert execute(f"DELETE FROM {table} WHERE {tenant_column} = %s", [b_id]) == 0, table
        not_a = [matrix.a.owner.tenant_id]
        assert execute(f"DELETE FROM {table} WHERE {tenant_column} <> %s", not_a) == 0
    assert_unchanged(matrix, before, "updating and deleting B's rows from A")


def test_a_cannot_move_its_rows_into_b(matrix: TenantMatrix, extras: Extras) -> None:
    b_id = matrix.b.owner.tenant_id
    act(matrix.a.owner)
    for table, (pk, tenant_column) in TENANT_TABLES.items():
        own = sorted(ids(f"SELECT {pk} FROM {table}"), key=str)
        assert own, table
        refused(f"UPDATE {table} SET {tenant_column} = %s WHERE {pk} = %s", [b_id, own[0]])


# --- Cross-tenant references -----------------------------------------------------------------


def test_rows_of_a_cannot_point_at_rows_of_b(matrix: TenantMatrix, extras: Extras) -> None:
    """Policies check a row's own tenant_id, and FK checks bypass RLS: composite keys close it."""
    a, b = matrix.a, matrix.b
    act(b.owner)
    bare_b_client = Client.objects.create(tenant_id=b.owner.tenant_id, name="No access row")
    a_id = a.owner.tenant_id
    now = timezone.now()
    act(a.owner)
    cases: dict[str, tuple[str, list[Any]]] = {
        "assignment -> B client": (
            "INSERT INTO clients_assignment (id, tenant_id, client_id, staff_id, created_at)"
            " VALUES (%s, %s, %s, %s, now())",
            [uuid.uuid4(), a_id, b.client.pk, a.staff.membership.pk],
        ),
        "assignment -> B staff": (
            "INSERT INTO clients_assignment (id, tenant_id, client_id, staff_id, created_at)"
            " VALUES (%s, %s, %s, %s, now())",
            [uuid.uuid4(), a_id, a.other_client.pk, b.staff.membership.pk],
        ),
        "assignment assigned_by -> B member": (
            "INSERT INTO clients_assignment (id, tenant_id, client_id, staff_id, assigned_by_id,"
            " created_at) VALUES (%s, %s, %s, %s, %s, now())",
            [
                uuid.uuid4(),
                a_id,
                a.other_client.pk,
                a.other_staff.membership.pk,
                b.owner.membership.pk,
            ],
        ),
        "home access -> B client": (
            "INSERT INTO clients_homeaccess (tenant_id, client_id, instructions, door_code,"
            " alarm_code, updated_at) VALUES (%s, %s, %s, %s, %s, now())",
            [a_id, bare_b_client.pk, SEALED, SEALED, SEALED],
        ),
        "pet -> B client": (
            "INSERT INTO clients_pet (id, tenant_id, client_id, name, species, breed, feeding,"
            " medication, vet_name, vet_phone, notes, created_at, updated_at)"
            " VALUES (%s, %s, %s, 'Rex', '', '', '', %s, %s, %s, %s, now(), now())",
            [uuid.uuid4(), a_id, b.client.pk, SEALED, SEALED, SEALED, SEALED],
        ),
        "household -> B client": (
            "INSERT INTO clients_household (tenant_id, client_id, keys_held, parking, wifi_name,"
            " wifi_password, emergency_contact, updated_at)"
            " VALUES (%s, %s, '', '', %s, %s, %s, now())",
            [a_id, bare_b_client.pk, SEALED, SEALED, SEALED],
        ),
        "visit -> B client": visit_sql(a_id, b.client.pk),
        "visit -> B service": visit_sql(a_id, a.client.pk, service_id=b.service.pk),
        "visit -> B staff": visit_sql(a_id, a.client.pk, staff_id=b.staff.membership.pk),
        "membership -> B client": insert_membership_sql(
            a_id, UserFactory().pk, "client", bare_b_client.pk
        ),
        "invitation -> B client": (
            "INSERT INTO tenancy_invitation (id, tenant_id, email, role, client_id, prefix, digest,"
            " created_at, expires_at)"
            " VALUES (%s, %s, 'x@x.test', 'client', %s, %s, 'd', now(), %s)",
            [
                uuid.uuid4(),
                a_id,
                bare_b_client.pk,
                uuid.uuid4().hex[:12],
                now + dt.timedelta(hours=1),
            ],
        ),
        "invitation invited_by -> B member": (
            "INSERT INTO tenancy_invitation (id, tenant_id, email, role, invited_by_id, prefix,"
            " digest, created_at, expires_at) VALUES (%s, %s, 'x@x.test', 'staff', %s, %s, 'd',"
            " now(), %s)",
            [
                uuid.uuid4(),
                a_id,
                b.owner.membership.pk,
                uuid.uuid4().hex[:12],
                now + dt.timedelta(hours=1),
            ],
        ),
    }
    act(a.owner)
    before = snapshot(matrix)
    wrong = []
    for name, (statement, params) in cases.items():
        act(a.owner)
        error = attempt(lambda statement=statement, params=params: execute(statement, params))
        if not (isinstance(error, IntegrityError) and "same_tenant" in str(error)):
            wrong.append(f"{name}: {error!r}")
    assert wrong == []
    # An API token of A bound to a membership of B (the insert policy trusts the context).
    set_db_context(
        tenant_id=a_id, user_id=a.owner.user.pk, membership_id=b.owner.membership.pk, role="owner"
    )
    with pytest.raises(IntegrityError, match="same_tenant"), transaction.atomic():
        execute(
            "INSERT INTO accounts_apitoken (id, tenant_id, user_id, membership_id, name, prefix,"
            " digest, scopes, created_at, expires_at) VALUES (%s, %s, %s, %s, 't', %s, 'd',"
            " ARRAY['clients:record:read'], now(), %s)",
            [
                uuid.uuid4(),
                a_id,
                a.owner.user.pk,
                b.owner.membership.pk,
                uuid.uuid4().hex[:12],
                now + dt.timedelta(days=1),
            ],
        )
        check_as_at_commit()
    # Re-pointing an existing row is refused the same way.
    act(a.owner)
    with pytest.raises(IntegrityError, match="same_tenant"), transaction.atomic():
        execute(
            "UPDATE scheduling_visit SET service_id = %s WHERE id = %s", [b.service.pk, a.visit.pk]
        )
        check_as_at_commit()
    assert_unchanged(matrix, before, "cross-tenant references")


# --- Staff --------------------------------------------------------------------------------


def test_staff_see_only_assigned_clients_and_their_own_visits(matrix: TenantMatrix) -> None:
    a = matrix.a
    act(a.owner)
    from custodia.clients.actions import do_assign_staff

    do_assign_staff(a.other_client, a.other_staff.membership, actor=a.owner)
    other_visit = do_create_visit(
        actor=a.owner,
        client=a.other_client,
        staff=a.other_staff.membership,
        starts_at=timezone.now() + dt.timedelta(hours=3),
        ends_at=timezone.now() + dt.timedelta(hours=4),
    )

    act(a.staff)
    assert ids("SELECT id FROM clients_client") == {a.client.pk}
    assert ids("SELECT id FROM scheduling_visit") == {a.visit.pk}
    assert ids("SELECT client_id FROM clients_assignment") == {a.client.pk}
    assert ids("SELECT client_id FROM clients_homeaccess") == {a.client.pk}
    assert ids("SELECT role FROM tenancy_membership") == {"owner", "manager", "staff"}
    assert count("tenancy_invitation") == 0

    act(a.other_staff)
    assert ids("SELECT id FROM clients_client") == {a.other_client.pk}
    assert ids("SELECT id FROM scheduling_visit") == {other_visit.pk}
    assert ids("SELECT client_id FROM clients_homeaccess") == {a.other_client.pk}

    # Staff write nothing but their own visits.
    act(a.staff)
    assert execute("UPDATE clients_client SET notes = 'x'") == 0
    assert execute("DELETE FROM clients_assignment") == 0
    assert execute("UPDATE scheduling_visit SET report = 'x' WHERE id = %s", [other_visit.pk]) == 0
    refused(
        *visit_sql(
            a.owner.tenant_id, a.client.pk, status="scheduled", staff_id=a.staff.membership.pk
        )
    )
    refused(
        "INSERT INTO clients_assignment (id, tenant_id, client_id, staff_id, created_at)"
        " VALUES (%s, %s, %s, %s, now())",
        [uuid.uuid4(), a.owner.tenant_id, a.other_client.pk, a.staff.membership.pk],
    )


def test_staff_may_change_only_status_and_report_of_own_visits(matrix: TenantMatrix) -> None:
    a = matrix.a
    act(a.staff)
    assert (
        execute(
            "UPDATE scheduling_visit SET report = %s, status = 'completed' WHERE id = %s",
            [SEALED, a.visit.pk],
        )
        == 1
    )
    # Moving the visit would open the home-access window at will.
    for change in (
        "starts_at = now(), ends_at = now() + interval '1 hour'",
        "ends_at = ends_at + interval '1 hour'",
        f"client_id = '{a.other_client.pk}'",
        f"service_id = NULL, report = {SEALED_SQL}, starts_at = starts_at - interval '1 day'",
        f"request_note = {SEALED_SQL}",
    ):
        refused(
            f"UPDATE scheduling_visit SET {change} WHERE id = %s",  # noqa: S608
            [a.visit.pk],
            match="only the status and report|row-level security",
        )
    # Handing the visit to someone else fails the policy's check.
    refused(
        "UPDATE scheduling_visit SET staff_id = %s WHERE id = %s",
        [a.other_staff.membership.pk, a.visit.pk],
        match="row-level security|only the status and report",
    )
    act(a.manager)
    assert (
        execute(
            "UPDATE scheduling_visit SET starts_at = starts_at + interval '1 hour',"
            " ends_at = ends_at + interval '1 hour' WHERE id = %s",
            [a.visit.pk],
        )
        == 1
    )


# (label, hours from now to the start, visit length in hours, status, visible to staff?)
WINDOW_CASES = [
    ("starts in 2 h", 2, 1, "scheduled", True),
    ("starts in 23 h", 23, 1, "scheduled", True),
    ("starts in 25 h", 25, 1, "scheduled", False),
    ("starts in a week", 24 * 7, 1, "scheduled", False),
    ("in progress", -1, 2, "scheduled", True),
    ("ended 11 h ago", -12, 1, "completed", True),
    ("ended 13 h ago", -14, 1, "completed", False),
    ("ended a week ago", -24 * 7, 1, "completed", False),
    ("cancelled, starts in 2 h", 2, 1, "cancelled", False),
    ("requested, starts in 2 h", 2, 1, "requested", False),
    ("cancelled, in progress", -1, 2, "cancelled", False),
]


def test_staff_see_home_access_only_around_their_visits(matrix: TenantMatrix) -> None:
    a = matrix.a
    wrong: list[str] = []
    for label, start_hours, length_hours, status, visible in WINDOW_CASES:
        act(a.owner)
        execute(
            "UPDATE scheduling_visit SET starts_at = now() + make_interval(hours => %s),"
            " ends_at = now() + make_interval(hours => %s), status = %s WHERE id = %s",
            [start_hours, start_hours + length_hours, status, a.visit.pk],
        )
        act(a.staff)
        rows = fetch("SELECT client_id FROM clients_homeaccess")
        if rows != ([(a.client.pk,)] if visible else []):
            wrong.append(f"{label}: staff read {len(rows)} row(s), expected visible={visible}")
        act(a.other_staff)
        if count("clients_homeaccess"):
            wrong.append(f"{label}: the other staff member sees it")
    assert wrong == []


def test_home_access_window_follows_the_business_setting(matrix: TenantMatrix) -> None:
    a = matrix.a
    act(a.staff)
    assert count("clients_homeaccess") == 1  # the matrix visit starts in 2 h
    act(a.owner)
    assert (
        execute(
            "UPDATE tenancy_business SET access_window_before_hours = 1 WHERE id = %s",
            [a.owner.tenant_id],
        )
        == 1
    )
    act(a.staff)
    assert count("clients_homeaccess") == 0
    # The staff member cannot widen the window themself.
    assert execute("UPDATE tenancy_business SET access_window_before_hours = 168") == 0


def test_home_access_needs_assignment_and_own_visit(matrix: TenantMatrix) -> None:
    a = matrix.a
    act(a.owner)
    # The visit moves to the other staff member, who is not assigned to the client.
    execute(
        "UPDATE scheduling_visit SET staff_id = %s WHERE id = %s",
        [a.other_staff.membership.pk, a.visit.pk],
    )
    act(a.staff)
    assert count("clients_homeaccess") == 0, "assigned, but the visit is someone else's"
    act(a.other_staff)
    assert count("clients_homeaccess") == 0, "own visit, but not assigned"
    act(a.owner)
    execute(
        "UPDATE scheduling_visit SET staff_id = %s WHERE id = %s",
        [a.staff.membership.pk, a.visit.pk],
    )
    execute("DELETE FROM clients_assignment WHERE client_id = %s", [a.client.pk])
    act(a.staff)
    assert count("clients_homeaccess") == 0, "own visit, assignment removed"
    assert count("clients_client") == 0


# --- Clients -------------------------------------------------------------------------------


def test_a_client_login_sees_only_itself(matrix: TenantMatrix) -> None:
    a = matrix.a
    act(a.client_login)
    assert ids("SELECT id FROM clients_client") == {a.client.pk}
    assert ids("SELECT id FROM scheduling_visit") == {a.visit.pk}
    assert count("clients_homeaccess") == 0
    assert count("clients_assignment") == 0
    # Its own login, and the staff member who visits it (to show who comes); no one else.
    assert ids("SELECT id FROM tenancy_membership") == {
        a.client_login.membership.pk,
        a.staff.membership.pk,
    }
    assert count("tenancy_invitation") == 0
    assert execute("UPDATE clients_client SET notes = 'x'") == 0
    assert execute("UPDATE scheduling_visit SET report = 'x'") == 0
    assert execute("DELETE FROM scheduling_visit") == 0


def test_a_client_login_may_only_request_visits_for_itself(matrix: TenantMatrix) -> None:
    a, b = matrix.a, matrix.b
    a_id = a.owner.tenant_id
    act(a.client_login)
    refused(*visit_sql(a_id, a.other_client.pk))
    refused(*visit_sql(a_id, a.client.pk, status="scheduled"))
    refused(*visit_sql(a_id, a.client.pk, status="completed"))
    refused(*visit_sql(a_id, a.client.pk, staff_id=a.staff.membership.pk))
    refused(*visit_sql(b.owner.tenant_id, b.client.pk))
    statement, params = visit_sql(a_id, a.client.pk)
    execute(statement, params)
    visit_id = params[0]
    assert ids("SELECT id FROM scheduling_visit WHERE status = 'requested'") == {visit_id}
    act(a.manager)
    assert count("scheduling_visit", "id = %s", [visit_id]) == 1


# --- Joining a business ----------------------------------------------------------------------


def test_joining_a_business_needs_a_live_invitation_for_exactly_that(
    matrix: TenantMatrix,
) -> None:
    a, b = matrix.a, matrix.b
    a_id, b_id = a.owner.tenant_id, b.owner.tenant_id
    invitee = UserFactory(email="joiner@example.test")
    stranger = UserFactory(email="stranger@example.test")
    staff_inv, _ = add_invitation(a.owner, email=invitee.email, role=Role.STAFF)
    client_inv, _ = add_invitation(
        a.owner, email=invitee.email, role=Role.CLIENT, client=a.other_client
    )
    expired, _ = add_invitation(a.owner, email=invitee.email, expires_in=dt.timedelta(hours=-1))
    revoked, _ = add_invitation(a.owner, email=invitee.email)
    used, _ = add_invitation(a.owner, email=invitee.email)
    other_email, _ = add_invitation(a.owner, email="someone.else@example.test")
    execute("UPDATE tenancy_invitation SET revoked_at = now() WHERE id = %s", [revoked.pk])
    execute("UPDATE tenancy_invitation SET accepted_at = now() WHERE id = %s", [used.pk])
    b_inv, _ = add_invitation(b.owner, email=invitee.email, role=Role.STAFF)

    def as_invitee(prefix: str = "", tenant: object = a_id, user: Any = invitee) -> None:
        set_db_context(tenant_id=tenant, user_id=user.pk, lookup=prefix)

    attempts = {
        "no invitation named": ("", a_id, invitee, "staff", None),
        "role beyond the invitation": (staff_inv.prefix, a_id, invitee, "manager", None),
        "owner on a staff invitation": (staff_inv.prefix, a_id, invitee, "owner", None),
        "client login on a staff invitation": (
            staff_inv.prefix,
            a_id,
            invitee,
            "client",
            a.other_client.pk,
        ),
        "another client record": (client_inv.prefix, a_id, invitee, "client", a.client.pk),
        "expired": (expired.prefix, a_id, invitee, "staff", None),
        "revoked": (revoked.prefix, a_id, invitee, "staff", None),
        "already used": (used.prefix, a_id, invitee, "staff", None),
        "sent to another email": (other_email.prefix, a_id, invitee, "staff", None),
        "someone else's user id": (staff_inv.prefix, a_id, stranger, "staff", None),
        "B's invitation into A": (b_inv.prefix, a_id, invitee, "staff", None),
    }
    for name, (prefix, tenant, user, role, client_id) in attempts.items():
        as_invitee(prefix, tenant, invitee)
        statement, params = insert_membership_sql(tenant, user.pk, role, client_id)
        refused(statement, params, label=name)
    # A membership row naming the invitee but in the other tenant than the context: refused.
    as_invitee(b_inv.prefix, a_id)
    refused(*insert_membership_sql(b_id, invitee.pk, "staff"))

    # The invitee may only mark the invitation accepted, not change what it grants.
    as_invitee(staff_inv.prefix)
    refused("UPDATE tenancy_invitation SET role = 'owner' WHERE prefix = %s", [staff_inv.prefix])
    refused(
        "UPDATE tenancy_invitation SET expires_at = now() + interval '1 year' WHERE prefix = %s",
        [staff_inv.prefix],
    )
    as_invitee(revoked.prefix)
    assert (
        execute(
            "UPDATE tenancy_invitation SET revoked_at = NULL WHERE prefix = %s", [revoked.prefix]
        )
        == 0
    )

    # With exactly the right invitation it works, once.
    as_invitee(staff_inv.prefix)
    execute(*insert_membership_sql(a_id, invitee.pk, "staff"))
    assert (
        execute(
            "UPDATE tenancy_invitation SET accepted_at = now() WHERE prefix = %s",
            [staff_inv.prefix],
        )
        == 1
    )
    second = UserFactory(email="second@example.test")
    client_inv2, _ = add_invitation(
        a.owner, email=second.email, role=Role.CLIENT, client=a.other_client
    )
    set_db_context(tenant_id=a_id, user_id=second.pk, lookup=client_inv2.prefix)
    execute(*insert_membership_sql(a_id, second.pk, "client", a.other_client.pk))
    act(a.owner)
    assert ids(
        "SELECT role FROM tenancy_membership WHERE user_id IN (%s, %s)", [invitee.pk, second.pk]
    ) == {"staff", "client"}


def test_an_invitation_prefix_shows_its_own_business_and_nothing_else(
    matrix: TenantMatrix, extras: Extras
) -> None:
    """Opening a link names the business that sent it (so the page can say whose it is), and
    the membership of its sender (so acceptance can check they may still grant its role)."""
    a_inv, b_inv = extras.invitations["a"], extras.invitations["b"]
    set_db_context(lookup=a_inv.prefix)
    assert ids("SELECT id FROM tenancy_business") == {matrix.a.owner.tenant_id}
    assert ids("SELECT id FROM tenancy_invitation") == {a_inv.pk}
    assert ids("SELECT id FROM tenancy_membership") == {a_inv.invited_by_id}
    for table in TENANT_TABLES:
        if table not in {"tenancy_business", "tenancy_invitation", "tenancy_membership"}:
            assert count(table) == 0, table
    assert execute("UPDATE tenancy_business SET name = 'x'") == 0
    set_db_context(lookup=b_inv.prefix)
    assert ids("SELECT id FROM tenancy_business") == {matrix.b.owner.tenant_id}
    # A token prefix is no invitation prefix.
    set_db_context(lookup=extras.tokens["a.owner"][0].prefix)
    assert count("tenancy_business") == 0


def test_managers_cannot_create_or_change_owners_and_managers(matrix: TenantMatrix) -> None:
    a = matrix.a
    newcomer = UserFactory()
    act(a.manager)
    refused(*insert_membership_sql(a.owner.tenant_id, newcomer.pk, "owner"))
    refused(*insert_membership_sql(a.owner.tenant_id, newcomer.pk, "manager"))
    refused("UPDATE tenancy_membership SET role = 'manager' WHERE id = %s", [a.staff.membership.pk])
    assert (
        execute(
            "UPDATE tenancy_membership SET role = 'owner' WHERE id = %s", [a.manager.membership.pk]
        )
        == 0
    )
    assert (
        execute(
            "UPDATE tenancy_membership SET is_active = false WHERE id = %s", [a.owner.membership.pk]
        )
        == 0
    )
    refused(
        "INSERT INTO tenancy_invitation (id, tenant_id, email, role, prefix, digest, created_at,"
        " expires_at) VALUES (%s, %s, 'x@x.test', 'owner', %s, 'd', now(), now() + interval '1h')",
        [uuid.uuid4(), a.owner.tenant_id, uuid.uuid4().hex[:12]],
    )
    # What managers may do, they can.
    assert (
        execute(
            "UPDATE tenancy_membership SET is_active = false WHERE id = %s", [a.staff.membership.pk]
        )
        == 1
    )
    execute(*insert_membership_sql(a.owner.tenant_id, newcomer.pk, "staff"))
    act(a.staff)
    assert (
        execute(
            "UPDATE tenancy_membership SET role = 'owner' WHERE user_id = %s", [a.staff.user.pk]
        )
        == 0
    )


# --- API tokens ------------------------------------------------------------------------------


def test_tokens_are_found_only_by_their_owner_or_exact_prefix(
    matrix: TenantMatrix, extras: Extras
) -> None:
    a_owner_token = extras.tokens["a.owner"][0]
    a_staff_token = extras.tokens["a.staff"][0]
    b_token = extras.tokens["b.owner"][0]
    clear()
    assert count("accounts_apitoken") == 0
    set_db_context(lookup=a_owner_token.prefix)
    assert ids("SELECT id FROM accounts_apitoken") == {a_owner_token.pk}
    prefix = a_owner_token.prefix
    other_last = "0" if prefix[-1] != "0" else "1"
    # (An all-digit prefix has no upper case of its own: that near miss would be the prefix.)
    upper = [prefix.upper()] if prefix.upper() != prefix else []
    for near_miss in (prefix[:-1], prefix[:-1] + other_last, *upper, "%", " "):
        set_db_context(lookup=near_miss)
        assert count("accounts_apitoken") == 0, near_miss
    # A prefix lookup only reads: it cannot stamp, widen, revive or delete the token.
    set_db_context(lookup=b_token.prefix)
    assert execute("UPDATE accounts_apitoken SET last_used_at = now()") == 0
    assert execute("UPDATE accounts_apitoken SET scopes = '{}'") == 0
    assert execute("DELETE FROM accounts_apitoken") == 0
    act(matrix.b.owner)
    execute("UPDATE accounts_apitoken SET revoked_at = now() WHERE id = %s", [b_token.pk])
    set_db_context(lookup=b_token.prefix)
    assert execute("UPDATE accounts_apitoken SET revoked_at = NULL") == 0

    act(matrix.a.owner)
    assert a_staff_token.pk not in ids("SELECT id FROM accounts_apitoken")
    assert (
        execute("UPDATE accounts_apitoken SET scopes = '{}' WHERE id = %s", [a_staff_token.pk]) == 0
    )
    act(matrix.a.staff)
    assert ids("SELECT id FROM accounts_apitoken") == {a_staff_token.pk}


# --- Settings live exactly as long as the transaction ------------------------------------------


def test_the_context_is_transaction_local(matrix: TenantMatrix) -> None:
    act(matrix.a.owner)
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        act(matrix.b.owner)
        assert scalar("SELECT custodia_tenant_id()") == matrix.b.owner.tenant_id
        raise ZeroDivisionError
    # A rolled-back savepoint takes its context with it.
    assert scalar("SELECT custodia_tenant_id()") == matrix.a.owner.tenant_id
    # (A context never outlives its transaction: tests/security/test_db_context.py, with
    # connections that commit.)


def _indexes_used(plan: str) -> list[str]:
    return re.findall(
        r"(?:Index Scan|Index Only Scan|Bitmap Index Scan)(?: Backward)?"
        r" (?:using|on) (\w+)",
        plan,
    )


def _index_leads_with(index: str) -> tuple[str, str]:
    """(table, first column) of an index."""
    table, column = fetch(
        "SELECT i.indrelid::regclass::text, a.attname FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
        " WHERE c.relname = %s",
        [index],
    )[0]
    return str(table), str(column)


def _bulk_clients(actor: Actor, how_many: int) -> None:
    """Rows for the planner only: never read back, so the sealed columns hold a placeholder,
    and the search columns digests of the shape the blind indexes have."""
    act(actor)
    execute(
        "INSERT INTO clients_client (id, tenant_id, name, email, phone, address, notes,"
        " name_search, email_search, phone_search, created_at, updated_at)"
        " SELECT gen_random_uuid(), %s, 'Client ' || g, %s, %s, %s, %s, 'client ' || g,"
        " substring(sha256(convert_to('c' || g || '@bulk.test', 'UTF8')) for 16),"
        " substring(sha256(convert_to('555' || lpad(g::text, 6, '0'), 'UTF8')) for 16),"
        " now(), now() FROM generate_series(1, %s) AS g",
        [actor.tenant_id, SEALED, SEALED, SEALED, SEALED, how_many],
    )


def test_client_queries_use_an_index_that_leads_with_tenant_id(matrix: TenantMatrix) -> None:
    _bulk_clients(matrix.b.owner, 6000)
    _bulk_clients(matrix.a.owner, 400)
    actor = matrix.a.owner
    act(actor)
    for query in ("", "client 12", "c12@bulk.test", "555 000 123"):
        plan = list_clients(actor, query=query).explain()
        used = _indexes_used(plan)
        assert used, f"no index used for {query!r}:\n{plan}"
        assert "Seq Scan on clients_client" not in plan, plan
        on_clients = [index for index in used if _index_leads_with(index)[0] == "clients_client"]
        assert on_clients, f"no index on clients_client used for {query!r}:\n{plan}"
        for index in on_clients:
            if index == "clients_client_pkey" and any(
                _index_leads_with(part_index) == ("clients_clientnamepart", "tenant_id")
                for part_index in used
            ):
                # A name search reads its clients by id, one row each, from the name parts it
                # found through their tenant-leading index: a lookup, never a range of B's rows.
                continue
            assert _index_leads_with(index)[1] == "tenant_id", f"{index} in\n{plan}"
    # The B rows were there all along: the query under A's context still sees only A's.
    assert list_clients(actor).count() == 402
