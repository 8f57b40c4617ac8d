"""Client pages: list and search, record, edit, delete, staff assignment, portal invitation."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from custodia.clients import access, profiles
from custodia.clients.actions import (
    do_assign_staff,
    do_create_client,
    do_delete_client,
    do_unassign_staff,
    do_update_client,
)
from custodia.core.actor import Actor
from custodia.core.permissions import Permission, Role
from custodia.lifecycle.erasure import pending_erasure_request, pending_erasure_requests
from custodia.scheduling.access import list_services, list_visits, read_visit_lines
from custodia.tenancy.access import access_member_by_id, list_staff
from custodia.tenancy.actions import do_invite_member
from custodia.tenancy.paging import InvalidCursor
from custodia.tenancy.reads import Intent
from custodia.web.clients.forms import ClientForm, ClientSearchForm, StaffChoiceForm
from custodia.web.decorators import member_required
from custodia.web.forms import form_action
from custodia.web.scheduling.forms import VisitRequestForm
from custodia.web.tenancy.forms import ClientInviteForm


@require_safe
@member_required(Permission.CLIENTS_RECORD_READ)
def client_list(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The clients the actor may see, searched, a page at a time (by cursor: no page numbers)."""
    search = ClientSearchForm(request.GET)
    valid = search.is_valid()
    query = search.cleaned_data["q"] if valid else ""
    cursor = search.cleaned_data["cursor"] if valid else ""
    try:
        page = access.page_of_clients(actor, query=query, cursor=cursor or None)
    except InvalidCursor:
        # A link edited by hand, or kept past a change of the server's secret key: say so, and
        # show the first page.
        search.add_error("cursor", "That page link is not valid: here is the first page.")
        page = access.page_of_clients(actor, query=query)
    context = {
        "search": search,
        "query": query,
        "page": page,
        "can_write": actor.can(Permission.CLIENTS_RECORD_WRITE),
        # Ids and dates only (no client read): links to the records that asked for erasure.
        "erasure_requests": (
            list(pending_erasure_requests(actor)[:20])
            if actor.can(Permission.CLIENTS_RECORD_ERASE)
            else []
        ),
    }
    return render(request, "clients/list.html", context, status=200 if search.is_valid() else 400)


