"""Services, the week calendar, visits, staff's day, and clients' visit requests."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from custodia.clients.access import home_access_and_hold, list_clients, read_clients
from custodia.clients.profiles import profile_for
from custodia.core.actor import Actor
from custodia.core.permissions import Permission
from custodia.scheduling import access
from custodia.scheduling.actions import (
    do_confirm_visit,
    do_create_service,
    do_create_visit,
    do_delete_visit,
    do_request_visit,
    do_update_service,
    do_update_visit,
)
from custodia.scheduling.models import Service, Visit, VisitStatus
from custodia.scheduling.notices import do_update_notice_choices, read_notice_choices
from custodia.scheduling.reporting import (
    do_add_visit_photo,
    do_check_in_visit,
    do_check_out_visit,
    do_delete_visit_photo,
)
from custodia.scheduling.rows import VisitLine, calendar_entries
from custodia.scheduling.series import do_change_following, do_create_series, do_end_series
from custodia.tenancy.access import list_staff
from custodia.tenancy.models import Membership
from custodia.tenancy.reads import Intent
from custodia.web.clients.forms import StaffChoiceForm
from custodia.web.decorators import member_required
from custodia.web.forms import form_action
from custodia.web.scheduling.forms import (
    NOT_ASSIGNED,
    CalendarStaffForm,
    NoticeChoicesForm,
    SeriesChangeForm,
    ServiceForm,
    VisitClientForm,
    VisitEditForm,
    VisitForm,
    VisitPhotoForm,
    VisitRequestForm,
    VisitUpdateForm,
    WeekForm,
)
from custodia.web.views import day_bounds, week_start

FORM_METHODS = ["GET", "HEAD", "POST"]
# The series' errors name the rule's parts; the form calls them so (scheduling/series.py).
SERIES_FIELD_NAMES = {"interval": "every", "weekdays": "on_days", "count": "times"}
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
    return form_action(
        request,
        form,
        lambda: do_create_service(actor=actor, **form.action_fields()),
        success="Service created.",
        done=lambda _: redirect("service_list"),
        page=lambda status: _service_form_page(request, form, None, status=status),
        field_names=SERVICE_FIELD_NAMES,
    )


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
    return form_action(
        request,
        form,
        lambda: do_update_service(service, actor=actor, **form.action_fields()),
        success="Service saved.",
        done=lambda _: redirect("service_list"),
        page=lambda status: _service_form_page(request, form, service, status=status),
        field_names=SERVICE_FIELD_NAMES,
    )


@require_POST
@member_required(Permission.SERVICES_WRITE)
def service_retire(request: HttpRequest, actor: Actor, service_id: str) -> HttpResponse:
    """Retire a service (it can no longer be chosen), or bring a retired one back."""
    service = access.access_service_by_id(actor, service_id)
    do_update_service(service, actor=actor, is_active=not service.is_active)
    messages.success(request, "Service brought back." if service.is_active else "Service retired.")
    return redirect("service_list")


# --- Calendar and visits ------------------------------------------------------------------------


@require_safe
@member_required(Permission.VISITS_WRITE)
def calendar(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The calendar: FullCalendar's day, week and month views fed by the API (static/calendar.js),
    over a week of visits, one column per day, for a browser without JavaScript."""
    form = WeekForm(request.GET)
    valid = form.is_valid()
    chosen = (form.cleaned_data.get("week") if valid else None) or timezone.localdate()
    monday = week_start(chosen)
    days = [monday + dt.timedelta(days=offset) for offset in range(7)]
    start, _ = day_bounds(days[0])
    _, end = day_bounds(days[-1])
    staff_form = CalendarStaffForm(request.GET, staff=list_staff(actor))
    staff_id = staff_form.cleaned_data.get("staff") if staff_form.is_valid() else None
    by_day: dict[dt.date, list[VisitLine]] = {day: [] for day in days}
    # A busy week has hundreds of visits: lines of what is shown (scheduling/rows.py).
    [visits] = access.read_visit_lines(
        actor, access.list_visits(actor, start=start, end=end, staff_id=staff_id or None)
    )
    for visit in visits:
        for day in visit_days(visit, days):
            by_day[day].append(visit)
    context = {
        "form": form,
        "staff_form": staff_form,
        "staff_id": staff_id or "",
        "feed_url": reverse("api:calendar"),
        "new_visit_url": reverse("visit_new"),
        "can_edit": actor.can(Permission.VISITS_WRITE),
        "monday": monday,
        "sunday": days[-1],
        "days": [{"date": day, "visits": calendar_entries(by_day[day])} for day in days],
        "previous_week": monday - dt.timedelta(days=7),
        "next_week": monday + dt.timedelta(days=7),
        "today": timezone.localdate(),
    }
    status = 200 if valid and staff_form.is_valid() else 400
    return render(request, "scheduling/calendar.html", context, status=status)


