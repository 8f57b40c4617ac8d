"""What background work exists: long jobs one person starts, and periodic platform tasks.

```python
@job_task("export")                     # a job kind: a short slug
def export_business(ctx: JobContext) -> None:
    ctx.actor        # the job actor (tenancy/actors.py: job_actor), already acting
    ctx.params       # the JSON dict given to do_start_job
    ctx.progress(done=10, total=200, stage="clients")   # committed at once
    ctx.finish(result={"label": "Download the export", "url": "/exports/3f.../"})

@periodic_task("retention", cron="15 3 * * *", run_at_start=True)
def enforce_retention() -> None: ...
```

A job's function runs inside one transaction and `acting_as(ctx.actor)`: the row-level
security of the starter's one business, never a bypass (jobs/runner.py). Its progress commits
at once through a connection of its own (the `jobs` database alias), so the job's page shows it
while the work goes on; if the job fails or its worker dies, its transaction rolls back whole
and a worker starts it again from the beginning (procrastinate's stalled jobs, `custodia worker`).

A periodic task is platform-wide work with no actor of its own: when it touches businesses it
does so one business at a time, each in its own transaction and context. The worker defers
`run_at_start` ones once when it starts, and every one at its cron times (UTC); procrastinate
makes sure a tick is deferred once however many workers run.

Task modules are each installed app's `tasks.py` and the modules in
`settings.PROCRASTINATE_IMPORT_PATHS`; both the worker and the web processes load them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from custodia.core.actor import activate
from custodia.jobs.models import ERROR_LENGTH, STAGE_LENGTH, Job
from custodia.tenancy.actors import JobActor

# Where progress is written: the same app role, its own connection (settings.DATABASES).
PROGRESS_DATABASE = "jobs"
KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


class JobFailed(Exception):
    """Raised by a job with a message meant for the person who started it.

    The message is shown on the job's page, so it must never hold customer data (a name, an
    address): say what went wrong in general terms. Any other exception is shown as a generic
    failure, its text kept out of the page and the logs alike.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message[:ERROR_LENGTH]


@dataclass
class JobContext:
    """What a running job is handed: its actor, its parameters, and a way to report."""

    job: Job
    actor: JobActor
    params: dict[str, Any]
    result: dict[str, str] = field(default_factory=dict)

    def progress(self, *, done: int, total: int | None = None, stage: str = "") -> None:
        """Record how far the job is, committed at once (the page shows it on its next look).

        `total` None keeps the total given before; `stage` is a short phrase (what is being
        worked on, never a customer's data).
        """
        if total is not None:
            self.job.total = max(0, int(total))
        done = max(0, int(done))
        if self.job.total is not None:
            done = min(done, self.job.total)
        self.job.done = done
        if stage:
            self.job.stage = stage[:STAGE_LENGTH]
        write_progress(
            self.actor,
            self.job.pk,
            done=self.job.done,
            total=self.job.total,
            stage=self.job.stage,
        )

    def finish(self, *, result: dict[str, str] | None = None) -> None:
        """The job's result link (`label`, `url`), shown once the job's work has committed."""
        result = result or {}
        unknown = set(result) - {"label", "url"}
        if unknown:
            raise ValueError(f"A job result has a label and a url, not {sorted(unknown)}.")
        url = str(result.get("url", ""))
        if url and not url.startswith("/"):
            raise ValueError("A job result's url is a path on this site (starting with /).")
        self.result = {"label": str(result.get("label", ""))[:120], "url": url[:300]}


def write_progress(actor: JobActor, job_id: uuid.UUID, **fields: Any) -> None:
    """Update the job's row in a short transaction of its own, as the job actor."""
    with transaction.atomic(using=PROGRESS_DATABASE):
        activate(actor, using=PROGRESS_DATABASE)
        Job.objects.using(PROGRESS_DATABASE).filter(pk=job_id).update(
            **fields, updated_at=timezone.now()
        )


JobFunction = Callable[[JobContext], None]
PeriodicFunction = Callable[[], None]


@dataclass(frozen=True)
class PeriodicTask:
    name: str
    cron: str
    run_at_start: bool
    function: PeriodicFunction


_JOB_KINDS: dict[str, JobFunction] = {}
_PERIODIC: dict[str, PeriodicTask] = {}
# Called with each periodic task as it is registered (jobs/runner.py binds it to procrastinate).
_periodic_listeners: list[Callable[[PeriodicTask], None]] = []


def job_task(kind: str) -> Callable[[JobFunction], JobFunction]:
    """Register the decorated function as the job of `kind` (a short slug, unique)."""
    if not KIND_PATTERN.match(kind):
        raise ValueError(f"A job kind is a short lowercase slug, not {kind!r}.")

    def register(function: JobFunction) -> JobFunction:
        existing = _JOB_KINDS.get(kind)
        if existing is not None and _qualname(existing) != _qualname(function):
            raise ValueError(f"Two jobs of kind {kind!r}: {_qualname(existing)} and the new one.")
        _JOB_KINDS[kind] = function
        return function

    return register


def periodic_task(
    name: str, *, cron: str, run_at_start: bool = False
) -> Callable[[PeriodicFunction], PeriodicFunction]:
    """Register the decorated function to run at `cron` (5 fields, UTC) and, if
    `run_at_start`, once when a worker starts."""
    if not KIND_PATTERN.match(name):
        raise ValueError(f"A periodic task's name is a short lowercase slug, not {name!r}.")
    if len(cron.split()) not in (5, 6):
        raise ValueError(f"{cron!r} is not a cron expression (5 fields).")

    def register(function: PeriodicFunction) -> PeriodicFunction:
        existing = _PERIODIC.get(name)
        if existing is not None and _qualname(existing.function) != _qualname(function):
            raise ValueError(f"Two periodic tasks named {name!r}.")
        task = PeriodicTask(name, cron, run_at_start, function)
        _PERIODIC[name] = task
        for listener in _periodic_listeners:
            listener(task)
        return function

    return register


def job_function(kind: str) -> JobFunction:
    """The function registered for `kind`; LookupError if none."""
    try:
        return _JOB_KINDS[kind]
    except KeyError:
        raise LookupError(f"No job of kind {kind!r} is registered.") from None


def job_kinds() -> list[str]:
    return sorted(_JOB_KINDS)


def periodic_tasks() -> list[PeriodicTask]:
    return [_PERIODIC[name] for name in sorted(_PERIODIC)]


def on_periodic_registered(listener: Callable[[PeriodicTask], None]) -> None:
    """Call `listener` for every periodic task, those registered already and those to come."""
    _periodic_listeners.append(listener)
    for task in list(_PERIODIC.values()):
        listener(task)


def _qualname(function: Callable[..., Any]) -> str:
    return f"{function.__module__}.{function.__qualname__}"
