"""A job runs as the job actor inside its one business; its page and API answer only its
starter and the business's owners; a failure shows a safe message and logs no customer data."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connections, transaction
from django.urls import reverse

from custodia.accounts.actions import do_create_api_token
from custodia.clients.models import Client
from custodia.core.actor import Actor, acting_as, current_actor
from custodia.core.requestctx import running_job
from custodia.jobs.models import Job, JobStatus
from custodia.jobs.registry import JobContext, for_each_business
from custodia.jobs.runner import GENERIC_FAILURE, UNKNOWN_KIND, _claim, run_job
from custodia.scheduling.actions import do_create_service
from custodia.scheduling.models import Service
from custodia.tenancy.actors import SystemActor
from custodia.tenancy.models import Business
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix
from tests.jobs.conftest import queued_run_args, read_job, start_job
from tests.jobs.kinds import PROBES


def run_claim(job: Job) -> Any:
    """The job actor a worker would build for the job (marking it running)."""
    claimed = _claim(*queued_run_args(job))
    assert claimed is not None
    return claimed[1]


def run_now(job: Job) -> Job:
    """What a worker does with the queued job, here in this process."""
    run_job(*queued_run_args(job))
    connections["default"].close()
    return job


def audit_rows(where: str, params: list[Any]) -> list[dict[str, Any]]:
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT action, tenant_id, actor_user_id, actor_role, target_id, request_id,"
            f" user_agent FROM audit_auditevent WHERE {where} ORDER BY id",
            params,
        )
        columns = [c.name for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def test_a_job_runs_as_the_job_actor_inside_its_business_only(world: TenantMatrix) -> None:
    a, b = world.a, world.b
    job = start_job(
        "test-probe",
        a.manager,
        other_business=str(b.owner.tenant_id),
        other_client=str(b.client.pk),
    )
    assert read_job(job.pk, a.manager).status == JobStatus.QUEUED
    run_now(job)

    seen = PROBES[str(job.pk)]
    assert seen["actor_is_the_job"]
    assert seen["own_clients"] == 2  # its own business's clients, as the manager sees them
    # Another business's rows do not exist for it, however it asks.
    assert seen["foreign_client_by_id"] is False
    assert seen["foreign_clients_by_sql"] == 0
    assert seen["foreign_memberships"] == 0
    assert seen["foreign_business"] is False
    finished = read_job(job.pk, a.manager)
    assert finished.status == JobStatus.SUCCEEDED
    assert (finished.done, finished.total, finished.stage) == (2, 2, "wrote a service")
    assert (finished.result_label, finished.result_url) == ("See the services", "/app/services/")
    assert finished.attempts == 1 and finished.finished_at is not None

    # The trail: the start by the manager; the job's write by the manager's unique user id,
    # naming the job.
    (started,) = audit_rows("action = 'job.start' AND target_id = %s", [str(job.pk)])
    assert started["actor_user_id"] == a.manager.user.pk
    assert started["tenant_id"] == a.manager.tenant_id
    written = audit_rows("request_id = %s", [f"job-{job.pk.hex}"])
    assert [row["action"] for row in written] == ["service.create"]
    assert written[0]["actor_user_id"] == a.manager.user.pk
    assert written[0]["tenant_id"] == a.manager.tenant_id
    assert written[0]["user_agent"] == "custodia job: test-probe"


def test_a_job_sees_only_the_jobs_its_starter_may(world: TenantMatrix) -> None:
    a, b = world.a, world.b
    start_job("test-count", a.owner)  # someone else's job in the same business
    job = start_job(
        "test-probe", a.staff, other_business=str(b.owner.tenant_id), other_client=str(b.client.pk)
    )
    run_now(job)
    # Staff may not write services: the job fails as its starter would, and says so safely.
    finished = read_job(job.pk, a.staff)
    assert finished.status == JobStatus.FAILED
    assert finished.error == GENERIC_FAILURE
    with transaction.atomic(), acting_as(a.staff):
        mine = Job.objects.count()
    assert PROBES[str(job.pk)]["jobs_seen"] == mine  # the staff member's own, no one else's


def test_a_failure_shows_a_safe_message_and_logs_no_customer_data(
    world: TenantMatrix, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "Miso's door code 4711"
    job = start_job("test-crash", world.a.owner, secret=secret)
    with caplog.at_level(logging.DEBUG):
        run_now(job)
    failed = read_job(job.pk, world.a.owner)
    assert failed.status == JobStatus.FAILED
    assert failed.error == GENERIC_FAILURE
    assert failed.done == 1  # how far it got is kept
    assert secret not in caplog.text and "4711" not in caplog.text
    assert f"job {job.pk} (test-crash) failed: ValueError" in caplog.text


def test_a_job_may_stop_with_a_message_for_its_starter(world: TenantMatrix) -> None:
    job = start_job("test-refuse", world.a.owner)
    run_now(job)
    failed = read_job(job.pk, world.a.owner)
    assert (failed.status, failed.error) == (
        JobStatus.FAILED,
        "There is nothing to do for this business.",
    )


def test_a_failed_job_leaves_nothing_half_written(world: TenantMatrix, tmp_path: Any) -> None:
    """The job's work is one transaction: its writes before the failure are undone, while
    the progress it reported stays."""
    job = start_job(
        "test-gate", world.a.owner, steps=3, pause_at=0, fail_at=2, gate=str(tmp_path / "g")
    )
    run_now(job)
    failed = read_job(job.pk, world.a.owner)
    assert (failed.status, failed.error, failed.done) == (
        JobStatus.FAILED,
        "Stopped on purpose.",
        2,
    )
    with transaction.atomic(), acting_as(world.a.owner):
        assert not Service.objects.filter(name__startswith=f"gate {job.pk} ").exists()


# --- Who sees a job: its page and its API -----------------------------------------------------


def page(actor: Actor, job: Job) -> Any:
    return HttpsClient().act_as(actor).get(reverse("jobs:detail", args=[job.pk]))


def api(actor: Actor, job: Job, scopes: list[str] | None = None) -> Any:
    with transaction.atomic(), acting_as(actor):
        _token, plain = do_create_api_token(actor=actor, name="jobs test", scopes=scopes)
    return HttpsClient(HTTP_AUTHORIZATION=f"Bearer {plain}").get(f"/api/v1/jobs/{job.pk}")


@pytest.fixture
def managers_job(world: TenantMatrix) -> Job:
    job = start_job("test-count", world.a.manager)
    return run_now(job)


def test_the_starter_and_the_owners_see_the_job(world: TenantMatrix, managers_job: Job) -> None:
    for actor in (world.a.manager, world.a.owner):
        response = page(actor, managers_job)
        assert response.status_code == 200
        body = response.content.decode()
        assert "Done" in body and 'href="/app/services/"' in body and " services</a>" in body
        assert 'http-equiv="refresh"' not in body  # finished: no more reloading
        answer = api(actor, managers_job).json()
        assert answer["status"] == "succeeded"
        assert answer["result"]["url"] == "/app/services/"
        assert answer["page"] == reverse("jobs:detail", args=[managers_job.pk])


@pytest.mark.parametrize("who", ["staff", "other_staff", "client_login"])
def test_other_members_get_404(world: TenantMatrix, managers_job: Job, who: str) -> None:
    actor = getattr(world.a, who)
    assert page(actor, managers_job).status_code == 404
    if who != "client_login":  # clients have no API tokens
        assert api(actor, managers_job).status_code == 404


def test_another_business_gets_404(world: TenantMatrix, managers_job: Job) -> None:
    assert page(world.outsider, managers_job).status_code == 404
    assert api(world.outsider, managers_job).status_code == 404
    assert api(world.b.manager, managers_job).status_code == 404
    # A malformed or unknown id is not found either.
    client = HttpsClient().act_as(world.a.owner)
    assert client.get("/jobs/not-a-job/").status_code == 404
    assert client.get("/jobs/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_a_token_without_the_jobs_scope_is_refused(world: TenantMatrix, managers_job: Job) -> None:
    response = api(world.a.manager, managers_job, scopes=["clients:record:read"])
    assert response.status_code == 403


def test_a_client_sees_their_own_job(world: TenantMatrix) -> None:
    job = run_now(start_job("test-count", world.a.client_login))
    assert page(world.a.client_login, job).status_code == 200
    assert page(world.a.owner, job).status_code == 200
    assert page(world.a.manager, job).status_code == 404


def test_a_job_of_a_kind_no_worker_knows_fails_plainly(world: TenantMatrix) -> None:
    job = start_job("test-count", world.a.owner)
    with transaction.atomic(), acting_as(world.a.owner):
        Job.objects.filter(pk=job.pk).update(kind="retired-kind")
    run_now(job)
    failed = read_job(job.pk, world.a.owner)
    assert failed.status == JobStatus.FAILED
    assert failed.error == UNKNOWN_KIND


def test_a_finished_job_is_not_run_again(world: TenantMatrix) -> None:
    """A duplicate delivery of the queue's message (or a late retry) changes nothing."""
    job = run_now(
        start_job(
            "test-probe",
            world.a.owner,
            other_business=str(world.b.owner.tenant_id),
            other_client=str(world.b.client.pk),
        )
    )
    run_now(job)
    again = read_job(job.pk, world.a.owner)
    assert again.attempts == 1 and again.status == JobStatus.SUCCEEDED
    with transaction.atomic(), acting_as(world.a.owner):
        assert Service.objects.filter(name=f"probe {job.pk}").count() == 1


