"""The job page in Chromium at phone width: it fits 390 px, reloads itself while the job runs
(a meta refresh, no JavaScript), and stops once the job is done, showing the result link."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from custodia.core.actor import Actor, acting_as
from custodia.jobs.models import Job, JobStatus
from tests.factories import PASSWORD, TenantMatrix
from tests.servers import start_server

pytestmark = pytest.mark.e2e
CHROMIUM = "/usr/bin/chromium"


def in_thread(work: Any) -> Any:
    """Database work while Playwright's event loop runs on this thread (Django refuses it
    there): on a thread of its own, with its own connection."""

    def run() -> Any:
        try:
            return work()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def set_job(actor: Actor, job_id: uuid.UUID, **fields: Any) -> None:
    with transaction.atomic(), acting_as(actor):
        Job.objects.filter(pk=job_id).update(**fields)


@pytest.fixture
def server(live: str) -> Iterator[str]:
    base_url, stop = start_server(live, {"CUSTODIA_KEYSTORE_DIR": str(settings.KEYSTORE_DIR)})
    try:
        yield base_url
    finally:
        stop()


def test_the_job_page_fits_a_phone_and_reloads_itself_until_done(
    world: TenantMatrix, server: str
) -> None:
    from playwright.sync_api import expect, sync_playwright

    manager = world.a.manager
    # A job row as a worker leaves it mid-way (no worker here runs the test's kinds).
    with transaction.atomic(), acting_as(manager):
        job = Job.objects.create(
            tenant_id=manager.tenant_id,
            kind="export",
            started_by=manager.membership,
            status=JobStatus.RUNNING,
            done=3,
            total=10,
            stage="clients and their visits, a long stage name that must wrap on a phone",
            started_at=timezone.now(),
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(
            ignore_https_errors=True,
            base_url=server,
            viewport={"width": 390, "height": 844},
            java_script_enabled=False,
        )
        page = context.new_page()
        page.goto("/accounts/login/")
        page.get_by_label("Email", exact=True).fill(manager.user.email)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Log in", exact=True).click()
        page.wait_for_url("**/app/")

        loads: list[str] = []
        page.on("load", lambda: loads.append(time.strftime("%X")))
        page.goto(f"/jobs/{job.pk}/")
        assert page.locator("h1").inner_text().startswith("Export")
        expect(page.locator("main")).to_contain_text("3 of 10 done (30%)")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width} px wide at a 390 px viewport"

        # It reloads itself while running, and shows the progress committed meanwhile.
        in_thread(lambda: set_job(manager, job.pk, done=7, stage="visits"))
        # expect() retries across the reloads; page.content() fails when it lands on one.
        expect(page.locator("main")).to_contain_text("7 of 10 done (70%)", timeout=15_000)
        assert len(loads) >= 2

        # Done: the next reload shows the result link, and the reloading stops.
        in_thread(
            lambda: set_job(
                manager,
                job.pk,
                status=JobStatus.SUCCEEDED,
                done=10,
                finished_at=timezone.now(),
                result_label="Download the export",
                result_url="/app/",
            )
        )
        link = page.get_by_role("link", name="Download the export")
        link.wait_for(timeout=15_000)
        settled = len(loads)
        page.wait_for_timeout(5_000)
        assert len(loads) == settled, "the page kept reloading after the job finished"
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        context.close()
        browser.close()
