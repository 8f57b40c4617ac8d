"""Webhook endpoints: an owner adds, changes, tests, rotates and deletes them, and reads their
delivery logs. Thin doors: reads through webhooks/access.py, writes through webhooks/actions.py
(step-up and audit inside). A secret is shown once, on the answer of its creation or rotation,
which no cache keeps."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from custodia.core.actor import Actor
from custodia.core.permissions import Permission
from custodia.web.decorators import member_required
from custodia.web.forms import form_action
from custodia.web.webhooks.forms import ButtonForm, EndpointForm, EndpointSettingsForm
from custodia.webhooks import access
from custodia.webhooks.actions import (
    do_create_endpoint,
    do_delete_endpoint,
    do_resend_delivery,
    do_rotate_endpoint_secret,
    do_send_test_event,
    do_update_endpoint,
)
from custodia.webhooks.models import DeliveryStatus, Endpoint

MANAGE = Permission.WEBHOOKS_MANAGE


def _secret_page(
    request: HttpRequest, endpoint: Endpoint, secret: str, *, new: bool
) -> HttpResponse:
    response = render(
        request,
        "webhooks/secret.html",
        {
            "endpoint": endpoint,
            "secret": secret,
            "new": new,
            "overlap_hours": settings.WEBHOOKS_ROTATION_OVERLAP_HOURS,
        },
    )
    add_never_cache_headers(response)
    return response


@require_safe
@member_required(MANAGE)
def webhook_list(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The business's endpoints."""
    endpoints = list(access.list_endpoints(actor))
    return render(request, "webhooks/list.html", {"endpoints": endpoints})


@require_http_methods(["GET", "HEAD", "POST"])
@member_required(MANAGE)
def webhook_add(request: HttpRequest, actor: Actor) -> HttpResponse:
    """A new endpoint; its secret is shown on the answer, once."""
    form = EndpointForm(request.POST if request.method == "POST" else None)

    def page(status: int) -> HttpResponse:
        return render(request, "webhooks/add.html", {"form": form}, status=status)

    if request.method != "POST":
        return page(200)
    return form_action(
        request,
        form,
        lambda: do_create_endpoint(actor=actor, **form.cleaned_data),
        done=lambda made: _secret_page(request, made[0], made[1], new=True),
        page=page,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@member_required(MANAGE)
def webhook_detail(request: HttpRequest, actor: Actor, endpoint_id: str) -> HttpResponse:
    """An endpoint's settings and its delivery log."""
    endpoint = access.access_endpoint_by_id(actor, endpoint_id)
    if request.method == "POST":
        form = EndpointSettingsForm(request.POST)
    else:
        form = _settings_form(endpoint)

    def page(status: int) -> HttpResponse:
        return _detail_page(request, actor, endpoint, form, status)

    if request.method != "POST":
        return page(200)
    return form_action(
        request,
        form,
        lambda: do_update_endpoint(endpoint, actor=actor, **form.cleaned_data),
        success="Endpoint saved.",
        done=lambda _: redirect("webhook_detail", endpoint.pk),
        page=page,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@member_required(MANAGE)
def webhook_rotate(request: HttpRequest, actor: Actor, endpoint_id: str) -> HttpResponse:
    """Confirm, then a new secret (shown once); the old one keeps signing for a while."""
    endpoint = access.access_endpoint_by_id(actor, endpoint_id)
    form = ButtonForm(request.POST if request.method == "POST" else None)

    def page(status: int) -> HttpResponse:
        return render(
            request,
            "webhooks/rotate.html",
            {
                "endpoint": endpoint,
                "form": form,
                "overlap_hours": settings.WEBHOOKS_ROTATION_OVERLAP_HOURS,
            },
            status=status,
        )

    if request.method != "POST":
        return page(200)
    return form_action(
        request,
        form,
        lambda: do_rotate_endpoint_secret(endpoint, actor=actor),
        done=lambda secret: _secret_page(request, endpoint, secret, new=False),
        page=page,
    )


@require_POST
@member_required(MANAGE)
def webhook_test(request: HttpRequest, actor: Actor, endpoint_id: str) -> HttpResponse:
    """Send a `webhook.test` event now; the page says how it went."""
    endpoint = access.access_endpoint_by_id(actor, endpoint_id)
    delivery = do_send_test_event(endpoint, actor=actor)
    if delivery.status == DeliveryStatus.DELIVERED:
        messages.success(
            request, f"The test event was delivered (HTTP {delivery.response_status})."
        )
    else:
        status = f", HTTP {delivery.response_status}" if delivery.response_status else ""
        messages.error(request, f"The test event was not delivered: {delivery.error}{status}.")
    return redirect("webhook_detail", endpoint.pk)


@require_http_methods(["GET", "HEAD", "POST"])
@member_required(MANAGE)
def webhook_delete(request: HttpRequest, actor: Actor, endpoint_id: str) -> HttpResponse:
    """Confirm, then remove the endpoint and its delivery log."""
    endpoint = access.access_endpoint_by_id(actor, endpoint_id)
    form = ButtonForm(request.POST if request.method == "POST" else None)

    def page(status: int) -> HttpResponse:
        return render(
            request, "webhooks/delete.html", {"endpoint": endpoint, "form": form}, status=status
        )

    if request.method != "POST":
        return page(200)
    return form_action(
        request,
        form,
        lambda: do_delete_endpoint(endpoint, actor=actor),
        success="Endpoint deleted. Nothing more is sent to it.",
        done=lambda _: redirect("webhook_list"),
        page=page,
    )


@require_POST
@member_required(MANAGE)
def webhook_resend(
    request: HttpRequest, actor: Actor, endpoint_id: str, delivery_id: str
) -> HttpResponse:
    """Send a failed delivery again (in the background, with its retries)."""
    endpoint = access.access_endpoint_by_id(actor, endpoint_id)
    delivery = access.access_delivery_by_id(actor, endpoint, delivery_id)
    form = ButtonForm(request.POST)
    return form_action(
        request,
        form,
        lambda: do_resend_delivery(delivery, actor=actor),
        success="The delivery is queued to be sent again.",
        done=lambda _: redirect("webhook_detail", endpoint.pk),
        page=lambda status: _refused(request, actor, endpoint, form, status),
    )


def _detail_page(
    request: HttpRequest,
    actor: Actor,
    endpoint: Endpoint,
    form: EndpointSettingsForm | None,
    status: int,
) -> HttpResponse:
    context = {
        "endpoint": endpoint,
        "form": form or _settings_form(endpoint),
        "deliveries": access.read_delivery_log(actor, endpoint),
        "failed": DeliveryStatus.FAILED,
        "button": ButtonForm(),
    }
    return render(request, "webhooks/detail.html", context, status=status)


def _settings_form(endpoint: Endpoint) -> EndpointSettingsForm:
    return EndpointSettingsForm(
        initial={
            "url": endpoint.url,
            "description": endpoint.description,
            "event_types": endpoint.event_types,
            "is_active": endpoint.is_active,
        }
    )


def _refused(
    request: HttpRequest, actor: Actor, endpoint: Endpoint, form: ButtonForm, status: int
) -> HttpResponse:
    for error in form.non_field_errors():
        messages.error(request, str(error))
    return _detail_page(request, actor, endpoint, None, status)