def test_do_start_job_refuses_unknown_kinds_and_bad_parameters(world: TenantMatrix) -> None:
    with pytest.raises(LookupError):
        start_job("no-such-kind", world.a.owner)
    with pytest.raises(ValidationError, match="plain JSON"):
        start_job("test-count", world.a.owner, when=object())
    with pytest.raises(ValidationError, match="too large"):
        start_job("test-count", world.a.owner, blob="x" * 20_000)
    # Nothing was queued or recorded for them.
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM jobs_job WHERE kind = 'no-such-kind'")
        assert cursor.fetchone() == (0,)


def test_a_periodic_task_works_one_business_at_a_time(world: TenantMatrix) -> None:
    """`for_each_business`: each business in its own transaction and context, as a system
    actor that sees that business alone; a failing business is rolled back alone."""
    seen: dict[Any, dict[str, Any]] = {}
    a_id, b_id = world.a.owner.tenant_id, world.b.owner.tenant_id

    def sweep(actor: SystemActor) -> None:
        seen[actor.tenant_id] = {
            "current": current_actor() is actor,
            "businesses": set(Business.objects.values_list("id", flat=True)),
            "clients": set(Client.objects.values_list("tenant_id", flat=True)),
        }
        do_create_service(
            actor=actor, name=f"sweep {actor.tenant_id}", duration_minutes=5, price_cents=0
        )
        if actor.tenant_id == b_id:
            raise ValueError("business B's sweep fails")

    with running_job("task-test-sweep", "test-sweep"):
        done, failed = for_each_business("test-sweep", sweep)
    assert (done, failed) == (1, 1)
    assert seen[a_id] == {"current": True, "businesses": {a_id}, "clients": {a_id}}
    assert seen[b_id] == {"current": True, "businesses": {b_id}, "clients": {b_id}}
    with transaction.atomic(), acting_as(world.a.owner):
        assert Service.objects.filter(name=f"sweep {a_id}").count() == 1
    with transaction.atomic(), acting_as(world.b.owner):
        assert not Service.objects.filter(name=f"sweep {b_id}").exists()  # rolled back alone
    (row,) = audit_rows("request_id = %s", ["task-test-sweep"])
    assert (row["action"], row["tenant_id"], row["actor_user_id"], row["actor_role"]) == (
        "service.create",
        a_id,
        None,
        "owner",
    )


