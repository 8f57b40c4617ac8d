"""Client pages: list and search, record, edit, delete, staff assignment, portal invitation."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from custodia.audit import access as audit_access
from custodia.clients import access
from custodia.clients.actions import (
    do_assign_staff,
    do_create_client,
    do_delete_client,
    do_unassign_staff,
    do_update_client,
)
from custodia.clients.models import Client
from custodia.core.actor import Actor
from custodia.core.audit import AuditAction, record, record_bulk_read
from custodia.core.permissions import Permission, Role
from custodia.scheduling.access import list_services, list_visits
from custodia.tenancy.access import access_member_by_id, list_staff
from custodia.tenancy.actions import do_invite_member
from custodia.web.clients.forms import ClientForm, ClientSearchForm, StaffChoiceForm
from custodia.web.decorators import add_action_errors, member_required
from custodia.web.scheduling.forms import VisitRequestForm
from custodia.web.tenancy.forms import ClientInviteForm

CLIENTS_PER_PAGE = 50


@require_safe
@member_required(Permission.CLIENTS_RECORD_READ)
def client_list(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The clients the actor may see, searched and paged."""
    search = ClientSearchForm(request.GET)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    page = Paginator(access.list_clients(actor, query=query), CLIENTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    record_bulk_read(actor, page.object_list, detail={"searched": bool(query)})
    context = {
        "search": search,
        "query": query,
        "page": page,
        "can_write": actor.can(Permission.CLIENTS_RECORD_WRITE),
    }
    return render(request, "clients/list.html", context, status=200 if search.is_valid() else 400)


@require_http_methods(["GET", "HEAD", "POST"])
@member_required(Permission.CLIENTS_RECORD_WRITE)
def client_new(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Create a client record."""
    form = ClientForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            try:
                client = do_create_client(actor=actor, **form.cleaned_data)
            except ValidationError as exc:
                add_action_errors(form, exc)
            else:
                messages.success(request, "Client created.")
                return redirect("client_detail", client_id=client.pk)
        return render(request, "clients/form.html", {"form": form}, status=400)
    return render(request, "clients/form.html", {"form": form})


def _detail_page(
    request: HttpRequest,
    actor: Actor,
    client: Client,
    *,
    assign_form: StaffChoiceForm | None = None,
    invite_form: ClientInviteForm | None = None,
    status: int = 200,
) -> HttpResponse:
    can_assign = actor.can(Permission.CLIENTS_ASSIGNMENT_WRITE)
    can_invite = actor.can(Permission.STAFF_MEMBER_INVITE)
    # The page shows the record, whichever door led here (a GET, or a form sent back with errors).
    record(AuditAction.CLIENT_READ, actor=actor, target=client)
    home_access, held_back = access.home_access_and_hold(actor, client)
    visits = list(list_visits(actor, start=timezone.now(), client_id=client.pk)[:20])
    record_bulk_read(actor, visits)
    context: dict[str, Any] = {
        "client": client,
        "home_access": home_access,
        "home_access_needs_step_up": held_back,
        "assigned": access.assigned_staff(actor, client),
        "visits": visits,
        "can_write": actor.can(Permission.CLIENTS_RECORD_WRITE),
        "can_assign": can_assign,
        "can_invite": can_invite,
        "can_schedule": actor.can(Permission.VISITS_WRITE),
    }
    if can_assign:
        context["assign_form"] = assign_form or StaffChoiceForm(staff=list_staff(actor))
    if can_invite:
        context["invite_form"] = invite_form or ClientInviteForm(initial={"email": client.email})
    return render(request, "clients/detail.html", context, status=status)


@require_safe
@member_required()
def client_detail(request: HttpRequest, actor: Actor, client_id: str) -> HttpResponse:
    """One client's record; home access only when the actor may see it now."""
    client = access.access_client_by_id(actor, client_id, record_read=False)
    if actor.role == Role.CLIENT:
        return redirect("portal")
    return _detail_page(request, actor, client)


@require_http_methods(["GET", "HEAD", "POST"])
@member_required(Permission.CLIENTS_RECORD_WRITE)
def client_edit(request: HttpRequest, actor: Actor, client_id: str) -> HttpResponse:
    """Change a client's details and home access."""
    client = access.access_client_by_id(actor, client_id, record_read=request.method != "POST")
    if request.method == "POST":
        form = ClientForm(request.POST)
        if form.is_valid():
            try:
                do_update_client(client, actor=actor, **form.cleaned_data)
            except ValidationError as exc:
                add_action_errors(form, exc)
            else:
                messages.success(request, "Client saved.")
                return redirect("client_detail", client_id=client.pk)
        return render(request, "clients/form.html", {"form": form, "client": client}, status=400)
    # The editor shows the codes, so outside a visit window a manager confirms it's them first.
    home = access.home_access_for(actor, client, insist=True)
    initial = {
        field: getattr(client, field) for field in ("name", "email", "phone", "address", "notes")
    }
    if home is not None:
        initial.update(
            instructions=home.instructions, door_code=home.door_code, alarm_code=home.alarm_code
        )
    return render(
        request, "clients/form.html", {"form": ClientForm(initial=initial), "client": client}
    )


@require_http_methods(["GET", "HEAD", "POST"])
@member_required(Permission.CLIENTS_RECORD_WRITE)
def client_delete(request: HttpRequest, actor: Actor, client_id: str) -> HttpResponse:
    """Ask, then delete a client with their visits, home access and portal login."""
    client = access.access_client_by_id(actor, client_id, record_read=request.method != "POST")
    if request.method == "POST":
        do_delete_client(client, actor=actor)
        messages.success(request, "Client deleted.")
        return redirect("client_list")
    return render(request, "clients/confirm_delete.html", {"client": client})


@require_POST
@member_required(Permission.CLIENTS_ASSIGNMENT_WRITE)
def client_assign(request: HttpRequest, actor: Actor, client_id: str) -> HttpResponse:
    """A manager lets a staff member serve this client."""
    client = access.access_client_by_id(actor, client_id, record_read=False)
    form = StaffChoiceForm(request.POST, staff=list_staff(actor))
    if form.is_valid():
        try:
            do_assign_staff(client, form.cleaned_data["staff"], actor=actor)
        except ValidationError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, "Staff member assigned.")
            return redirect("client_detail", client_id=client.pk)
    return _detail_page(request, actor, client, assign_form=form, status=400)


@require_POST
@member_required(Permission.CLIENTS_ASSIGNMENT_WRITE)
def client_unassign(
    request: HttpRequest, actor: Actor, client_id: str, membership_id: str
) -> HttpResponse:
    """The staff member no longer serves (or sees) this client."""
    client = access.access_client_by_id(actor, client_id, record_read=False)
    staff = access_member_by_id(actor, membership_id)
    do_unassign_staff(client, staff, actor=actor)
    messages.success(request, "Staff member unassigned.")
    return redirect("client_detail", client_id=client.pk)


@require_POST
@member_required(Permission.STAFF_MEMBER_INVITE)
def client_invite(request: HttpRequest, actor: Actor, client_id: str) -> HttpResponse:
    """Email the client a link to their portal."""
    client = access.access_client_by_id(actor, client_id, record_read=False)
    form = ClientInviteForm(request.POST)
    if form.is_valid():
        try:
            do_invite_member(
                actor=actor, email=form.cleaned_data["email"], role=Role.CLIENT, client=client
            )
        except ValidationError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, "Portal invitation sent.")
            return redirect("client_detail", client_id=client.pk)
    return _detail_page(request, actor, client, invite_form=form, status=400)


@require_safe
@member_required(Permission.CLIENTS_SELF_READ)
def portal(request: HttpRequest, actor: Actor) -> HttpResponse:
    """A client's own page: their details, their visits, and a way to ask for one."""
    client = access.access_client_by_id(actor, actor.membership.client_id)
    now = timezone.now()
    upcoming = list(list_visits(actor, start=now))
    past = list(list_visits(actor, end=now).filter(ends_at__lte=now).order_by("-starts_at")[:10])
    record_bulk_read(actor, upcoming + past)
    context = {
        "client": client,
        "upcoming": upcoming,
        "past": past,
        "request_form": VisitRequestForm(services=list_services(actor)),
        "record_access": audit_access.recent_access_to_own_record(actor),
    }
    return render(request, "clients/portal.html", context)
