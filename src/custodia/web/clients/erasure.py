"""Erasure pages: a client asks from the portal, a manager erases (lifecycle/erasure.py)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from custodia.clients import access
from custodia.core.actor import Actor
from custodia.core.permissions import Permission
from custodia.lifecycle.erasure import (
    do_erase_client,
    do_request_erasure,
    pending_erasure_request,
)
from custodia.tenancy.reads import Intent
from custodia.web.decorators import member_required


@require_http_methods(["GET", "HEAD", "POST"])
@member_required(Permission.CLIENTS_RECORD_ERASE)
def client_erase(request: HttpRequest, actor: Actor, client_id: str) -> HttpResponse:
    """Ask, then erase a client's personal data (a fresh step-up is asked for inside)."""
    intent = Intent.CHANGE if request.method == "POST" else Intent.REFERENCE
    client = access.access_client_by_id(actor, client_id, intent=intent)
    context: dict[str, Any] = {
        "client": client,
        "erasure_request": pending_erasure_request(actor, client),
    }
    if request.method != "POST":
        return render(request, "clients/confirm_erase.html", context)
    try:
        do_erase_client(client, actor=actor)
    except ValidationError as exc:
        context["errors"] = exc.messages
        return render(request, "clients/confirm_erase.html", context, status=400)
    messages.success(request, "The client's personal data was erased.")
    return redirect("client_detail", client_id=client.pk)


@require_POST
@member_required(Permission.CLIENTS_SELF_ERASURE)
def portal_erasure_request(request: HttpRequest, actor: Actor) -> HttpResponse:
    """A client asks the business to erase their personal data."""
    do_request_erasure(actor=actor)
    messages.success(request, f"Your request was sent to {actor.business.name}.")
    return redirect("portal")
