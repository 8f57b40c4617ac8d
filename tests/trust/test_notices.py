"""Subprocessor change notices and the audit verification record, on committed data: the task
lists businesses on the operator's connection, as the worker does."""

from __future__ import annotations

import uuid
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import ProgrammingError, connections, transaction

from custodia.transparency.models import ChainVerification, SubprocessorList
from custodia.transparency.subprocessors import announce_changes
from custodia.transparency.tasks import subprocessor_notices
from custodia.transparency.verification import USING
from tests.audit.test_chain import _events, _tamper
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix
from tests.mail import SmtpServer


def forget_lists() -> None:
    SubprocessorList.objects.using(USING).all().delete()


def test_a_changed_smtp_host_tells_each_owner_once(
    world: TenantMatrix, smtp_server: SmtpServer, settings: Any
) -> None:
    forget_lists()
    assert announce_changes() == 0  # the first run records the list: nothing changed from
    assert smtp_server.messages == []
    subprocessor_notices()  # the periodic task itself: unchanged, nothing sent
    assert smtp_server.messages == []

    settings.EMAIL_HOST = "localhost"  # the same server, another name: the list changes
    subprocessor_notices()
    owners = sorted([world.a.owner.user.email.lower(), world.b.owner.user.email.lower()])
    received = smtp_server.wait_for(2)
    assert sorted(address for message in received for address in message.recipients) == owners
    for message in received:
        assert message.subject == "[Custodia] Subprocessor list changed"
        assert "Changed: Email delivery (SMTP relay) at 127.0.0.1 -> " in message.body
        assert "at localhost" in message.body
        assert "/security/subprocessors/" in message.body
        # Nobody else's address, nor a business's name, is in a notice.
        for other in (world.a.manager, world.a.staff, world.a.client_login):
            assert other.user.email not in message.body
        assert "Alpha" not in message.body and "Bravo" not in message.body

    assert announce_changes() == 0  # a second run: nothing new
    assert len(smtp_server.messages) == 2
    assert SubprocessorList.objects.using(USING).count() == 2


def test_a_failed_send_records_nothing_so_the_next_run_tries_again(
    world: TenantMatrix, smtp_server: SmtpServer, settings: Any
) -> None:
    forget_lists()
    announce_changes()
    settings.EMAIL_HOST = "localhost"
    smtp_server.handler.refuse = True
    with pytest.raises(Exception, match="554"):
        announce_changes()
    assert SubprocessorList.objects.using(USING).count() == 1
    smtp_server.handler.refuse = False
    assert announce_changes() == 2


def test_only_active_owners_are_told(
    world: TenantMatrix, smtp_server: SmtpServer, settings: Any
) -> None:
    forget_lists()
    announce_changes()
    owner_b = world.b.owner.user
    type(owner_b).objects.filter(pk=owner_b.pk).update(is_active=False)
    try:
        settings.EMAIL_HOST = "localhost"
        assert announce_changes() == 1
        (message,) = smtp_server.wait_for(1)
        assert message.recipients == [world.a.owner.user.email.lower()]
    finally:
        type(owner_b).objects.filter(pk=owner_b.pk).update(is_active=True)


def test_audit_verify_records_its_outcome_and_the_page_shows_it(world: TenantMatrix) -> None:
    web = HttpsClient()
    ChainVerification.objects.using(USING).all().delete()
    call_command("audit", "verify", stdout=StringIO())
    (passed,) = ChainVerification.objects.using(USING).all()
    assert passed.source == "verify" and passed.broken == 0 and passed.chains >= 2
    page = " ".join(web.get("/security/").content.decode().split())
    assert f"{passed.chains} chains: <strong>every chain verified</strong>" in page

    # A chain whose event the database owner altered by hand: the next verification fails,
    # and the page says so (counts only: which chain is the operator's business).
    bad = uuid.uuid4()
    _events(bad, 3)
    _tamper("UPDATE audit_auditevent SET target_type = 'forged' WHERE tenant_id = %s", [bad])
    try:
        with pytest.raises(CommandError):
            call_command("audit", "verify", stdout=StringIO())
        newest = ChainVerification.objects.using(USING).order_by("-id").first()
        assert newest is not None and newest.broken == 1
        page = " ".join(web.get("/security/").content.decode().split())
        assert '<strong class="failed">1 did not verify</strong>' in page
        assert str(bad) not in page
    finally:
        _tamper("DELETE FROM audit_auditevent WHERE tenant_id = %s", [bad])

    # The daily checkpoint round records its verification too.
    call_command("audit", "checkpoint", stdout=StringIO())
    newest = ChainVerification.objects.using(USING).order_by("-id").first()
    assert newest is not None and (newest.source, newest.broken) == ("checkpoint", 0)


def test_the_app_role_cannot_forge_a_verification_or_a_list(live: str) -> None:
    for statement in (
        "INSERT INTO transparency_chainverification (at, chains, broken, source)"
        " VALUES (now(), 1, 0, 'forged')",
        "UPDATE transparency_chainverification SET broken = 0",
        "DELETE FROM transparency_subprocessorlist",
    ):
        with pytest.raises(ProgrammingError, match="permission denied"):
            with transaction.atomic(), connections["default"].cursor() as cursor:
                cursor.execute(statement)
