"""Services, the week calendar, visits, staff's day, and clients' visit requests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from custodia.clients.access import home_access_and_hold, list_clients
from custodia.core.actor import Actor
from custodia.core.audit import AuditAction, record, record_bulk_read
from custodia.core.permissions import Permission
from custodia.scheduling import access
from custodia.scheduling.actions import (
    do_confirm_visit,
    do_create_service,
    do_create_visit,
    do_request_visit,
    do_update_service,
    do_update_visit,
)
from custodia.scheduling.models import Service, Visit, VisitStatus
from custodia.tenancy.access import list_staff
from custodia.web.clients.forms import StaffChoiceForm
from custodia.web.decorators import add_action_errors, member_required
from custodia.web.scheduling.forms import (
    ServiceForm,
    VisitForm,
    VisitRequestForm,
    VisitUpdateForm,
    WeekForm,
)
from custodia.web.views import day_bounds, week_start

FORM_METHODS = ["GET", "HEAD", "POST"]
# The action names the price in cents; the form in currency units.
SERVICE_FIELD_NAMES = {"price_cents": "price"}

# --- Services -----------------------------------------------------------------------------------


@require_safe
@member_required(Permission.SERVICES_READ)
def service_list(request: HttpRequest, actor: Actor) -> HttpResponse:
    """What the business sells; managers also see retired services."""
    can_write = actor.can(Permission.SERVICES_WRITE)
    rows = [
        {"service": service, "price": Decimal(service.price_cents) / 100}
        for service in access.list_services(actor, include_inactive=can_write)
    ]
    return render(request, "scheduling/services.html", {"rows": rows, "can_write": can_write})


def _service_form_page(
    request: HttpRequest, form: ServiceForm, service: Service | None, status: int = 200
) -> HttpResponse:
    return render(
        request, "scheduling/service_form.html", {"form": form, "service": service}, status=status
    )


@require_http_methods(FORM_METHODS)
@member_required(Permission.SERVICES_WRITE)
def service_new(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Add a service."""
    form = ServiceForm(request.POST if request.method == "POST" else None)
    if request.method != "POST":
        return _service_form_page(request, form, None)
    if form.is_valid():
        try:
            do_create_service(actor=actor, **form.action_fields())
        except ValidationError as exc:
            add_action_errors(form, exc, SERVICE_FIELD_NAMES)
        else:
            messages.success(request, "Service created.")
            return redirect("service_list")
    return _service_form_page(request, form, None, status=400)


@require_http_methods(FORM_METHODS)
@member_required(Permission.SERVICES_WRITE)
def service_edit(request: HttpRequest, actor: Actor, service_id: str) -> HttpResponse:
    """Rename or re-price a service."""
    service = access.access_service_by_id(actor, service_id)
    if request.method != "POST":
        initial = {
            "name": service.name,
            "duration_minutes": service.duration_minutes,
            "price": Decimal(service.price_cents) / 100,
        }
        return _service_form_page(request, ServiceForm(initial=initial), service)
    form = ServiceForm(request.POST)
    if form.is_valid():
        try:
            do_update_service(service, actor=actor, **form.action_fields())
        except ValidationError as exc:
            add_action_errors(form, exc, SERVICE_FIELD_NAMES)
        else:
            messages.success(request, "Service saved.")
            return redirect("service_list")
    return _service_form_page(request, form, service, status=400)


@require_POST
@member_required(Permission.SERVICES_WRITE)
def service_retire(request: HttpRequest, actor: Actor, service_id: str) -> HttpResponse:
    """Retire a service (it can no longer be chosen), or bring a retired one back."""
    service = access.access_service_by_id(actor, service_id)
    do_update_service(service, actor=actor, is_active=not service.is_active)
    messages.success(request, "Service brought back." if service.is_active else "Service retired.")
    return redirect("service_list")


# --- Calendar and visits ------------------------------------------------------------------------


