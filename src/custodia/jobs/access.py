"""Reads of jobs: the person who started one, and the business's owners, see it; for anyone
else (another member, another business, a token of either) it does not exist."""

from __future__ import annotations

from django.db.models import Q
from django.http import Http404

from custodia.core.actor import Actor
from custodia.core.audit import note_refusal
from custodia.core.permissions import Permission, Role
from custodia.jobs.models import Job
from custodia.tenancy.access import parse_id


def access_job_by_id(actor: Actor, job_id: object) -> Job:
    """The job, if the actor started it or owns its business; otherwise 404.

    Row-level security says the same (jobs/migrations/0002_rls.py); this check comes first so
    the answer never depends on it alone. A job's row holds its kind, progress and result link,
    no customer data, so reading it is not an audit event; a refusal is.
    """
    actor.require(Permission.JOBS_READ)  # a token without the scope: 403, as for every read
    parsed = parse_id(job_id)
    mine = Q(started_by_id=actor.membership.pk)
    if actor.role == Role.OWNER:
        mine |= Q(pk__isnull=False)
    job = Job.objects.filter(mine, pk=parsed, tenant_id=actor.tenant_id).first()
    if job is None:
        note_refusal("job", parsed)
        raise Http404("No such job.")
    return job
