"""Real `custodia worker` processes on committed data (a scratch database of this module's own):
a worker killed (kill -9) in the middle of a delivery loses nothing, the next one delivers it;
and the retention policy's rule deletes old delivery rows in every business."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook

from custodia.core.actor import Actor, acting_as
from custodia.lifecycle import retention
from custodia.scheduling.actions import do_update_visit
from custodia.webhooks.actions import do_create_endpoint
from custodia.webhooks.models import Delivery, DeliveryStatus
from tests.factories import TenantMatrix
from tests.webhooks.receiver import Answer, Receiver

REPO = Path(__file__).resolve().parents[2]


def as_owner(owner: Actor, work: Callable[[], Any]) -> Any:
    """`work` in a committed transaction of its own, acting as the owner."""
    with transaction.atomic(), acting_as(owner):
        return work()


def delivery_of(owner: Actor) -> Delivery:
    return as_owner(owner, lambda: Delivery.objects.get())


def wait_for(condition: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Worker:
    def __init__(self, database: str, log: Path, ca: Path) -> None:
        self.log = log.open("ab")
        self.process = subprocess.Popen(  # noqa: S603  (fixed arguments)
            [sys.executable, "-m", "custodia.cli", "worker", "--only", "webhooks"],
            cwd=REPO,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
                "CUSTODIA_DB_NAME": database,
                "CUSTODIA_KEYSTORE_DIR": str(settings.KEYSTORE_DIR),
                "CUSTODIA_WEBHOOKS_ALLOW_PRIVATE": "1",
                "CUSTODIA_WEBHOOKS_CA_FILE": str(ca),
                "CUSTODIA_WEBHOOKS_TIMEOUT_SECONDS": "2",
                "CUSTODIA_JOB_HEARTBEAT_SECONDS": "1",
                "CUSTODIA_JOB_STALLED_SECONDS": "3",
                "CUSTODIA_JOB_POLL_SECONDS": "1",
            },
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        """kill -9: no goodbye, no cleanup."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture
def workers(
    tmp_path: Path, receiver_tls: tuple[Path, Path, Path]
) -> Iterator[Callable[[str], Worker]]:
    started: list[Worker] = []

    def start(database: str) -> Worker:
        worker = Worker(database, tmp_path / f"worker-{len(started)}.log", receiver_tls[0])
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def test_a_delivery_survives_kill_9_of_its_worker_mid_attempt(
    world: TenantMatrix,
    webhooks_database: str,
    receiver: Receiver,
    workers: Callable[[str], Worker],
    django_db_blocker: Any,
) -> None:
    owner, staff = world.a.owner, world.a.staff
    # The first attempt hangs at the receiver (longer than the sender waits); the next is a 200.
    receiver.answer(Answer(200, pause=20))
    with django_db_blocker.unblock():
        _endpoint, secret = as_owner(
            owner,
            lambda: do_create_endpoint(
                actor=owner, url=receiver.url, event_types=["visit.completed"]
            ),
        )
        with transaction.atomic(), acting_as(staff):
            do_update_visit(world.a.visit, actor=staff, status="completed")

        first = workers(webhooks_database)
        assert receiver.got_request.wait(60), "the first worker never sent the delivery"
        first.kill()
        interrupted = delivery_of(owner)
        assert interrupted.status == DeliveryStatus.PENDING and interrupted.attempts == 1

        workers(webhooks_database)
        delivered = wait_for(
            lambda: (d := delivery_of(owner)).status == DeliveryStatus.DELIVERED and d,
            timeout=90,
            what="the next worker to deliver it",
        )
    assert delivered.attempts == 2 and delivered.response_status == 200
    first_try, second_try = receiver.received
    assert first_try.headers["webhook-id"] == second_try.headers["webhook-id"]
    Webhook(secret).verify(second_try.body, second_try.headers)


def test_the_retention_rule_deletes_old_finished_deliveries_in_every_business(
    world: TenantMatrix, receiver: Receiver, django_db_blocker: Any
) -> None:
    now = timezone.now()
    old = now - dt.timedelta(days=settings.WEBHOOKS_DELIVERY_RETENTION_DAYS, minutes=1)
    with django_db_blocker.unblock():
        for business in (world.a, world.b):
            owner = business.owner
            as_owner(
                owner,
                lambda owner=owner: do_create_endpoint(
                    actor=owner, url=receiver.url, event_types=["visit.completed"]
                ),
            )
            with transaction.atomic(), acting_as(business.staff):
                do_update_visit(business.visit, actor=business.staff, status="completed")
            with transaction.atomic(), acting_as(owner):
                [delivery] = Delivery.objects.filter(tenant_id=owner.tenant_id)
                Delivery.objects.filter(pk=delivery.pk).update(
                    created_at=old, status=DeliveryStatus.DELIVERED
                )
                # A newer one stays, and so does an old one still pending.
                Delivery.objects.create(
                    tenant_id=owner.tenant_id,
                    endpoint=delivery.endpoint,
                    event_id=delivery.event_id,
                    event_type=delivery.event_type,
                    payload=delivery.payload,
                    status=DeliveryStatus.FAILED,
                )
                Delivery.objects.create(
                    tenant_id=owner.tenant_id,
                    endpoint=delivery.endpoint,
                    event_id=delivery.event_id,
                    event_type=delivery.event_type,
                    payload=delivery.payload,
                )
                Delivery.objects.filter(status=DeliveryStatus.PENDING).update(created_at=old)

        [outcome] = retention.enforce(now, only={"webhook-deliveries"})
        assert outcome == retention.Outcome("webhook-deliveries", 2)
        for business in (world.a, world.b):
            left = as_owner(
                business.owner, lambda: sorted(Delivery.objects.values_list("status", flat=True))
            )
            assert left == ["failed", "pending"]