@pytest.mark.parametrize("url", ["https://evil.test/", "//evil.test/x", "/\\evil.test", "x/y"])
def test_a_result_link_stays_on_this_site(url: str) -> None:
    ctx = JobContext(job=Job(), actor=None, params={})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="path on this site"):
        ctx.finish(result={"label": "Download", "url": url})
    ctx.finish(result={"label": "Download", "url": "/exports/3f/"})
    assert ctx.result == {"label": "Download", "url": "/exports/3f/"}


def test_row_level_security_guards_jobs_below_the_access_functions(world: TenantMatrix) -> None:
    """Straight to the table, past jobs/access.py: only the starter and the owners read a job,
    only the starter changes it, no one starts one in another's name, and without a verified
    context there is nothing at all."""
    a = world.a
    job = start_job("test-count", a.manager)
    for actor, visible in (
        (a.manager, True),
        (a.owner, True),
        (a.staff, False),
        (a.client_login, False),
        (world.outsider, False),
    ):
        with transaction.atomic(), acting_as(actor):
            assert Job.objects.filter(pk=job.pk).exists() is visible, actor.role
    with transaction.atomic(), acting_as(a.owner):
        assert Job.objects.filter(pk=job.pk).update(stage="owner was here") == 0
    with transaction.atomic(), connections["default"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM jobs_job")  # no context: the app role sees none
        assert cursor.fetchone() == (0,)
    with pytest.raises(DatabaseError), transaction.atomic(), acting_as(a.owner):
        Job.objects.create(tenant_id=a.owner.tenant_id, kind="x", started_by=a.manager.membership)


def test_progress_of_every_row_is_written_a_few_times_a_second(world: TenantMatrix) -> None:
    """A job reporting each of 2,000 rows costs a handful of writes, and the page still gets a
    new stage at once and the last step."""
    job = start_job("test-count", world.a.owner)
    actor = run_claim(job)
    ctx = JobContext(job=read_job(job.pk, world.a.owner), actor=actor, params={})
    writes = []
    with connections["jobs"].execute_wrapper(
        lambda execute, sql, *rest: writes.append(sql) or execute(sql, *rest)
    ):
        ctx.progress(done=0, total=2000, stage="rows")
        for row in range(1, 2000):
            ctx.progress(done=row)
        seen = read_job(job.pk, world.a.owner)
        assert (seen.total, seen.stage) == (2000, "rows")
        ctx.progress(done=2000)
    updates = [sql for sql in writes if sql.startswith("UPDATE")]
    assert 2 <= len(updates) <= 10
    assert read_job(job.pk, world.a.owner).done == 2000