@require_http_methods(["GET", "HEAD", "POST"])
@member_required(Permission.CLIENTS_RECORD_WRITE)
def client_new(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Create a client record."""
    form = ClientForm(request.POST if request.method == "POST" else None)
    if request.method != "POST":
        return render(request, "clients/form.html", {"form": form})
    return form_action(
        request,
        form,
        lambda: do_create_client(actor=actor, **form.cleaned_data),
        success="Client created.",
        done=lambda client: redirect("client_detail", client_id=client.pk),
        page=lambda status: render(request, "clients/form.html", {"form": form}, status=status),
    )


def _detail_page(
    request: HttpRequest,
    actor: Actor,
    view: access.ClientView,
    *,
    assign_form: StaffChoiceForm | None = None,
    invite_form: ClientInviteForm | None = None,
    status: int = 200,
) -> HttpResponse:
    can_assign = actor.can(Permission.CLIENTS_ASSIGNMENT_WRITE)
    can_invite = actor.can(Permission.STAFF_MEMBER_INVITE)
    client = view.client
    [visits] = read_visit_lines(
        actor, list_visits(actor, start=timezone.now(), client_id=client.pk)[:20]
    )
    context: dict[str, Any] = {
        "client": client,
        "home_access": view.home_access,
        "home_access_needs_step_up": view.home_access_held_back,
        "profile": profiles.profile_for(actor, client),
        "assigned": access.assigned_staff(actor, client),
        "visits": visits,
        "can_write": actor.can(Permission.CLIENTS_RECORD_WRITE),
        "can_assign": can_assign,
        "can_invite": can_invite,
        "can_schedule": actor.can(Permission.VISITS_WRITE),
        "can_erase": actor.can(Permission.CLIENTS_RECORD_ERASE) and client.erased_at is None,
        "can_use_cards": actor.can(Permission.PAYMENTS_CARD_WRITE),
        "can_read_history": actor.can(Permission.AUDIT_READ),
        "erasure_request": pending_erasure_request(actor, client),
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
    if actor.role == Role.CLIENT:
        # Their own record is the portal; another's is not found (and the refusal noted).
        access.access_client_by_id(actor, client_id, intent=Intent.REFERENCE)
        return redirect("portal")
    return _detail_page(request, actor, access.view_client(actor, client_id))


@require_safe
@member_required(Permission.AUDIT_READ)
def client_history(request: HttpRequest, actor: Actor, client_id: str) -> HttpResponse:
    """Who read or changed one client's record lately, in words (owners)."""
    history = access.client_access_history(actor, client_id)
    context = {"history": history, "limit": access.HISTORY_EVENTS}
    return render(request, "clients/history.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
@member_required(Permission.CLIENTS_RECORD_WRITE)
def client_edit(request: HttpRequest, actor: Actor, client_id: str) -> HttpResponse:
    """Change a client's details and home access."""
    if request.method != "POST":
        return _edit_page(request, actor, client_id)
    client = access.access_client_by_id(actor, client_id, intent=Intent.CHANGE)
    form = ClientForm(request.POST)
    context = {"form": form, "client": client}
    return form_action(
        request,
        form,
        lambda: do_update_client(client, actor=actor, **form.cleaned_data),
        success="Client saved.",
        done=lambda _: redirect("client_detail", client_id=client.pk),
        page=lambda status: render(request, "clients/form.html", context, status=status),
    )


def _edit_page(request: HttpRequest, actor: Actor, client_id: str) -> HttpResponse:
    # The editor shows the codes, so outside a visit window a manager confirms it's them first.
    view = access.view_client(actor, client_id, insist=True)
    client, home = view.client, view.home_access
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
    intent = Intent.CHANGE if request.method == "POST" else Intent.SHOW
    client = access.access_client_by_id(actor, client_id, intent=intent)
    if request.method == "POST":
        do_delete_client(client, actor=actor)
        messages.success(request, "Client deleted.")
        return redirect("client_list")
    return render(request, "clients/confirm_delete.html", {"client": client})


@require_POST
@member_required(Permission.CLIENTS_ASSIGNMENT_WRITE)
def client_assign(request: HttpRequest, actor: Actor, client_id: str) -> HttpResponse:
    """A manager lets a staff member serve this client."""
    client = access.access_client_by_id(actor, client_id, intent=Intent.CHANGE)
    form = StaffChoiceForm(request.POST, staff=list_staff(actor))
    # On a refusal the record, read to be changed, is shown after all.
    return form_action(
        request,
        form,
        lambda: do_assign_staff(client, form.cleaned_data["staff"], actor=actor),
        success="Staff member assigned.",
        done=lambda _: redirect("client_detail", client_id=client.pk),
        page=lambda status: _detail_page(
            request,
            actor,
            access.client_view(actor, client, intent=Intent.SHOW),
            assign_form=form,
            status=status,
        ),
    )


@require_POST
@member_required(Permission.CLIENTS_ASSIGNMENT_WRITE)
def client_unassign(
    request: HttpRequest, actor: Actor, client_id: str, membership_id: str
) -> HttpResponse:
    """The staff member no longer serves (or sees) this client."""
    client = access.access_client_by_id(actor, client_id, intent=Intent.CHANGE)
    staff = access_member_by_id(actor, membership_id)
    do_unassign_staff(client, staff, actor=actor)
    messages.success(request, "Staff member unassigned.")
    return redirect("client_detail", client_id=client.pk)


@require_POST
@member_required(Permission.STAFF_MEMBER_INVITE)
def client_invite(request: HttpRequest, actor: Actor, client_id: str) -> HttpResponse:
    """Email the client a link to their portal."""
    client = access.access_client_by_id(actor, client_id, intent=Intent.CHANGE)
    form = ClientInviteForm(request.POST)
    # On a refusal the record, read to be changed, is shown after all.
    return form_action(
        request,
        form,
        lambda: do_invite_member(
            actor=actor, email=form.cleaned_data["email"], role=Role.CLIENT, client=client
        ),
        success="Portal invitation sent.",
        done=lambda _: redirect("client_detail", client_id=client.pk),
        page=lambda status: _detail_page(
            request,
            actor,
            access.client_view(actor, client, intent=Intent.SHOW),
            invite_form=form,
            status=status,
        ),
    )


@require_safe
@member_required(Permission.CLIENTS_SELF_READ)
def portal(request: HttpRequest, actor: Actor) -> HttpResponse:
    """A client's own page: their details, their visits, and a way to ask for one."""
    client = access.access_client_by_id(actor, actor.membership.client_id, intent=Intent.SHOW)
    now = timezone.now()
    upcoming, past = read_visit_lines(
        actor,
        list_visits(actor, start=now),
        list_visits(actor, end=now).filter(ends_at__lte=now).order_by("-starts_at")[:10],
    )
    context = {
        "client": client,
        "profile": profiles.profile_for(actor, client),
        "upcoming": upcoming,
        "past": past,
        "request_form": VisitRequestForm(services=list_services(actor)),
        "record_access": access.own_record_access(actor),
        "erasure_request": pending_erasure_request(actor, client),
    }
    return render(request, "clients/portal.html", context)
