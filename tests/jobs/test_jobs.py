"""A job runs as the job actor inside its one business; its page and API answer only its
starter and the business's owners; a failure shows a safe message and logs no customer data."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.db import connections, transaction
from django.urls import reverse

from custodia.accounts.actions import do_create_api_token
from custodia.core.actor import Actor, acting_as
from custodia.jobs.models import Job, JobStatus
from custodia.jobs.runner import GENERIC_FAILURE, run_job
from custodia.scheduling.models import Service
from tests.conftest import HttpsClient
from tests.factories import TenantMatrix
from tests.jobs.conftest import queued_run_args, read_job, start_job
from tests.jobs.kinds import PROBES


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