def visit_days(visit: VisitLine, days: list[dt.date]) -> list[dt.date]:
    """The days of `days` a visit covers: an overnight or multi-day visit shows on each of them
    (one that ends at midnight not on the next day)."""
    first = visit.starts_at.date()
    last = (visit.ends_at - dt.timedelta(microseconds=1)).date()
    return [day for day in days if first <= day <= last]


def _chosen(value: object) -> uuid.UUID | None:
    """A client id from a form or link, or None when there is none or it is malformed."""
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _visit_form(
    actor: Actor, data: Any = None, initial: Any = None, *, client_id: uuid.UUID | None = None
) -> VisitForm:
    return VisitForm(
        data,
        initial=initial,
        clients=list_clients(actor),
        # Only who may go (scheduling/access.py): nobody offered is then refused.
        staff=(
            access.staff_for_visits(actor, client_id) if client_id else Membership.objects.none()
        ),
        services=access.list_services(actor),
    )


@require_http_methods(FORM_METHODS)
@member_required(Permission.VISITS_WRITE)
def visit_new(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Schedule a visit: first whose (unless a link named the client), then the rest."""
    if request.method != "POST":
        client_id = _chosen(request.GET.get("client"))
        if client_id is None:
            return _visit_client_page(request, actor)
        initial = {key: request.GET[key] for key in ("client", "starts_at") if key in request.GET}
        form = _visit_form(actor, initial=initial, client_id=client_id)
        return _visit_form_page(request, actor, form)
    form = _visit_form(actor, request.POST, client_id=_chosen(request.POST.get("client")))
    return form_action(
        request,
        form,
        lambda: _schedule(actor, form),
        done=lambda visits: _scheduled(request, visits),
        page=lambda status: _visit_form_page(request, actor, form, status=status),
        field_names=SERIES_FIELD_NAMES,
    )


def _schedule(actor: Actor, form: VisitForm) -> list[Visit]:
    """One visit, or every visit of a repeating series (scheduling/series.py)."""
    repeat = form.repeating()
    if repeat is None:
        return [do_create_visit(actor=actor, **form.visit())]
    return do_create_series(actor=actor, repeat=repeat, **form.visit())


def _scheduled(request: HttpRequest, visits: list[Visit]) -> HttpResponse:
    count = len(visits)
    messages.success(request, "Visit scheduled." if count == 1 else f"{count} visits scheduled.")
    return redirect("visit_detail", visit_id=visits[0].pk)


def _visit_client_page(request: HttpRequest, actor: Actor) -> HttpResponse:
    form = VisitClientForm(
        initial={"starts_at": request.GET.get("starts_at", "")}, clients=list_clients(actor)
    )
    # The client menu lists every client's name: a bulk read.
    read_clients(actor, form.fields["client"].queryset)  # type: ignore[attr-defined]
    return render(request, "scheduling/visit_client.html", {"form": form})


def _visit_form_page(
    request: HttpRequest, actor: Actor, form: VisitForm, *, status: int = 200
) -> HttpResponse:
    # The client menu lists every client's name: a bulk read.
    read_clients(actor, form.fields["client"].queryset)  # type: ignore[attr-defined]
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
    series_form: SeriesChangeForm | None = None,
    photo_form: VisitPhotoForm | None = None,
    status: int = 200,
) -> HttpResponse:
    is_manager = actor.can(Permission.VISITS_WRITE)
    is_visiting = actor.can(Permission.VISITS_REPORT) and visit.staff_id == actor.membership.pk
    can_report = is_manager or is_visiting
    context: dict[str, Any] = {
        "visit": visit,
        "can_report": can_report,
        "can_edit": is_manager,
        "can_check_in": is_visiting and visit.status == VisitStatus.SCHEDULED,
        "photos": access.list_visit_photos(actor, visit),
    }
    if can_report and visit.status in (VisitStatus.SCHEDULED, VisitStatus.COMPLETED):
        context["photo_form"] = photo_form or VisitPhotoForm()
    if visit.series_id is not None:
        context["series_words"] = visit.series_rule.split(" | ", 1)[0]
        if is_manager:
            context["series_form"] = series_form or _series_form(actor, visit)
    if can_report:
        context["update_form"] = update_form or VisitUpdateForm(
            initial={"status": visit.status, "report": visit.report},
            statuses=_statuses_for(actor),
        )
    # A refused confirmation is shown with its reason even if the visit is no longer requested.
    if is_manager and (confirm_form is not None or visit.status == VisitStatus.REQUESTED):
        context["confirm_form"] = confirm_form or _confirm_form(actor, visit)
    return render(request, "scheduling/visit_detail.html", context, status=status)


def _confirm_form(actor: Actor, visit: Visit, data: Any = None) -> StaffChoiceForm:
    staff = access.staff_for_visits(actor, visit.client_id)
    return StaffChoiceForm(data, staff=staff, not_offered=NOT_ASSIGNED)


@require_safe
@member_required(Permission.VISITS_READ)
def visit_detail(request: HttpRequest, actor: Actor, visit_id: str) -> HttpResponse:
    """One visit: who, when, what, its status and report."""
    return _visit_page(
        request, actor, access.access_visit_by_id(actor, visit_id, intent=Intent.SHOW)
    )


@require_POST
@member_required(Permission.VISITS_REPORT)
def visit_update(request: HttpRequest, actor: Actor, visit_id: str) -> HttpResponse:
    """Change a visit's status and report (staff: only their own visits)."""
    visit = access.access_visit_by_id(actor, visit_id, intent=Intent.CHANGE)
    form = VisitUpdateForm(request.POST, statuses=_statuses_for(actor))
    # On a refusal the visit, read to be changed, is shown after all.
    return form_action(
        request,
        form,
        lambda: do_update_visit(visit, actor=actor, **form.cleaned_data),
        success="Visit saved.",
        done=lambda _: redirect("visit_detail", visit_id=visit.pk),
        page=lambda status: _visit_page(
            request, actor, access.show_visit(actor, visit), update_form=form, status=status
        ),
    )


@require_POST
@member_required(Permission.VISITS_REPORT)
def visit_check_in(request: HttpRequest, actor: Actor, visit_id: str) -> HttpResponse:
    """The assigned staff member records their arrival."""
    return _check_in_or_out(request, actor, visit_id, do_check_in_visit, "Checked in.")


@require_POST
@member_required(Permission.VISITS_REPORT)
def visit_check_out(request: HttpRequest, actor: Actor, visit_id: str) -> HttpResponse:
    """The assigned staff member records their departure."""
    return _check_in_or_out(request, actor, visit_id, do_check_out_visit, "Checked out.")


def _check_in_or_out(
    request: HttpRequest, actor: Actor, visit_id: str, action: Any, success: str
) -> HttpResponse:
    visit = access.access_visit_by_id(actor, visit_id, intent=Intent.CHANGE)
    try:
        action(visit, actor=actor)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, success)
    # Back where the button was: the Today card or the visit's page.
    if request.POST.get("back") == "today":
        return redirect("today")
    return redirect("visit_detail", visit_id=visit.pk)


