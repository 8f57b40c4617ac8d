"""Landing page, the role-aware dashboard, and error pages that reveal nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from custodia.clients.access import list_clients
from custodia.core.actor import Actor
from custodia.core.permissions import Role
from custodia.core.requestctx import body_too_large_message
from custodia.scheduling.access import list_services, list_visits, read_visit_lines
from custodia.scheduling.models import VisitStatus
from custodia.tenancy.access import list_staff
from custodia.web.decorators import member_required

UPCOMING_ON_DASHBOARD = 10


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Start and end of a calendar day in the current time zone."""
    start = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
    return start, timezone.make_aware(dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min))


def week_start(day: dt.date) -> dt.date:
    """The Monday of the week `day` falls in."""
    return day - dt.timedelta(days=day.weekday())


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """The public landing page; logged-in people go straight to their dashboard."""
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "web/home.html")


@require_safe
def signup_redirect(request: HttpRequest) -> HttpResponse:
    """`/signup/` is a short address for allauth's signup page."""
    return redirect("account_signup")


# Counting 200,000 clients on every dashboard view costs more than the rest of the page: past
# this many, the dashboard says "10000+" (the lists themselves page through everything).
DASHBOARD_COUNT_CAP = 10_000


def capped_counts(*querysets: QuerySet[Any]) -> list[str]:
    """How many rows each queryset has, read no further than the cap, in one statement."""
    compiled = [
        rows.order_by()[: DASHBOARD_COUNT_CAP + 1].values("pk").query.sql_with_params()
        for rows in querysets
    ]
    # Django's own SQL for each queryset, its values bound as parameters: one round trip.
    counts = ", ".join(f"(SELECT count(*) FROM ({sql}) AS capped)" for sql, _ in compiled)  # noqa: S608
    params = [value for _, values in compiled for value in values]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts}", params)
        row = cursor.fetchone()
    return [f"{DASHBOARD_COUNT_CAP}+" if n > DASHBOARD_COUNT_CAP else str(n) for n in row]


def exist_each(*querysets: QuerySet[Any]) -> list[bool]:
    """Whether each queryset has a row, in one statement."""
    compiled = [rows.order_by().values("pk")[:1].query.sql_with_params() for rows in querysets]
    tests = ", ".join(f"EXISTS ({sql})" for sql, _ in compiled)
    params = [value for _, values in compiled for value in values]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {tests}", params)  # noqa: S608 - Django's own SQL, bound values
        row = cursor.fetchone()
    return [bool(value) for value in row]


def first_steps(actor: Actor) -> list[dict[str, Any]] | None:
    """A new business's checklist for its owner (services, staff, clients, a first visit), each
    ticked from the business's own rows; None once every step is done."""
    done = exist_each(
        list_services(actor),
        list_staff(actor).exclude(role=Role.OWNER),
        list_clients(actor),
        list_visits(actor),
    )
    if all(done):
        return None
    steps = [
        ("Add the services you offer", "service_new"),
        ("Invite your staff", "staff_list"),
        ("Add your first client", "client_new"),
        ("Schedule your first visit", "visit_new"),
    ]
    return [
        {"label": label, "url": reverse(name), "done": is_done}
        for (label, name), is_done in zip(steps, done, strict=True)
    ]


@require_safe
@member_required()
def dashboard(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Counts for managers, the next visits for staff; clients go to their portal."""
    if actor.role == Role.CLIENT:
        return redirect("portal")
    now = timezone.now()
    today = timezone.localdate()
    context: dict[str, object] = {"today": today}
    if actor.is_manager:
        monday = week_start(today)
        week_from, _ = day_bounds(monday)
        _, week_to = day_bounds(monday + dt.timedelta(days=6))
        day_from, day_to = day_bounds(today)
        # Lines of what the tables show, not model instances (scheduling/rows.py).
        todays_visits, pending_requests = read_visit_lines(
            actor,
            list_visits(actor, start=day_from, end=day_to),
            list_visits(actor, start=now).filter(status=VisitStatus.REQUESTED),
        )
        client_count, staff_count, week_visit_count = capped_counts(
            list_clients(actor),
            list_staff(actor),
            list_visits(actor, start=week_from, end=week_to),
        )
        context.update(
            first_steps=first_steps(actor) if actor.role == Role.OWNER else None,
            client_count=client_count,
            staff_count=staff_count,
            week_visit_count=week_visit_count,
            todays_visits=todays_visits,
            pending_requests=pending_requests,
        )
    else:
        [next_visits] = read_visit_lines(
            actor,
            list_visits(actor, start=now, staff_id=actor.membership.pk).exclude(
                status=VisitStatus.CANCELLED
            )[:UPCOMING_ON_DASHBOARD],
        )
        context["next_visits"] = next_visits
    return render(request, "web/dashboard.html", context)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """400 without details; a Host this site does not answer for is told where it does; 413 for
    a body over the size limit (Django reports it as a 400)."""
    if isinstance(exception, DisallowedHost):
        message = f"Custodia does not answer at this address. Use {settings.PUBLIC_URL}/ instead."
        context = {"title": "Wrong address", "message": message}
        return render(request, "web/error.html", context, status=400)
    if isinstance(exception, RequestDataTooBig):
        context = {"title": "Too large", "message": body_too_large_message()}
        return render(request, "web/error.html", context, status=413)
    return render(request, "web/error.html", {"title": "Bad request"}, status=400)


def forbidden(request: HttpRequest, exception: Exception) -> HttpResponse:
    """403 without saying which permission was missing."""
    return render(request, "web/error.html", {"title": "Not allowed"}, status=403)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """403 for a form without a valid CSRF token, in our layout, without Django's reason."""
    return render(request, "web/error.html", {"title": "Form expired"}, status=403)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 without saying what was looked for."""
    return render(request, "web/error.html", {"title": "Not found"}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """500 without a trace; the context processors are skipped because the database may be down."""
    from django.template.loader import get_template

    html = get_template("web/error.html").render({"title": "Something went wrong"})
    return HttpResponse(html, status=500)
