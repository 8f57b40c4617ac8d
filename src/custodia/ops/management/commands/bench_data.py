"""`custodia bench-data`: a generated dataset for the benchmarks, loaded with COPY.

Bulk generation only: rows are written with COPY through the admin connection (a superuser, so
COPY FROM is allowed on tables with forced row-level security). Every row obeys the schema's
constraints and the RLS model: tenant_id is set on every tenant-owned row, references stay in one
tenant, and the search keys are made by the same functions the actions use (clients/models.py).
Every business gets its data keys before its first row, and every encrypted column holds a value
sealed for its place (crypto/fields.py `seal_text`), the email and phone searches the business's
blind indexes, exactly as `EncryptedTextField` and clients/actions.py write them. The running app
never uses this path; it reads the rows as custodia_app under RLS like any other.

`--plaintext-target` adds a second target business whose values are in the benchmark's plaintext
format (FIELD_ENCRYPTION = False: format byte 0x00 and UTF-8, blind indexes `kind:value`), the
dataset of the plaintext baseline server (bench/settings_plaintext.py, scenario 12).
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from typing import Any

import psycopg
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.test.utils import override_settings
from django.utils import timezone

from custodia.clients.models import email_key, name_key, phone_key
from custodia.crypto.fields import seal_text
from custodia.crypto.keyring import blind_index, create_keys

FIRST = (
    "Ada Alan Alice Amir Anna Ben Carla Chen Dana David Elena Emma Ewa Farah Grace Hana Ivan "
    "Jack James Jin Julia Kai Kofi Lara Leo Lina Liam Maya Mia Nina Noah Omar Priya Rosa Sam "
    "Sara Tom Uma Vera Yusuf Zoe"
).split()
LAST = (
    "Abe Baker Brooks Costa Diaz Evans Fischer Garcia Hahn Ito Jones Kim Kowalski Lee Lopez "
    "Martin Meyer Nakamura Novak Okafor Park Patel Quinn Rossi Sato Schmidt Shah Silva Smith "
    "Tanaka Torres Vogel Walker Wang Weber Xu Young Zhang"
).split()
TARGET_SLUG = "bench-target"
TARGET_OWNER_EMAIL = "owner@bench-target.invalid"
# The plaintext baseline's target: same size, values in the 0x00 format (scenario 12).
PLAIN_TARGET_SLUG = "bench-target-plain"
PLAIN_TARGET_OWNER_EMAIL = "owner@bench-target-plain.invalid"
CLIENT_TABLE = "clients_client"
VISIT_TABLE = "scheduling_visit"
SERVICES = (("Dog walk", 45, 2500), ("Drop-in visit", 30, 2000), ("House clean", 120, 9000))


def _admin_connection() -> psycopg.Connection[Any]:
    admin = settings.ADMIN_DATABASE
    database: dict[str, Any] = settings.DATABASES["default"]
    return psycopg.connect(
        dbname=str(database["NAME"]),
        user=admin["USER"] or None,
        password=admin["PASSWORD"] or None,
        host=str(database["HOST"] or admin["HOST"]) or None,
        port=admin["PORT"] or None,
    )


def _copy(
    conn: psycopg.Connection[Any], table: str, columns: tuple[str, ...], rows: Iterable[tuple]
) -> int:
    count = 0
    with conn.cursor() as cursor:
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
    return count


# The trigger that cuts each new client's name into its parts (clients/0008), paused while
# clients are copied: the parts of the copied clients are then cut in one statement.
PARTS_TRIGGER = "clients_client_name_parts_insert"


def _copy_clients(
    conn: psycopg.Connection[Any], rows: Iterable[tuple], tenants: list[uuid.UUID]
) -> int:
    """COPY client rows of `tenants`, then their name parts (clients_clientnamepart) the way the
    paused trigger would cut them (`custodia_name_parts`), in one INSERT; the closed-business
    guard and same-tenant checks of the parts are skipped for it (session_replication_role:
    every business here was just made, open, and the parts point at their own clients)."""
    conn.execute(f"ALTER TABLE {CLIENT_TABLE} DISABLE TRIGGER {PARTS_TRIGGER}")
    count = _copy(conn, CLIENT_TABLE, CLIENT_COLUMNS, rows)
    # The copied rows' deferred checks run now: a table with pending ones cannot be altered.
    conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
    conn.execute(f"ALTER TABLE {CLIENT_TABLE} ENABLE TRIGGER {PARTS_TRIGGER}")
    conn.execute("SET CONSTRAINTS ALL DEFERRED")
    conn.execute("SET LOCAL session_replication_role = replica")
    conn.execute(
        "INSERT INTO clients_clientnamepart (id, tenant_id, client_id, part)"
        " SELECT gen_random_uuid(), c.tenant_id, c.id, part"
        " FROM clients_client c, custodia_name_parts(c.name_search) AS part"
        " WHERE c.tenant_id = ANY(%s)",
        [tenants],
    )
    conn.execute("SET LOCAL session_replication_role = origin")
    return count


def client_rows(
    tenant_id: uuid.UUID, count: int, rng: random.Random, now: dt.datetime, serial: int
) -> Iterator[tuple]:
    """`count` client rows of one tenant: values sealed for their row, search keys normalised
    and blind-indexed like the actions do (the tenant's keys must exist)."""
    for number in range(serial, serial + count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        client = uuid.uuid4()
        name = f"{first} {last} {number}"
        email = f"{first}.{last}.{number}@Example.com"
        phone = f"+1 555 {number:07d}"
        yield (
            client,
            tenant_id,
            name,
            seal_text(tenant_id, CLIENT_TABLE, "email", client, email),
            seal_text(tenant_id, CLIENT_TABLE, "phone", client, phone),
            seal_text(tenant_id, CLIENT_TABLE, "address", client, f"{number} Bench Street"),
            seal_text(tenant_id, CLIENT_TABLE, "notes", client, ""),
            name_key(name),
            blind_index(tenant_id, "email", email_key(email)),
            blind_index(tenant_id, "phone", phone_key(phone)),
            now,
            now,
        )


GENERATED_TABLES = (
    "tenancy_business",
    "accounts_user",
    "account_emailaddress",
    "tenancy_membership",
    "clients_client",
    "clients_clientnamepart",
    "scheduling_service",
    "scheduling_visit",
)
CLIENT_COLUMNS = (
    "id",
    "tenant_id",
    "name",
    "email",
    "phone",
    "address",
    "notes",
    "name_search",
    "email_search",
    "phone_search",
    "created_at",
    "updated_at",
)


class Command(BaseCommand):
    help = "Add a generated benchmark dataset (COPY through the admin connection; bench only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--businesses", type=int, default=10, help="businesses to add")
        parser.add_argument(
            "--clients-per-business", type=int, default=100, help="clients in each added business"
        )
        parser.add_argument(
            "--target-clients",
            type=int,
            default=0,
            help="also create the target business bench-target with this many clients",
        )
        parser.add_argument(
            "--target-visits",
            type=int,
            default=300,
            help="visits of the target business, this week",
        )
        parser.add_argument(
            "--owner-password",
            default="",
            help="password of the target owners (default: the login is unusable)",
        )
        parser.add_argument(
            "--plaintext-target",
            action="store_true",
            help=f"with --target-clients, also {PLAIN_TARGET_SLUG} of the same size, its values "
            "in the plaintext format of FIELD_ENCRYPTION = False (the baseline of scenario 12)",
        )
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError(
                "bench-data writes generated rows; it refuses CUSTODIA_ENV=production."
            )
        if options["plaintext_target"] and not options["target_clients"]:
            raise CommandError("--plaintext-target needs --target-clients (its size).")
        rng = random.Random(options["seed"])  # noqa: S311 - fake data, not secrets
        now = timezone.now()
        started = time.monotonic()
        with _admin_connection() as conn:
            # Numbers in names, emails and phones continue from the rows already there.
            existing = conn.execute("SELECT count(*) FROM clients_client").fetchone()
            serial = int(existing[0]) if existing else 0
            clients = 0
            targets = [(TARGET_SLUG, TARGET_OWNER_EMAIL)] if options["target_clients"] else []
            if targets and options["plaintext_target"]:
                targets.append((PLAIN_TARGET_SLUG, PLAIN_TARGET_OWNER_EMAIL))
            for slug, owner_email in targets:
                if conn.execute(
                    "SELECT 1 FROM tenancy_business WHERE slug = %s", [slug]
                ).fetchone():
                    raise CommandError(f"{slug} exists already; use a fresh database.")
                # The plaintext target's values and indexes in the format the baseline reads.
                plain = slug == PLAIN_TARGET_SLUG
                with override_settings(FIELD_ENCRYPTION=False) if plain else nullcontext():
                    clients += self._target(conn, options, rng, now, serial, slug, owner_email)
                serial += options["target_clients"]
            businesses = [uuid.uuid4() for _ in range(options["businesses"])]
            owners = [uuid.uuid4() for _ in businesses]
            for business in businesses:
                create_keys(business)
            _copy(
                conn,
                "tenancy_business",
                (
                    "id",
                    "name",
                    "slug",
                    "access_window_before_hours",
                    "access_window_after_hours",
                    "created_at",
                ),
                ((b, f"Bench {b.hex[:8]}", f"bench-{b.hex}", 24, 12, now) for b in businesses),
            )
            _copy(
                conn,
                "accounts_user",
                ("id", "email", "full_name", "is_active", "date_joined", "password", "last_login"),
                ((u, f"owner-{u.hex}@bench.invalid", "", True, now, "!", None) for u in owners),
            )
            _copy(
                conn,
                "tenancy_membership",
                ("id", "tenant_id", "user_id", "role", "client_id", "is_active", "created_at"),
                (
                    (uuid.uuid4(), b, u, "owner", None, True, now)
                    for b, u in zip(businesses, owners, strict=True)
                ),
            )
            per = options["clients_per_business"]

            def rows() -> Iterator[tuple]:
                for index, business in enumerate(businesses):
                    yield from client_rows(business, per, rng, now, serial + index * per)

            clients += _copy_clients(conn, rows(), businesses)
            conn.commit()
            loaded = time.monotonic() - started
            # Fresh statistics (or the planner guesses on a table that just grew 100-fold) and a
            # visibility map, so autovacuum does not do this work in the middle of a measurement.
            conn.autocommit = True
            for table in GENERATED_TABLES:
                conn.execute(f"VACUUM (ANALYZE) {table}")
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"added {len(businesses)} businesses and {clients} clients in {elapsed:.1f} s "
            f"(COPY {loaded:.1f} s, {clients / max(loaded, 1e-6):,.0f} client rows/s; "
            f"then VACUUM ANALYZE)"
        )

    def _target(
        self,
        conn: psycopg.Connection[Any],
        options: dict[str, Any],
        rng: random.Random,
        now: dt.datetime,
        serial: int,
        slug: str,
        owner_email: str,
    ) -> int:
        business, owner = uuid.uuid4(), uuid.uuid4()
        create_keys(business)
        staff_users = [uuid.uuid4(), uuid.uuid4()]
        password = make_password(options["owner_password"]) if options["owner_password"] else "!"
        conn.execute(
            "INSERT INTO tenancy_business (id, name, slug, access_window_before_hours,"
            " access_window_after_hours, created_at) VALUES (%s, %s, %s, 24, 12, %s)",
            [business, slug.replace("-", " ").title(), slug, now],
        )
        users = [(owner, owner_email, "Bench Owner", password)] + [
            (user, f"staff{i}@{slug}.invalid", f"Staff {i}", "!")
            for i, user in enumerate(staff_users)
        ]
        for user_id, email, full_name, hashed in users:
            conn.execute(
                "INSERT INTO accounts_user (id, email, full_name, is_active, date_joined,"
                " password) VALUES (%s, %s, %s, true, %s, %s)",
                [user_id, email, full_name, now, hashed],
            )
        # allauth lets only a verified address log in.
        conn.execute(
            'INSERT INTO account_emailaddress (user_id, email, verified, "primary")'
            " VALUES (%s, %s, true, true)",
            [owner, owner_email],
        )
        members = []
        for user_id, _, _, _ in users:
            member = uuid.uuid4()
            role = "owner" if user_id == owner else "staff"
            members.append((member, role))
            conn.execute(
                "INSERT INTO tenancy_membership (id, tenant_id, user_id, role, client_id,"
                " is_active, created_at) VALUES (%s, %s, %s, %s, NULL, true, %s)",
                [member, business, user_id, role, now],
            )
        client_ids: list[uuid.UUID] = []

        def rows() -> Iterator[tuple]:
            for row in client_rows(business, options["target_clients"], rng, now, serial):
                if len(client_ids) < 1000:
                    client_ids.append(row[0])
                yield row

        count = _copy_clients(conn, rows(), [business])
        services = [uuid.uuid4() for _ in SERVICES]
        _copy(
            conn,
            "scheduling_service",
            (
                "id",
                "tenant_id",
                "name",
                "duration_minutes",
                "price_cents",
                "is_active",
                "created_at",
            ),
            ((s, business, *spec, True, now) for s, spec in zip(services, SERVICES, strict=True)),
        )
        staff = [member for member, role in members if role == "staff"]
        monday = timezone.localtime(now).replace(hour=8, minute=0, second=0, microsecond=0)
        monday -= dt.timedelta(days=monday.weekday())

        def visits() -> Iterator[tuple]:
            for number in range(options["target_visits"]):
                starts = monday + dt.timedelta(days=number % 7, minutes=15 * (number % 40))
                visit = uuid.uuid4()
                yield (
                    visit,
                    business,
                    client_ids[number % len(client_ids)],
                    staff[number % len(staff)],
                    services[number % len(services)],
                    starts,
                    starts + dt.timedelta(minutes=45),
                    "scheduled" if number % 5 else "requested",
                    seal_text(business, VISIT_TABLE, "request_note", visit, ""),
                    seal_text(business, VISIT_TABLE, "report", visit, ""),
                    now,
                    now,
                )

        if client_ids:
            _copy(
                conn,
                VISIT_TABLE,
                (
                    "id",
                    "tenant_id",
                    "client_id",
                    "staff_id",
                    "service_id",
                    "starts_at",
                    "ends_at",
                    "status",
                    "request_note",
                    "report",
                    "created_at",
                    "updated_at",
                ),
                visits(),
            )
        return count