CALENDAR_FIELDS = (
    "id",
    "starts_at",
    "ends_at",
    "status",
    "client__name",
    "staff__user__full_name",
    "staff__user__email",
    "service__name",
)


@require_safe
@member_required(Permission.VISITS_WRITE)
def calendar(request: HttpRequest, actor: Actor) -> HttpResponse:
    """A week of visits, one column per day."""
    form = WeekForm(request.GET)
    valid = form.is_valid()
    chosen = (form.cleaned_data.get("week") if valid else None) or timezone.localdate()
    monday = week_start(chosen)
    days = [monday + dt.timedelta(days=offset) for offset in range(7)]
    start, _ = day_bounds(days[0])
    _, end = day_bounds(days[-1])
    by_day: dict[dt.date, list[dict[str, str]]] = {day: [] for day in days}
    # A busy week has hundreds of visits: load only what is shown and format it here, where it
    # costs a fraction of the same work in template filters (bench/, scenario 6).
    visits = list(access.list_visits(actor, start=start, end=end).only(*CALENDAR_FIELDS))
    record_bulk_read(actor, visits)
    detail_url = reverse("visit_detail", args=["-"]).removesuffix("-/")  # one reverse, not 300
    for visit in visits:
        starts, ends = timezone.localtime(visit.starts_at), timezone.localtime(visit.ends_at)
        # A visit that began in the previous week shows on Monday.
        by_day[max(starts.date(), monday)].append(
            {
                "url": f"{detail_url}{visit.id}/",
                "time": f"{starts:%H:%M}–{ends:%H:%M}",
                "client": visit.client.name,
                "staff": visit.staff.user.display_name if visit.staff else "",
                "status": visit.status,
                "status_label": visit.get_status_display(),
            }
        )
    context = {
        "form": form,
        "monday": monday,
        "sunday": days[-1],
        "days": [{"date": day, "visits": by_day[day]} for day in days],
        "previous_week": monday - dt.timedelta(days=7),
        "next_week": monday + dt.timedelta(days=7),
        "today": timezone.localdate(),
    }
    return render(request, "scheduling/calendar.html", context, status=200 if valid else 400)


def _visit_form(actor: Actor, data: Any = None, initial: Any = None) -> VisitForm:
    return VisitForm(
        data,
        initial=initial,
        clients=list_clients(actor),
        staff=list_staff(actor),
        services=access.list_services(actor),
    )


