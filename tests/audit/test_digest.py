"""Owners receive the chain heads, on committed data in a scratch database: the download on the
audit page (owners only, itself an event, and usable by `verify --against`), and the weekly
security digest (real SMTP, aiosmtpd), once per owner and week, a restarted worker included."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from email.message import EmailMessage
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connections, transaction
from django.utils import timezone

from custodia.accounts.actions import do_create_api_token
from custodia.audit import chain
from custodia.audit.digest import Digests, digest_week, send_weekly_digest
from custodia.core.actor import Actor, acting_as
from custodia.core.audit import AuditAction, record
from custodia.core.permissions import Role
from custodia.jobs.registry import for_each_business
from custodia.tenancy.actors import SystemActor
from tests import scratch
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix, UserFactory, add_member, build_matrix
from tests.jobs.conftest import Worker, wait_for
from tests.mail import Received, SmtpServer
from tests.web.support import actor_for

URL = "/app/audit/heads.json"


@pytest.fixture(scope="module")
def scratch_database(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    keys = tmp_path_factory.mktemp("audit-heads-keys")
    with scratch.database("auditheads", django_db_blocker, keystore=keys) as name:
        yield name


@pytest.fixture
def database(
    scratch_database: str, django_db_blocker: Any, settings: Any, tmp_path: Path
) -> Iterator[str]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "keys" / "signer.pem"
    settings.AUDIT_CHECKPOINT_LOG_FILE = tmp_path / "keys" / "checkpoints.jsonl"
    settings.AUDIT_KEY_RING_FILE = None
    with django_db_blocker.unblock():
        yield scratch_database


@pytest.fixture
def world(database: str) -> TenantMatrix:
    """Two businesses; A has a second owner; each trail with a client read and two checkpoints."""
    with transaction.atomic():
        matrix = build_matrix()
        add_member(matrix.a.owner, UserFactory(), Role.OWNER)
    for business in (matrix.a, matrix.b):
        with transaction.atomic(), acting_as(business.staff):
            record(AuditAction.CLIENT_READ, actor=business.staff, target=business.client)
        for _round in range(2):
            with transaction.atomic(using=chain.USING):
                chain.make_checkpoint(business.owner.tenant_id)
    return matrix


def owner_emails(actor: Actor) -> set[str]:
    with transaction.atomic(), acting_as(actor):
        from custodia.tenancy.models import Membership

        return set(
            Membership.objects.filter(tenant_id=actor.tenant_id, role=Role.OWNER).values_list(
                "user__email", flat=True
            )
        )


def exports(actor: Actor) -> list[dict[str, Any]]:
    with connections[chain.USING].cursor() as cursor:
        cursor.execute(
            "SELECT detail, actor_user_id FROM audit_auditevent WHERE tenant_id = %s"
            " AND action = 'audit.export' ORDER BY id",
            [actor.tenant_id],
        )
        return [
            {"detail": json.loads(row[0]) if isinstance(row[0], str) else row[0], "user": row[1]}
            for row in cursor.fetchall()
        ]


# --- The download -------------------------------------------------------------------------


def test_an_owner_downloads_every_checkpoint_and_verifies_against_it(
    world: TenantMatrix, tmp_path: Path
) -> None:
    a, b = world.a, world.b
    response = HttpsClient().act_as(a.owner).get(URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert 'attachment; filename="audit-heads-' in response["Content-Disposition"]
    document = response.json()
    assert document["format"] == "custodia-audit-heads"
    assert document["chain"] == str(a.owner.tenant_id)
    entries = document["checkpoints"]
    assert len(entries) == 2
    for entry in entries:
        assert set(entry) >= {"chain", "checkpoint", "made_at", "digest", "key_id", "signature"}
        assert entry["chain"] == str(a.owner.tenant_id)
        assert entry["heads"] and all(len(head["hash"]) == 64 for head in entry["heads"])
    assert str(b.owner.tenant_id) not in response.content.decode()
    # The read is an event of the trail.
    (event,) = exports(a.owner)
    assert event["detail"] == {"format": "heads", "count": 2}
    assert event["user"] == a.owner.user.pk
    # What the owner kept checks the trail.
    kept = tmp_path / "kept.json"
    kept.write_bytes(response.content)
    out = StringIO()
    slug = a.owner.business.slug
    call_command("audit", "verify", "--against", str(kept), "--business", slug, stdout=out)
    assert "MATCHES" in out.getvalue()
    # Someone else's business named with this file is refused, by name.
    other = b.owner.business.slug
    with pytest.raises(Exception, match="another business"):
        call_command("audit", "verify", "--against", str(kept), "--business", other, stdout=out)


@pytest.mark.parametrize("role", ["manager", "staff", "other_staff", "client"])
def test_lesser_roles_get_404(world: TenantMatrix, role: str) -> None:
    response = HttpsClient().act_as(actor_for(world, role)).get(URL)
    assert response.status_code == 404
    assert b"signature" not in response.content
    assert exports(world.a.owner) == []


def test_the_outsider_gets_their_own_chain_only(world: TenantMatrix) -> None:
    response = HttpsClient().act_as(world.outsider).get(URL)
    assert response.status_code == 200
    assert response.json()["chain"] == str(world.b.owner.tenant_id)
    assert str(world.a.owner.tenant_id) not in response.content.decode()


def test_an_api_token_or_no_session_gets_nothing(world: TenantMatrix) -> None:
    owner = world.a.owner
    with transaction.atomic(), acting_as(owner):
        _token, plain = do_create_api_token(actor=owner, name="test")
    for client in (HttpsClient(HTTP_AUTHORIZATION=f"Bearer {plain}"), HttpsClient()):
        response = client.get(URL)
        assert response.status_code == 302 and "/login" in response["Location"]
    assert exports(owner) == []


# --- The weekly digest ----------------------------------------------------------------------


def run_digests(now: dt.datetime) -> Digests:
    total = Digests(0, 0)

    def work(actor: SystemActor) -> None:
        nonlocal total
        result = send_weekly_digest(actor, now=now)
        total = Digests(total.sent + result.sent, total.failed + result.failed)

    for_each_business("audit-digest", work)
    return total


def to(smtp: SmtpServer, addresses: set[str]) -> list[Received]:
    return [m for m in smtp.messages if set(m.recipients) & addresses]


def attachment(message: EmailMessage) -> tuple[str, dict[str, Any]]:
    (part,) = list(message.iter_attachments())
    return str(part.get_filename()), json.loads(part.get_content())


def test_each_owner_gets_the_week_once_with_its_heads_and_no_customer_data(
    world: TenantMatrix, smtp_server: SmtpServer
) -> None:
    a, b = world.a, world.b
    # The week that has just ended holds today's events and checkpoints.
    next_week = timezone.now() + dt.timedelta(days=7)
    run_digests(next_week)
    a_owners, b_owners = owner_emails(a.owner), owner_emails(b.owner)
    assert len(a_owners) == 2
    got = to(smtp_server, a_owners)
    assert sorted(address for m in got for address in m.recipients) == sorted(a_owners)
    for message in got:
        assert message.subject == f"Weekly security digest for {a.owner.business.name}"
        assert "Signed checkpoints this week: 2" in message.body
        assert "client.read: 1" in message.body
        name, heads = attachment(message.message)
        assert name.startswith(f"audit-heads-{a.owner.business.slug}-")
        assert heads["chain"] == str(a.owner.tenant_id)
        assert len(heads["checkpoints"]) == 2
        whole = message.message.as_string()
        for secret in (a.client.name, "4711", "0815", a.client.email, str(b.owner.tenant_id)):
            assert secret not in whole
    (b_mail,) = to(smtp_server, b_owners)
    assert attachment(b_mail.message)[1]["chain"] == str(b.owner.tenant_id)
    # Once a week: running again (the task runs hourly) sends nothing more.
    count = len(smtp_server.messages)
    run_digests(next_week)
    run_digests(digest_week(next_week)[1] + dt.timedelta(days=6, hours=23))  # the same week
    assert len(smtp_server.messages) == count
    # The digest is an event of the business's trail.
    events = [e["detail"] for e in exports(a.owner)]
    assert events == [
        {
            "format": "heads",
            "via": "weekly digest",
            "week": digest_week(next_week)[0].date().isoformat(),
            "owners": 2,
            "checkpoints": 2,
        }
    ]


def test_a_digest_whose_mail_failed_goes_out_on_the_next_run(
    world: TenantMatrix, smtp_server: SmtpServer
) -> None:
    a_owners = owner_emails(world.a.owner)
    next_week = timezone.now() + dt.timedelta(days=7)
    smtp_server.handler.refuse = True
    assert run_digests(next_week).failed >= 2
    assert to(smtp_server, a_owners) == []
    smtp_server.handler.refuse = False
    run_digests(next_week)
    assert sorted(r for m in to(smtp_server, a_owners) for r in m.recipients) == sorted(a_owners)


def test_a_restarted_worker_sends_no_digest_twice(
    world: TenantMatrix, smtp_server: SmtpServer, database: str, tmp_path: Path
) -> None:
    a_owners = owner_emails(world.a.owner)
    env = {
        "CUSTODIA_SMTP_HOST": "127.0.0.1",
        "CUSTODIA_SMTP_PORT": str(smtp_server.port),
        "CUSTODIA_SMTP_STARTTLS": "false",
    }
    first = Worker(database, tmp_path / "first.log", "--only", "audit-digest", env=env)
    try:
        # Its run at start ends (every business committed), then it dies without a goodbye.
        wait_for(
            lambda: "weekly digests sent:" in first.output(),
            timeout=120,
            what="the first worker's digest run",
        )
    finally:
        first.kill()
        first.stop()
    second = Worker(database, tmp_path / "second.log", "--only", "audit-digest", env=env)
    try:
        wait_for(
            lambda: "weekly digests sent: 0" in second.output(),
            timeout=120,
            what="the restarted worker's digest run",
        )
    finally:
        second.stop()
    time.sleep(1)
    # Each of A's owners got one digest, from the first worker, and none from the second.
    assert sorted(r for m in to(smtp_server, a_owners) for r in m.recipients) == sorted(a_owners)
