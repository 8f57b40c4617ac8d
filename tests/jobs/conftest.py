"""Jobs run against committed data: a scratch database of this package's own, one committed
pair of businesses in it, and real `custodia worker` processes started on it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connections, transaction

from custodia.core.actor import Actor, acting_as
from custodia.jobs.actions import do_start_job
from custodia.jobs.models import Job
from custodia.jobs.registry import PROGRESS_DATABASE
from tests import scratch
from tests.factories import TenantMatrix, build_matrix
from tests.jobs import kinds  # noqa: F401  (the test job kinds, registered)

REPO = Path(__file__).resolve().parents[2]
_world: dict[str, TenantMatrix] = {}


@pytest.fixture(scope="package")
def jobs_database(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """A migrated database of this package's own; every connection points at it meanwhile."""
    with scratch.database("jobs", django_db_blocker) as name:
        try:
            yield name
        finally:
            _world.clear()


@pytest.fixture
def live(jobs_database: str, django_db_blocker: Any) -> Iterator[str]:
    """Database access for the test, outside any test transaction: everything commits."""
    with django_db_blocker.unblock():
        yield jobs_database
        connections.close_all()


@pytest.fixture
def world(live: str) -> TenantMatrix:
    """Two businesses with every role (tests/factories.py), committed once for the package."""
    if "matrix" not in _world:
        with transaction.atomic():
            _world["matrix"] = build_matrix()
    return _world["matrix"]


def start_job(kind: str, actor: Actor, **params: Any) -> Job:
    """`do_start_job` as a page would call it: in a transaction, acting as `actor`."""
    with transaction.atomic(), acting_as(actor):
        return do_start_job(kind, params=params, actor=actor)


def read_job(job_id: uuid.UUID, actor: Actor) -> Job:
    """The job's row as `actor` sees it now, on a connection of its own (the page's view)."""
    with transaction.atomic(using=PROGRESS_DATABASE), acting_as(actor, using=PROGRESS_DATABASE):
        return Job.objects.using(PROGRESS_DATABASE).get(pk=job_id)


def queued_run_args(job: Job) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """The ids procrastinate queued for the job (what a worker hands `run_job`)."""
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT args::text FROM procrastinate_jobs WHERE id = %s", [job.queue_job_id]
        )
        args = json.loads(cursor.fetchone()[0])
    return uuid.UUID(args["job_id"]), uuid.UUID(args["tenant_id"]), uuid.UUID(args["user_id"])


class Worker:
    """A `custodia worker` subprocess on the jobs database (kill it with `kill()`)."""

    def __init__(self, database: str, log: Path, *args: str, env: dict[str, str]) -> None:
        self.log = log
        self._out = log.open("ab")
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "custodia.cli", "worker", *args],
            cwd=REPO,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
                "DJANGO_SETTINGS_MODULE": "tests.jobs.worker_settings",
                "CUSTODIA_DB_NAME": database,
                "CUSTODIA_KEYSTORE_DIR": str(settings.KEYSTORE_DIR),
                # The backups a worker takes when it starts go beside its log, never into var/
                # (where they would sit, signed by the tests' key, in the developer's stores).
                "CUSTODIA_BACKUP_DIR": str(log.parent / "backups"),
                "CUSTODIA_KEYSTORE_BACKUP_DIR": str(log.parent / "keystore-backups"),
                # Quick to notice a dead worker, so the test waits seconds, not a minute.
                "CUSTODIA_JOB_HEARTBEAT_SECONDS": "1",
                "CUSTODIA_JOB_STALLED_SECONDS": "3",
                "CUSTODIA_JOB_POLL_SECONDS": "1",
                **env,
            },
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

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
        self._out.close()


@pytest.fixture
def workers(live: str, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """`workers(*args, env={...})` starts a worker; every one is stopped after the test."""
    started: list[Worker] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Worker:
        worker = Worker(live, tmp_path / f"worker-{len(started)}.log", *args, env=env or {})
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(condition: Callable[[], Any], *, timeout: float = 60, what: str = "") -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or condition}")
