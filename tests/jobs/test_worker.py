"""Real `custodia worker` processes: progress shows while a job runs, a job survives kill -9 of
its worker, and the periodic tasks are registered and run when a worker starts."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections, transaction
from django.urls import reverse

from custodia.accounts.actions import do_create_api_token
from custodia.core.actor import acting_as
from custodia.jobs.models import JobStatus
from custodia.lifecycle.tasks import BACKUP_TASKS
from custodia.scheduling.models import Service
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix
from tests.jobs.conftest import Worker, read_job, start_job, wait_for
from tests.jobs.kinds import BEACON_ENV


def test_progress_shows_while_running_and_a_job_survives_kill_9_of_its_worker(
    world: TenantMatrix, workers: Callable[..., Worker], tmp_path: Path
) -> None:
    manager = world.a.manager
    gate, marker = tmp_path / "gate", tmp_path / "running"
    first = workers("--only", "test-beacon")
    job = start_job(
        "test-gate", manager, steps=4, pause_at=2, gate=str(gate), running_marker=str(marker)
    )
    wait_for(marker.exists, what="the job to reach step 2")

    # While it runs, its committed progress is on the page (which reloads itself) and the API.
    running = read_job(job.pk, manager)
    assert (running.status, running.done, running.total) == (JobStatus.RUNNING, 2, 4)
    response = HttpsClient().act_as(manager).get(reverse("jobs:detail", args=[job.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "2 of 4 done (50%)" in body and "step 2 of 4" in body
    assert '<meta http-equiv="refresh" content="2">' in body
    with transaction.atomic(), acting_as(manager):
        _token, plain = do_create_api_token(actor=manager, name="progress")
    answer = HttpsClient(HTTP_AUTHORIZATION=f"Bearer {plain}").get(f"/api/v1/jobs/{job.pk}").json()
    assert (answer["status"], answer["done"], answer["total"], answer["stage"]) == (
        "running",
        2,
        4,
        "step 2 of 4",
    )
    assert answer["result"] is None

    # kill -9 in the middle: the job's own writes roll back; its row still says running.
    first_pid = int(marker.read_text())
    assert first_pid == first.process.pid
    first.kill()
    marker.unlink()
    assert read_job(job.pk, manager).status == JobStatus.RUNNING

    # A new worker sees the dead one's silence and runs the job again from the start.
    workers("--only", "test-beacon")
    wait_for(marker.exists, what="a new worker to take the job up")
    restarted = read_job(job.pk, manager)
    assert restarted.attempts == 2 and restarted.status == JobStatus.RUNNING
    gate.write_text("go")
    finished = wait_for(
        lambda: (j := read_job(job.pk, manager)).status == JobStatus.SUCCEEDED and j,
        what="the job to finish",
    )
    assert (finished.done, finished.total) == (4, 4)
    with transaction.atomic(), acting_as(manager):
        names = sorted(
            Service.objects.filter(name__startswith=f"gate {job.pk} ").values_list(
                "name", flat=True
            )
        )
    # Every step once: nothing of the killed attempt survived, nothing is missing.
    assert names == [f"gate {job.pk} {step}" for step in range(1, 5)]
    page = HttpsClient().act_as(manager).get(reverse("jobs:detail", args=[job.pk]))
    assert "http-equiv" not in page.content.decode()


def checkpoints(reason: str) -> int:
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_checkpoint WHERE reason = %s", [reason])
        (count,) = cursor.fetchone()
    return int(count)


# The backups' tasks (lifecycle/tasks.py), left out as `custodia serve --no-backups` does.
WITHOUT_BACKUPS = [arg for task in BACKUP_TASKS for arg in ("--without", task)]


def test_the_periodic_tasks_run_when_a_worker_starts(
    world: TenantMatrix, workers: Callable[..., Worker], tmp_path: Path
) -> None:
    beacon = tmp_path / "beacon"
    before = checkpoints("daily")
    worker = workers(*WITHOUT_BACKUPS, env={BEACON_ENV: str(beacon)})
    wait_for(beacon.exists, what="the test beacon at start")
    # The audit maintenance at start signs a checkpoint of each chain; key maintenance reports.
    wait_for(lambda: checkpoints("daily") > before, what="the audit maintenance at start")
    wait_for(lambda: "business(es) rotated" in worker.output(), what="the key maintenance")
    output = worker.output()
    assert (
        "periodic tasks audit-digest, audit-maintenance, detection, key-maintenance,"
        " membership-renewals, notices, pass-expiry, retention, subprocessor-notices,"
        " test-beacon, wallet-expiry, webhooks" in output
    )
    assert "Starting job custodia.periodic.backups" not in output  # left out: never run


def test_the_worker_lists_what_it_schedules() -> None:
    out = io.StringIO()
    call_command("worker", "--list", stdout=out)
    listing = out.getvalue()
    assert "test-probe" in listing.splitlines()[0]  # job kinds first
    for line in (
        "periodic audit-maintenance: cron '30 2 * * *' (UTC), and at start",
        "periodic audit-digest: cron '5 * * * *' (UTC), and at start",
        "periodic backups: cron '0 1 * * *' (UTC), and at start",
        "periodic keystore-backups: cron '15 1 * * *' (UTC), and at start",
        "periodic backup-drill: cron '30 4 * * *' (UTC)\n",
        "periodic key-maintenance: cron '0 3 * * *' (UTC), and at start",
        "periodic retention: cron '15 3 * * *' (UTC), and at start",
        "periodic pass-expiry: cron '5 0 * * *' (UTC), and at start",
        "periodic membership-renewals: cron '20 * * * *' (UTC), and at start",
        "periodic webhooks: cron '* * * * *' (UTC), and at start",
        "periodic notices: cron '* * * * *' (UTC), and at start",
        "periodic wallet-expiry: cron '10 * * * *' (UTC)\n",
        "periodic subprocessor-notices: cron '45 3 * * *' (UTC), and at start",
        "periodic detection: cron '*/5 * * * *' (UTC), and at start",
    ):
        assert line in listing
    out = io.StringIO()
    call_command("worker", "--list", *WITHOUT_BACKUPS, stdout=out)
    assert "backup" not in out.getvalue()


def test_the_worker_refuses_unknown_tasks_and_backups_without_recipients(settings: Any) -> None:
    with pytest.raises(CommandError, match="No periodic task named nightly"):
        call_command("worker", "--without", "nightly")
    settings.PRODUCTION = True
    settings.BACKUP_RECIPIENTS = []
    with pytest.raises(CommandError, match="Set CUSTODIA_BACKUP_RECIPIENTS"):
        call_command("worker")
    with pytest.raises(CommandError, match="--concurrency"):
        call_command("worker", "--without", "backups", "--concurrency", "0")


def test_a_worker_told_to_stop_finishes_its_job_first(
    world: TenantMatrix, workers: Callable[..., Worker], tmp_path: Path
) -> None:
    owner = world.a.owner
    gate, marker = tmp_path / "gate", tmp_path / "running"
    worker = workers("--only", "test-beacon")
    job = start_job(
        "test-gate", owner, steps=2, pause_at=1, gate=str(gate), running_marker=str(marker)
    )
    wait_for(marker.exists, what="the job to start")
    worker.process.terminate()
    time.sleep(2)
    assert worker.process.poll() is None  # still working on the job
    gate.write_text("go")
    worker.process.wait(timeout=30)
    assert read_job(job.pk, owner).status == JobStatus.SUCCEEDED