@require_http_methods(FORM_METHODS)
@member_required(Permission.VISITS_WRITE)
def visit_new(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Schedule a visit."""
    if request.method != "POST":
        initial = {key: request.GET[key] for key in ("client", "starts_at") if key in request.GET}
        return _visit_form_page(request, actor, _visit_form(actor, initial=initial))
    form = _visit_form(actor, request.POST)
    if form.is_valid():
        try:
            visit = do_create_visit(actor=actor, **form.cleaned_data)
        except ValidationError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, "Visit scheduled.")
            return redirect("visit_detail", visit_id=visit.pk)
    return _visit_form_page(request, actor, form, status=400)


def _visit_form_page(
    request: HttpRequest, actor: Actor, form: VisitForm, *, status: int = 200
) -> HttpResponse:
    # The client menu lists every client's name: a bulk read.
    record_bulk_read(actor, form.fields["client"].queryset)  # type: ignore[attr-defined]
    return render(request, "scheduling/visit_form.html", {"form": form}, status=status)


def _statuses_for(actor: Actor) -> list[VisitStatus]:
    if actor.can(Permission.VISITS_WRITE):
        return list(VisitStatus)
    # Staff report on a visit; putting it back to "requested" is a manager's call.
    return [s for s in VisitStatus if s != VisitStatus.REQUESTED]


def _visit_page(
    request: HttpRequest,
    actor: Actor,
    visit: Visit,
    *,
    update_form: VisitUpdateForm | None = None,
    confirm_form: StaffChoiceForm | None = None,
    status: int = 200,
) -> HttpResponse:
    is_manager = actor.can(Permission.VISITS_WRITE)
    can_report = is_manager or (
        actor.can(Permission.VISITS_REPORT) and visit.staff_id == actor.membership.pk
    )
    # The page shows the visit, whichever door led here (a GET, or a form sent back with errors).
    record(AuditAction.VISIT_READ, actor=actor, target=visit)
    context: dict[str, Any] = {"visit": visit, "can_report": can_report}
    if can_report:
        context["update_form"] = update_form or VisitUpdateForm(
            initial={"status": visit.status, "report": visit.report},
            statuses=_statuses_for(actor),
        )
    # A refused confirmation is shown with its reason even if the visit is no longer requested.
    if is_manager and (confirm_form is not None or visit.status == VisitStatus.REQUESTED):
        context["confirm_form"] = confirm_form or StaffChoiceForm(staff=list_staff(actor))
    return render(request, "scheduling/visit_detail.html", context, status=status)


@require_safe
@member_required(Permission.VISITS_READ)
def visit_detail(request: HttpRequest, actor: Actor, visit_id: str) -> HttpResponse:
    """One visit: who, when, what, its status and report."""
    return _visit_page(
        request, actor, access.access_visit_by_id(actor, visit_id, record_read=False)
    )


@require_POST
@member_required(Permission.VISITS_REPORT)
def visit_update(request: HttpRequest, actor: Actor, visit_id: str) -> HttpResponse:
    """Change a visit's status and report (staff: only their own visits)."""
    visit = access.access_visit_by_id(actor, visit_id, record_read=False)
    form = VisitUpdateForm(request.POST, statuses=_statuses_for(actor))
    if form.is_valid():
        try:
            do_update_visit(visit, actor=actor, **form.cleaned_data)
        except ValidationError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, "Visit saved.")
            return redirect("visit_detail", visit_id=visit.pk)
    return _visit_page(request, actor, visit, update_form=form, status=400)


@require_POST
@member_required(Permission.VISITS_WRITE)
def visit_confirm(request: HttpRequest, actor: Actor, visit_id: str) -> HttpResponse:
    """A manager confirms a requested visit: who goes, and it is scheduled."""
    visit = access.access_visit_by_id(actor, visit_id, record_read=False)
    form = StaffChoiceForm(request.POST, staff=list_staff(actor))
    if form.is_valid():
        try:
            do_confirm_visit(visit, form.cleaned_data["staff"], actor=actor)
        except ValidationError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, "Visit confirmed.")
            return redirect("visit_detail", visit_id=visit.pk)
    return _visit_page(request, actor, visit, confirm_form=form, status=400)


@require_safe
@member_required(Permission.VISITS_REPORT)
def today(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The actor's own visits today, with home access where it may be seen now."""
    day = timezone.localdate()
    start, end = day_bounds(day)
    visits = list(access.list_visits(actor, start=start, end=end, staff_id=actor.membership.pk))
    record_bulk_read(actor, visits)
    rows = []
    for visit in visits:
        # Staff: around their own visit. A manager on their own round steps up first, like
        # anywhere else (clients/access.py, home_access_and_hold).
        home_access, held_back = home_access_and_hold(actor, visit.client)
        rows.append({"visit": visit, "home_access": home_access, "needs_step_up": held_back})
    return render(request, "scheduling/today.html", {"rows": rows, "day": day})


@require_http_methods(FORM_METHODS)
@member_required(Permission.VISITS_REQUEST)
def visit_request(request: HttpRequest, actor: Actor) -> HttpResponse:
    """A client asks for a visit; a manager confirms it."""
    form = VisitRequestForm(
        request.POST if request.method == "POST" else None, services=access.list_services(actor)
    )
    if request.method != "POST":
        return render(request, "scheduling/request_visit.html", {"form": form})
    if form.is_valid():
        try:
            do_request_visit(actor=actor, **form.cleaned_data)
        except ValidationError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, "Your request was sent. The business will confirm it.")
            return redirect("portal")
    return render(request, "scheduling/request_visit.html", {"form": form}, status=400)
