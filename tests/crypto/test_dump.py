"""A database dump (what a stolen backup holds) contains no sensitive value in plaintext, except
the login identities docs/keys.md names: a portal client's login address is plain, in the login
tables only, while the same address on their client record is not.

The data must be committed to be dumped, and a test's usual transaction never commits; the
audit trail refuses TRUNCATE, so a flushing transactional test cannot clean up either. This test
therefore builds its business in a scratch database of its own, dumps it, and drops it.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.db import transaction
from django.utils import timezone

from custodia.clients.access import access_client_by_id
from custodia.clients.actions import do_update_client
from custodia.core.permissions import Role
from custodia.lifecycle.backups import pg_programs_dir
from custodia.ops.management.commands.setup import (
    drop_database,
    point_connections_at,
    prepare_database,
)
from custodia.scheduling.actions import do_request_visit, do_update_visit
from custodia.tenancy.actions import do_accept_invitation, do_invite_member, invitation_proof
from custodia.tenancy.reads import Intent
from tests.acting import act
from tests.factories import PASSWORD, build_business

MARKERS = {
    "email": "zq-marker-email-7731@example.test",
    "phone": "+31 6 4242 7731",
    "address": "Zq Marker Street 7731, Dumpton",
    "notes": "zq-marker-notes: allergic to penicillin",
    "instructions": "zq-marker-instructions: key behind the blue pot",
    "door_code": "88-marker-4412",
    "alarm_code": "77-marker-5523",
}
REPORT = "zq-marker-report: found the back door open"
REQUEST_NOTE = "zq-marker-request: please come before noon"
NAME = "Zq Marker Client Name"  # plaintext on purpose: proves the dump holds the data
# A second client whose portal login uses the address on their record.
PORTAL_EMAIL = "zq-portal-login-5519@example.test"
# Where a login address is plain text (docs/keys.md, "Login identities"); an invitation's address
# may be there too, or already cleared.
LOGIN_TABLES = {"accounts_user", "account_emailaddress"}
MAY_HOLD_LOGIN_ADDRESS = LOGIN_TABLES | {"tenancy_invitation"}


@pytest.fixture
def scratch_database(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """A freshly migrated database of this test only; the test database is restored after."""
    original = settings.DATABASES["default"]["NAME"]
    name = f"{original}_dump"
    with django_db_blocker.unblock():
        prepare_database(name, fresh=True)
        try:
            yield name
        finally:
            drop_database(name)
            point_connections_at(original, settings.DATABASES["default"]["HOST"])


def pg_dump(database: str) -> str:
    binary = pg_programs_dir() / "pg_dump"
    assert binary.exists(), binary
    admin = settings.ADMIN_DATABASE
    command = [
        str(binary),
        "--host",
        str(admin["HOST"]),
        "--username",
        str(admin["USER"]),
        "--no-password",
        "--format",
        "plain",
        "--dbname",
        database,
    ]
    if admin.get("PORT"):
        command += ["--port", str(admin["PORT"])]
    env = {"PGPASSWORD": str(admin.get("PASSWORD") or ""), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(  # noqa: S603  (fixed arguments)
        command, capture_output=True, env=env, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode()


def populate() -> None:
    """A business with every sensitive field filled with a marker, committed."""
    with transaction.atomic():
        business = build_business("Dumpco")
        owner = business.owner
        act(owner)
        client = access_client_by_id(owner, business.client.pk, intent=Intent.CHANGE)
        do_update_client(client, actor=owner, name=NAME, **MARKERS)
        do_update_visit(business.visit, actor=owner, report=REPORT)
        act(business.client_login)
        do_request_visit(
            actor=business.client_login,
            starts_at=timezone.now() + dt.timedelta(days=3),
            note=REQUEST_NOTE,
        )
        # The portal client: invited at the address on their record, as a business would.
        act(owner)
        portal = access_client_by_id(owner, business.other_client.pk, intent=Intent.CHANGE)
        do_update_client(portal, actor=owner, email=PORTAL_EMAIL)
        do_invite_member(actor=owner, email=PORTAL_EMAIL, role=Role.CLIENT, client=portal)
        found = re.search(r"/invite/([^/\s]+)/([^/\s]+)/", mail.outbox[-1].body)
        assert found is not None
        prefix, secret = found.groups()
        do_accept_invitation(
            prefix, invitation_proof(secret), user=None, full_name="Zq Portal", password=PASSWORD
        )


def copy_blocks(dump: str) -> dict[str, str]:
    """Each table's rows in a plain-format dump, by table name."""
    block = re.compile(r"^COPY public\.(\w+) .*? FROM stdin;\n(.*?)^\\\.$", re.M | re.S)
    return {match.group(1): match.group(2) for match in block.finditer(dump)}


def test_a_dump_holds_no_sensitive_plaintext(scratch_database: str) -> None:
    populate()
    dump = pg_dump(scratch_database)
    folded = dump.lower()
    # The check can fail: the plaintext name and the tables' data are there.
    assert NAME in dump
    assert "copy public.clients_client" in folded
    assert "dumpco" in folded
    leaked = [
        label
        for label, value in {**MARKERS, "report": REPORT, "request_note": REQUEST_NOTE}.items()
        if value.lower() in folded
    ]
    assert leaked == []
    # Nor any distinctive part of them (a value split, or stored in another form).
    for fragment in ("zq-marker", "7731@", "88-marker", "77-marker", "penicillin"):
        assert fragment not in folded, fragment
    # The phone's digits (the blind index is a keyed digest, not the digits).
    assert "31642427731" not in folded


def test_a_portal_clients_address_is_plain_only_as_their_login(scratch_database: str) -> None:
    populate()
    dump = pg_dump(scratch_database)
    blocks = copy_blocks(dump)
    assert "clients_client" in blocks and "accounts_user" in blocks
    holding = {table for table, rows in blocks.items() if PORTAL_EMAIL in rows.lower()}
    # The login identity is plain text (sign-in finds it before any business is known) ...
    assert LOGIN_TABLES <= holding <= MAY_HOLD_LOGIN_ADDRESS, holding
    # ... and nowhere else: not the client record, the audit trail, sessions or anything outside
    # the rows of those tables.
    rest = dump.lower()
    for table in holding:
        rest = rest.replace(blocks[table].lower(), "")
    assert PORTAL_EMAIL not in rest
    assert "zq-portal" not in rest and "5519@" not in rest
