"""Job kinds and a periodic task of the tests' own, loaded by the test process and by the
workers the tests start (tests/jobs/worker_settings.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from django.db import connection

from custodia.clients.models import Client
from custodia.core.actor import current_actor
from custodia.jobs.registry import JobContext, JobFailed, job_task, periodic_task
from custodia.scheduling.actions import do_create_service
from custodia.scheduling.models import Service
from custodia.tenancy.actors import JobActor
from custodia.tenancy.models import Business, Membership

# What the probe saw, by job id (the in-process runs read it back).
PROBES: dict[str, dict[str, Any]] = {}
BEACON_ENV = "CUSTODIA_TEST_BEACON"


@job_task("test-probe")
def probe(ctx: JobContext) -> None:
    """Look around as the job actor, try to reach another business, and write one row."""
    other = ctx.params["other_business"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM clients_client WHERE tenant_id = %s", [other])
        (raw_foreign_clients,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM jobs_job")
        (jobs_seen,) = cursor.fetchone()
    PROBES[str(ctx.job.pk)] = {
        "actor_is_the_job": current_actor() is ctx.actor and isinstance(ctx.actor, JobActor),
        "own_clients": Client.objects.count(),
        "foreign_client_by_id": Client.objects.filter(pk=ctx.params["other_client"]).exists(),
        "foreign_clients_by_sql": raw_foreign_clients,
        "foreign_memberships": Membership.objects.filter(tenant_id=other).count(),
        "foreign_business": Business.objects.filter(pk=other).exists(),
        "jobs_seen": jobs_seen,
    }
    ctx.progress(done=1, total=2, stage="probed")
    do_create_service(
        actor=ctx.actor, name=f"probe {ctx.job.pk}", duration_minutes=30, price_cents=100
    )
    ctx.progress(done=2, stage="wrote a service")
    ctx.finish(result={"label": "See the services", "url": "/app/services/"})


@job_task("test-gate")
def gated(ctx: JobContext) -> None:
    """`steps` steps, each writing a service; waits at `pause_at` until the file `gate` exists
    (and writes its pid to `running_marker` first); stops at `fail_at`."""
    steps, pause_at, gate = ctx.params["steps"], ctx.params["pause_at"], Path(ctx.params["gate"])
    marker = ctx.params.get("running_marker")
    for step in range(1, steps + 1):
        do_create_service(
            actor=ctx.actor, name=f"gate {ctx.job.pk} {step}", duration_minutes=30, price_cents=100
        )
        ctx.progress(done=step, total=steps, stage=f"step {step} of {steps}")
        if step == ctx.params.get("fail_at"):
            raise JobFailed("Stopped on purpose.")
        if step == pause_at:
            if marker:
                Path(marker).write_text(str(os.getpid()))
            deadline = time.monotonic() + 120
            while not gate.exists() and time.monotonic() < deadline:
                time.sleep(0.1)


@job_task("test-crash")
def crash(ctx: JobContext) -> None:
    """Fails with an exception whose text holds customer data."""
    ctx.progress(done=1, total=3, stage="reading")
    raise ValueError(f"could not parse {ctx.params['secret']}")


@job_task("test-refuse")
def refuse(ctx: JobContext) -> None:
    """Stops with a message meant for the person who started it."""
    raise JobFailed("There is nothing to do for this business.")


@job_task("test-count")
def count(ctx: JobContext) -> None:
    """Reports how many services the business has, as its result label."""
    ctx.finish(result={"label": f"{Service.objects.count()} services", "url": "/app/services/"})


@periodic_task("test-beacon", cron="0 0 1 1 *", run_at_start=True)
def beacon() -> None:
    """Appends a line to the file named by CUSTODIA_TEST_BEACON (if set)."""
    path = os.environ.get(BEACON_ENV)
    if path:
        with open(path, "a") as out:
            out.write(f"{os.getpid()}\n")
