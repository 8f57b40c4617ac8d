"""`custodia worker`: run background jobs and the periodic tasks (procrastinate), until stopped.

One worker per host is plenty; `custodia serve` starts one beside the web workers. Several may
run against one database: each job runs once, each periodic tick is deferred once, and the jobs
of a worker that stops answering (kill -9, a lost host) start again on a live one once its
heartbeat is `CUSTODIA_JOB_STALLED_SECONDS` old.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from procrastinate import exceptions as procrastinate_exceptions
from procrastinate.contrib.django import app
from procrastinate.contrib.django.django_connector import DjangoConnector

from custodia.jobs.registry import PeriodicTask, job_kinds, periodic_tasks
from custodia.jobs.runner import PERIODIC_PREFIX, requeue_stalled_jobs, task_lock
from custodia.ops.tasks import BACKUP_TASKS

logger = logging.getLogger(__name__)
# Told to stop, the worker takes no new job and asks running ones to stop after this long; a
# job (run in a thread) cannot be interrupted and is finished first (tests/jobs/test_worker.py).
SHUTDOWN_GRACE_SECONDS = 5


def backup_recipients_problem() -> str | None:
    """Why production may not schedule backups here, if it may not."""
    if settings.PRODUCTION and not settings.BACKUP_RECIPIENTS:
        return (
            "Set CUSTODIA_BACKUP_RECIPIENTS (age public keys whose identities are kept off "
            "this host) for the daily backups, or leave them out (--without backups --without "
            "keystore-backups --without backup-drill; "
            "`custodia serve --no-backups`) if another host makes them."
        )
    passphrase = settings.PGBACKREST_PASSPHRASE_FILE
    if settings.PRODUCTION and settings.BACKUP_ENGINE == "pgbackrest" and not passphrase.exists():
        return (
            f"No pgbackrest passphrase at {passphrase} for the daily backups "
            "(CUSTODIA_PGBACKREST_PASSPHRASE_FILE, docs/backups.md), or leave them out "
            "(--without backups; `custodia serve --no-backups`) if another host makes them."
        )
    return None


class Command(BaseCommand):
    help = "Run background jobs and the periodic tasks (at start and on schedule) until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--without",
            action="append",
            default=[],
            metavar="TASK",
            help="leave this periodic task out (repeatable; another host runs it)",
        )
        parser.add_argument(
            "--only",
            action="append",
            default=[],
            metavar="TASK",
            help="schedule only this periodic task (repeatable)",
        )
        parser.add_argument(
            "--concurrency",
            type=int,
            default=2,
            help="jobs run at once (default 2)",
        )
        parser.add_argument(
            "--list",
            action="store_true",
            help="print the job kinds and the periodic tasks with their schedules, then exit",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not 1 <= options["concurrency"] <= 32:
            raise CommandError("--concurrency must be between 1 and 32.")
        # Every task module (settings.PROCRASTINATE_IMPORT_PATHS) before choosing among them.
        app.perform_import_paths()
        chosen = self._chosen(options["without"], options["only"])
        if options["list"]:
            self._list(chosen)
            return
        if any(task.name in BACKUP_TASKS for task in chosen):
            problem = backup_recipients_problem()
            if problem is not None:
                raise CommandError(problem)
        keep = {f"{PERIODIC_PREFIX}{task.name}" for task in chosen}
        registry = app.periodic_registry.periodic_tasks
        for key in [key for key in registry if key[0].startswith(PERIODIC_PREFIX)]:
            if key[0] not in keep:
                del registry[key]
        names = ", ".join(task.name for task in chosen) or "none"
        self.stdout.write(f"custodia worker: periodic tasks {names}")
        self.stdout.flush()
        connector = app.connector
        assert isinstance(connector, DjangoConnector)  # settings: procrastinate's Django app
        with app.replace_connector(connector.get_worker_connector()) as worker_app:
            asyncio.run(self._run(worker_app, chosen, options["concurrency"]))

    def _chosen(self, without: list[str], only: list[str]) -> list[PeriodicTask]:
        tasks = periodic_tasks()
        known = {task.name for task in tasks}
        unknown = sorted((set(without) | set(only)) - known)
        if unknown:
            raise CommandError(
                f"No periodic task named {', '.join(unknown)};"
                f" there are {', '.join(sorted(known))}."
            )
        return [
            task for task in tasks if task.name not in without and (not only or task.name in only)
        ]

    def _list(self, chosen: list[PeriodicTask]) -> None:
        self.stdout.write("job kinds: " + (", ".join(job_kinds()) or "none"))
        for task in chosen:
            start = ", and at start" if task.run_at_start else ""
            self.stdout.write(f"periodic {task.name}: cron {task.cron!r} (UTC){start}")

    async def _run(self, worker_app: Any, chosen: list[PeriodicTask], concurrency: int) -> None:
        stalled_after = float(settings.JOB_STALLED_SECONDS)
        async with worker_app.open_async():
            await requeue_stalled_jobs(stalled_after)
            await self._defer_at_start(worker_app, chosen)
            watcher = asyncio.create_task(self._watch_stalled(stalled_after))
            try:
                await worker_app.run_worker_async(
                    name=f"custodia-{socket.gethostname()}-{os.getpid()}",
                    concurrency=concurrency,
                    update_heartbeat_interval=float(settings.JOB_HEARTBEAT_SECONDS),
                    stalled_worker_timeout=stalled_after,
                    fetch_job_polling_interval=float(settings.JOB_POLL_SECONDS),
                    shutdown_graceful_timeout=float(SHUTDOWN_GRACE_SECONDS),
                    delete_jobs="successful",
                )
            finally:
                watcher.cancel()

    @staticmethod
    async def _defer_at_start(worker_app: Any, chosen: list[PeriodicTask]) -> None:
        for task in chosen:
            if not task.run_at_start:
                continue
            deferrer = worker_app.configure_task(
                name=f"{PERIODIC_PREFIX}{task.name}", queueing_lock=task_lock(task)
            )
            try:
                await deferrer.defer_async(timestamp=int(time.time()))
            except procrastinate_exceptions.AlreadyEnqueued:
                continue  # another worker queued it and no one has run it yet

    @staticmethod
    async def _watch_stalled(stalled_after: float) -> None:
        """Look for the jobs of dead workers every half stall period."""
        while True:
            await asyncio.sleep(stalled_after / 2)
            try:
                await requeue_stalled_jobs(stalled_after)
            except Exception as exc:  # a database outage: the worker's own loop says so too
                logger.error("stalled jobs not checked: %s", type(exc).__name__)