@require_POST
@member_required(Permission.VISITS_REPORT)
def visit_photo_add(request: HttpRequest, actor: Actor, visit_id: str) -> HttpResponse:
    """Attach a photo to a visit (staff: their own visits)."""
    visit = access.access_visit_by_id(actor, visit_id, intent=Intent.CHANGE)
    form = VisitPhotoForm(request.POST, request.FILES)
    return form_action(
        request,
        form,
        lambda: do_add_visit_photo(visit, form.cleaned_data["photo"].read(), actor=actor),
        success="Photo added.",
        done=lambda _: redirect("visit_detail", visit_id=visit.pk),
        page=lambda status: _visit_page(
            request, actor, access.show_visit(actor, visit), photo_form=form, status=status
        ),
    )


@require_safe
@member_required(Permission.VISITS_READ)
def visit_photo(
    request: HttpRequest, actor: Actor, visit_id: str, photo_id: str, part: str
) -> HttpResponse:
    """A visit photo or its thumbnail, to whoever may see the visit; never cached."""
    photo = access.access_visit_photo_by_id(
        actor, visit_id, photo_id, part=part, intent=Intent.SHOW
    )
    response = HttpResponse(getattr(photo, part), content_type=photo.content_type)
    response["Cache-Control"] = "private, no-store"
    response["Content-Disposition"] = "inline"
    return response


