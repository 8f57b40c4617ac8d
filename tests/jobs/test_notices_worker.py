"""Visit emails sent by real `custodia worker` processes to a real SMTP server (aiosmtpd): each
message once, and a worker killed and started again sends none of them a second time."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from custodia.core.actor import acting_as
from custodia.scheduling.actions import do_request_visit
from tests.factories import TenantMatrix
from tests.jobs.conftest import Worker, wait_for
from tests.jobs.test_worker import WITHOUT_BACKUPS
from tests.mail import SmtpServer


def requested_to(smtp: SmtpServer, addresses: set[str]) -> list[str]:
    """The recipients among `addresses` of every "requested" notice received so far."""
    return sorted(
        address
        for message in smtp.messages
        if message.message["X-Custodia-Notice"] == "requested"
        for address in message.recipients
        if address in addresses
    )


def test_a_worker_sends_each_notice_once_and_a_restarted_one_sends_none_again(
    world: TenantMatrix, workers: Callable[..., Worker], smtp_server: SmtpServer
) -> None:
    a = world.a
    client = a.client_login
    with transaction.atomic(), acting_as(client):
        do_request_visit(actor=client, starts_at=timezone.now() + dt.timedelta(days=9))
    managers = {a.owner.user.email, a.manager.user.email}
    env = {
        "CUSTODIA_SMTP_HOST": "127.0.0.1",
        "CUSTODIA_SMTP_PORT": str(smtp_server.port),
        "CUSTODIA_SMTP_STARTTLS": "false",
    }
    first = workers(*WITHOUT_BACKUPS, env=env)
    wait_for(
        lambda: len(requested_to(smtp_server, managers)) >= 2,
        timeout=120,
        what="the request's notices to the owner and the manager",
    )
    first.kill()
    second = workers(*WITHOUT_BACKUPS, env=env)
    wait_for(
        lambda: "custodia.periodic.notices" in second.output(),
        timeout=120,
        what="the restarted worker's notices task",
    )
    time.sleep(3)  # time for the run to end (it finds nothing due)
    assert requested_to(smtp_server, managers) == sorted(managers)
    # Nothing of business A went to business B's people.
    others = {world.b.owner.user.email, world.b.manager.user.email}
    assert requested_to(smtp_server, others) == []
