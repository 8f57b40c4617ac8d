"""On committed rows in a scratch database, over real concurrent connections: two invoices issued
at once take numbers 1 and 2 (no gap, no duplicate); a connection of the app role that sets
the context settings by hand reads no invoice of any business; the daily expiry task works
through every business."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from custodia import embedded
from custodia.core.actor import Actor, acting_as
from custodia.payments.actions.catalog import do_create_pass_type
from custodia.payments.actions.invoices import (
    do_add_invoice_line,
    do_create_invoice,
    do_issue_invoice,
)
from custodia.payments.actions.passes import do_sell_pass
from custodia.payments.models import Invoice
from custodia.payments.tasks import expire_passes
from tests import scratch
from tests.factories import TenantMatrix, build_matrix
from tests.scratch import elsewhere, wait_until_blocked

HAND_SET = (
    "SELECT set_config('custodia.tenant_id', %(tenant)s, true),"
    " set_config('custodia.role', 'owner', true)"
)


@pytest.fixture(scope="module")
def scratch_database(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    keys = tmp_path_factory.mktemp("payments-keys")
    with scratch.database("payments", django_db_blocker, keystore=keys) as name:
        yield name


@pytest.fixture
def database(scratch_database: str, django_db_blocker: Any, settings: Any) -> Iterator[str]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with django_db_blocker.unblock():
        yield scratch_database


@pytest.fixture
def world(database: str) -> TenantMatrix:
    with transaction.atomic():
        return build_matrix()


def draft(actor: Actor, world: TenantMatrix, label: str) -> Invoice:
    with transaction.atomic(), acting_as(actor):
        invoice = do_create_invoice(world.a.client, actor=actor)
        do_add_invoice_line(
            invoice, actor=actor, description=label, quantity=1, unit_price_minor=1000
        )
        return invoice


def test_two_issues_at_once_take_numbers_one_and_two(database: str, world: TenantMatrix) -> None:
    manager, owner = world.a.manager, world.a.owner
    first, second = draft(manager, world, "first"), draft(owner, world, "second")

    def issue_second() -> int | None:
        with transaction.atomic(), acting_as(owner):
            return do_issue_invoice(second, actor=owner).number

    with ThreadPoolExecutor(max_workers=1) as pool:
        with transaction.atomic(), acting_as(manager):
            assert do_issue_invoice(first, actor=manager).number == 1
            # Holding the counter: the other issue waits for this transaction, then goes on.
            other = elsewhere(pool, issue_second)
            wait_until_blocked(database, other)
        assert other.result(timeout=20) == 2
    with embedded.admin_connection(settings.ADMIN_DATABASE, database) as admin:
        numbers = admin.execute(
            "SELECT number FROM payments_invoice WHERE tenant_id = %s AND number IS NOT NULL"
            " ORDER BY number",
            [world.a.owner.tenant_id],
        ).fetchall()
    assert [row[0] for row in numbers] == [1, 2]


def app_connection(database: str) -> psycopg.Connection:
    db = settings.DATABASES["default"]
    return psycopg.connect(
        dbname=database,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        autocommit=True,
    )


def test_hand_set_settings_read_no_invoice(database: str, world: TenantMatrix) -> None:
    owner = world.a.owner
    invoice = draft(owner, world, "secret line")
    with transaction.atomic(), acting_as(owner):
        do_issue_invoice(invoice, actor=owner)
    tables = ("payments_invoice", "payments_invoiceline", "payments_invoicecounter")
    with app_connection(database) as attacker:
        for tenant in (owner.tenant_id, world.b.owner.tenant_id):
            with attacker.transaction():
                attacker.execute(HAND_SET, {"tenant": str(tenant)})
                for table in tables:
                    row = attacker.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
                    assert row == (0,), f"{table} read with hand-set settings"
        # The verified context of business B sees none of A's either; A's own sees them (so the
        # test can fail).
        verified = "SELECT custodia_set_context(%s, %s, NULL, NULL, NULL, 'owner', NULL)"
        with attacker.transaction():
            attacker.execute(verified, [settings.DB_CONTEXT_KEY, str(world.b.owner.tenant_id)])
            assert attacker.execute("SELECT count(*) FROM payments_invoice").fetchone() == (0,)
        with attacker.transaction():
            attacker.execute(verified, [settings.DB_CONTEXT_KEY, str(owner.tenant_id)])
            assert attacker.execute("SELECT count(*) FROM payments_invoice").fetchone() == (1,)


def test_the_daily_task_expires_passes_in_every_business(
    database: str, world: TenantMatrix
) -> None:
    sold = {}
    for key, business in (("a", world.a), ("b", world.b)):
        with transaction.atomic(), acting_as(business.owner):
            kind = do_create_pass_type(
                actor=business.owner, name="Three", credits=3, price_minor=0, validity_days=1
            )
            started = timezone.now() - dt.timedelta(days=2)
            sold[key], _ = do_sell_pass(
                business.client, kind, actor=business.owner, starts_at=started
            )
    expire_passes()
    with embedded.admin_connection(settings.ADMIN_DATABASE, database) as admin:
        statuses = admin.execute(
            "SELECT status FROM payments_clientpass WHERE id = ANY(%s)",
            [[client_pass.pk for client_pass in sold.values()]],
        ).fetchall()
    assert [row[0] for row in statuses] == ["expired", "expired"]