@require_POST
@member_required(Permission.VISITS_REPORT)
def visit_photo_delete(
    request: HttpRequest, actor: Actor, visit_id: str, photo_id: str
) -> HttpResponse:
    """Delete a visit photo (its uploader or a manager)."""
    photo = access.access_visit_photo_by_id(
        actor, visit_id, photo_id, part=None, intent=Intent.CHANGE
    )
    do_delete_visit_photo(photo, actor=actor)
    messages.success(request, "Photo deleted.")
    return redirect("visit_detail", visit_id=photo.visit_id)


@require_POST
@member_required(Permission.VISITS_WRITE)
def visit_confirm(request: HttpRequest, actor: Actor, visit_id: str) -> HttpResponse:
    """A manager confirms a requested visit: who goes, and it is scheduled."""
    visit = access.access_visit_by_id(actor, visit_id, intent=Intent.CHANGE)
    form = _confirm_form(actor, visit, request.POST)
    # On a refusal the visit, read to be changed, is shown after all.
    return form_action(
        request,
        form,
        lambda: do_confirm_visit(visit, form.cleaned_data["staff"], actor=actor),
        success="Visit confirmed.",
        done=lambda _: redirect("visit_detail", visit_id=visit.pk),
        page=lambda status: _visit_page(
            request, actor, access.show_visit(actor, visit), confirm_form=form, status=status
        ),
    )


def _series_form(actor: Actor, visit: Visit, data: Any = None) -> SeriesChangeForm:
    return SeriesChangeForm(
        data,
        initial={"staff": SeriesChangeForm.KEEP, "service": SeriesChangeForm.KEEP},
        staff=access.staff_for_visits(actor, visit.client_id),
        services=access.list_services(actor),
    )


@require_POST
@member_required(Permission.VISITS_WRITE)
def series_change(request: HttpRequest, actor: Actor, visit_id: str) -> HttpResponse:
    """A manager changes a series from one visit on (or all of it still to do)."""
    visit = access.access_visit_by_id(actor, visit_id, intent=Intent.CHANGE)
    form = _series_form(actor, visit, request.POST)
    return form_action(
        request,
        form,
        lambda: do_change_following(visit, actor=actor, **form.changes()),
        done=lambda count: _series_done(request, visit, f"{count} visits of the series changed."),
        page=lambda status: _visit_page(
            request, actor, access.show_visit(actor, visit), series_form=form, status=status
        ),
    )


@require_POST
@member_required(Permission.VISITS_WRITE)
def series_end(request: HttpRequest, actor: Actor, visit_id: str) -> HttpResponse:
    """A manager ends a series after one visit: the later visits still to do are deleted."""
    visit = access.access_visit_by_id(actor, visit_id, intent=Intent.CHANGE)
    try:
        count = do_end_series(visit, actor=actor)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("visit_detail", visit_id=visit.pk)
    return _series_done(request, visit, f"Series ended: {count} later visits deleted.")


def _series_done(request: HttpRequest, visit: Visit, message: str) -> HttpResponse:
    messages.success(request, message)
    return redirect("visit_detail", visit_id=visit.pk)


def _visit_edit_page(
    request: HttpRequest, actor: Actor, visit: Visit, form: VisitEditForm, *, status: int = 200
) -> HttpResponse:
    return render(
        request, "scheduling/visit_edit.html", {"visit": visit, "form": form}, status=status
    )


@require_http_methods(FORM_METHODS)
@member_required(Permission.VISITS_WRITE)
def visit_edit(request: HttpRequest, actor: Actor, visit_id: str) -> HttpResponse:
    """A manager moves a visit, changes who goes or the service (the API's same action)."""
    if request.method != "POST":
        visit = access.access_visit_by_id(actor, visit_id, intent=Intent.SHOW)
        initial = {
            "starts_at": timezone.localtime(visit.starts_at),
            "ends_at": timezone.localtime(visit.ends_at),
            "staff": visit.staff_id,
            "service": visit.service_id,
        }
        form = _visit_edit_form(actor, visit, initial=initial)
        return _visit_edit_page(request, actor, visit, form)
    visit = access.access_visit_by_id(actor, visit_id, intent=Intent.CHANGE)
    form = _visit_edit_form(actor, visit, request.POST)
    # On a refusal the visit, read to be changed, is shown after all.
    return form_action(
        request,
        form,
        lambda: do_update_visit(visit, actor=actor, **form.cleaned_data),
        success="Visit saved.",
        done=lambda _: redirect("visit_detail", visit_id=visit.pk),
        page=lambda status: _visit_edit_page(
            request, actor, access.show_visit(actor, visit), form, status=status
        ),
    )


def _visit_edit_form(
    actor: Actor, visit: Visit, data: Any = None, initial: Any = None
) -> VisitEditForm:
    return VisitEditForm(
        data,
        initial=initial,
        staff=access.staff_for_visits(actor, visit.client_id),
        services=access.list_services(actor),
    )


@require_http_methods(FORM_METHODS)
@member_required(Permission.VISITS_WRITE)
def visit_delete(request: HttpRequest, actor: Actor, visit_id: str) -> HttpResponse:
    """A manager removes a visit from the calendar, after confirming."""
    if request.method != "POST":
        visit = access.access_visit_by_id(actor, visit_id, intent=Intent.SHOW)
        return render(request, "scheduling/visit_delete.html", {"visit": visit})
    visit = access.access_visit_by_id(actor, visit_id, intent=Intent.CHANGE)
    day = timezone.localdate(visit.starts_at)
    do_delete_visit(visit, actor=actor)
    messages.success(request, "Visit deleted.")
    return redirect(f"{reverse('calendar')}?week={week_start(day).isoformat()}")


@require_safe
@member_required(Permission.VISITS_REPORT)
def today(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The actor's own visits today, with home access where it may be seen now."""
    day = timezone.localdate()
    start, end = day_bounds(day)
    [visits] = access.read_visits(
        actor, access.list_visits(actor, start=start, end=end, staff_id=actor.membership.pk)
    )
    rows = []
    for visit in visits:
        # Staff: around their own visit. A manager on their own round steps up first, like
        # anywhere else (clients/access.py, home_access_and_hold).
        home_access, held_back = home_access_and_hold(actor, visit.client)
        rows.append(
            {
                "visit": visit,
                "home_access": home_access,
                "needs_step_up": held_back,
                # Pets and household details, the sealed ones by the same rule as the codes.
                "profile": profile_for(actor, visit.client),
            }
        )
    context: dict[str, Any] = {"rows": rows, "day": day}
    if actor.can(Permission.VISITS_WRITE):
        # Managers also see everyone else's round (no codes: those are for whoever goes).
        [lines] = access.read_visit_lines(
            actor,
            access.list_visits(actor, start=start, end=end).exclude(staff_id=actor.membership.pk),
        )
        team: dict[str, list[VisitLine]] = {}
        for line in sorted(lines, key=lambda line: (line.staff == "", line.staff.casefold())):
            team.setdefault(line.staff or "Nobody yet", []).append(line)
        context["team"] = team
    return render(request, "scheduling/today.html", context)


@require_http_methods(FORM_METHODS)
@member_required(Permission.VISITS_REQUEST)
def visit_request(request: HttpRequest, actor: Actor) -> HttpResponse:
    """A client asks for a visit; a manager confirms it."""
    form = VisitRequestForm(
        request.POST if request.method == "POST" else None, services=access.list_services(actor)
    )
    if request.method != "POST":
        return render(request, "scheduling/request_visit.html", {"form": form})
    return form_action(
        request,
        form,
        lambda: do_request_visit(actor=actor, **form.cleaned_data),
        success="Your request was sent. The business will confirm it.",
        done=lambda _: redirect("portal"),
        page=lambda status: render(
            request, "scheduling/request_visit.html", {"form": form}, status=status
        ),
    )


@require_http_methods(FORM_METHODS)
@member_required()
def notice_choices(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The acting member's own choice of visit emails (staff have none: 403)."""
    current = read_notice_choices(actor)
    names = tuple(current)
    if request.method != "POST":
        form = NoticeChoicesForm(initial=current, names=names)
        return render(request, "scheduling/notice_choices.html", {"form": form})
    form = NoticeChoicesForm(request.POST, names=names)
    return form_action(
        request,
        form,
        lambda: do_update_notice_choices(actor=actor, **form.cleaned_data),
        success="Your email choices were saved.",
        done=lambda _: redirect("notice_choices"),
        page=lambda status: render(
            request, "scheduling/notice_choices.html", {"form": form}, status=status
        ),
    )
