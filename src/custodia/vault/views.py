"""Thin doors: parse, call access/actions/charging, answer JSON (or the hosted form's page).

No answer ever holds a card number or a security code; the hosted form never echoes the number
or the code back, even when other fields are wrong.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.db import connection, transaction
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt, csrf_protect, ensure_csrf_cookie
from django.views.decorators.http import require_http_methods

from custodia.vault import actions, charging
from custodia.vault import settings as vault_settings
from custodia.vault.access import card_by_token, charge_by_id, open_form, require_live_business
from custodia.vault.auth import signed_request
from custodia.vault.cards import CardErrors
from custodia.vault.errors import NotFound, Refusal
from custodia.vault.gateways.incoming import (
    RefusalReason,
    SqlSeenEvents,
    WebhookRefused,
    verify_gateway_event,
)
from custodia.vault.idempotency import request_digest
from custodia.vault.models import Card, Charge, Refund

STATIC = Path(__file__).resolve().parent / "static" / "vault"


def refused(exc: Refusal) -> JsonResponse:
    return JsonResponse({"error": exc.message}, status=exc.status)


def json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise Refusal("The body must be a JSON object.") from None
    if not isinstance(data, dict):
        raise Refusal("The body must be a JSON object.")
    return data


def same_business(data: dict[str, Any], business_id: uuid.UUID) -> None:
    """A body's business_id must be the one the request was signed for."""
    if str(data.get("business_id", "")) != str(business_id):
        raise Refusal("business_id must be the business the request is signed for.")


def card_data(card: Card, duplicate_of: str = "") -> dict[str, Any]:
    data: dict[str, Any] = {
        "token": card.token,
        "brand": card.brand,
        "last4": card.last4,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
        "fingerprint": card.fingerprint,
    }
    if duplicate_of:
        data["duplicate_of"] = duplicate_of
    return data


def charge_data(charge: Charge) -> dict[str, Any]:
    return {
        "charge_id": charge.charge_id,
        "status": charge.status,
        "amount": charge.amount,
        "currency": charge.currency,
        "refunded": charge.refunded,
        "decline_code": charge.decline_code or None,
        "message": charge.message,
        "gateway_reference": charge.gateway_reference or None,
    }


def refund_data(refund: Refund) -> dict[str, Any]:
    return {
        "refund_id": refund.refund_id,
        "charge_id": refund.charge_id,
        "status": refund.status,
        "amount": refund.amount,
        "decline_code": refund.decline_code or None,
        "message": refund.message,
        "gateway_reference": refund.gateway_reference or None,
    }


def status_of(row: Charge | Refund) -> int:
    """202 while the outcome is not final (unknown or pending), else 200."""
    return 202 if row.status in {"unknown", "pending"} else 200


def api(methods: list[str]) -> Any:
    """A signed JSON endpoint accepting `methods`; Refusal becomes its JSON answer."""

    def decorate(view: Any) -> Any:
        def run(request: HttpRequest, business_id: uuid.UUID, *args: Any, **kwargs: Any) -> Any:
            try:
                return view(request, business_id, *args, **kwargs)
            except Refusal as exc:
                return refused(exc)

        return signed_request(require_http_methods(methods)(run))

    return decorate


@api(["POST"])
def forms(request: HttpRequest, business_id: uuid.UUID) -> JsonResponse:
    data = json_body(request)
    same_business(data, business_id)
    form = actions.do_create_form(business_id, data.get("return_url", ""))
    form_url = f"{vault_settings.VAULT_URL}/form/{form.form_id}/"
    return JsonResponse({"form_id": form.form_id, "form_url": form_url}, status=201)


@api(["POST"])
def redeem(request: HttpRequest, business_id: uuid.UUID, ref: str) -> JsonResponse:
    reference = actions.do_redeem_reference(business_id, ref)
    return JsonResponse(card_data(reference.card, reference.duplicate_of))


@api(["GET", "DELETE"])
def card(request: HttpRequest, business_id: uuid.UUID, token: str) -> JsonResponse:
    if request.method == "DELETE":
        actions.do_delete_card(business_id, token)
        return JsonResponse({"deleted": token})
    require_live_business(business_id)
    return JsonResponse(card_data(card_by_token(business_id, token)))


@api(["POST"])
def charges(request: HttpRequest, business_id: uuid.UUID) -> JsonResponse:
    data = json_body(request)
    same_business(data, business_id)
    charge = charging.do_charge(
        business_id,
        token=data.get("token"),
        amount=data.get("amount"),
        currency=data.get("currency"),
        idempotency_key=request.headers.get("Idempotency-Key", ""),
        digest=request_digest(request.path, request.body),
    )
    return JsonResponse(charge_data(charge), status=status_of(charge))


@api(["GET"])
def charge(request: HttpRequest, business_id: uuid.UUID, charge_id: str) -> JsonResponse:
    require_live_business(business_id)
    return JsonResponse(charge_data(charge_by_id(business_id, charge_id)))


@api(["POST"])
def refunds(request: HttpRequest, business_id: uuid.UUID, charge_id: str) -> JsonResponse:
    data = json_body(request)
    refund = charging.do_refund(
        business_id,
        charge_id,
        amount=data.get("amount"),
        idempotency_key=request.headers.get("Idempotency-Key", ""),
        digest=request_digest(request.path, request.body),
    )
    return JsonResponse(refund_data(refund), status=status_of(refund))


@api(["POST"])
def destroy(request: HttpRequest, business_id: uuid.UUID, business: str) -> JsonResponse:
    if business != str(business_id):
        raise NotFound("business")
    actions.do_destroy_business(business_id)
    return JsonResponse({"destroyed": str(business_id)})


# --- The hosted card form ---------------------------------------------------------------------


def form_policy() -> str:
    """The form page's CSP: its CSS from here, framed by the app only, posting here and
    redirected (a form-action navigation) to the app."""
    app = vault_settings.APP_ORIGIN
    return (
        "default-src 'none'; style-src 'self'; base-uri 'none';"
        f" form-action 'self' {app}; frame-ancestors {app}"
    )


def form_page(request: HttpRequest, form_id: str, status: int = 200, **context: Any) -> Any:
    response = render(request, "vault/form.html", {"form_id": form_id, **context}, status=status)
    response["Content-Security-Policy"] = form_policy()
    return response


def gone_page(request: HttpRequest, message: str, status: int) -> HttpResponse:
    response = render(request, "vault/gone.html", {"message": message}, status=status)
    response["Content-Security-Policy"] = form_policy()
    return response


def with_reference(return_url: str, ref: str) -> str:
    parts = urlsplit(return_url)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=query + urlencode({"ref": ref})))


@ensure_csrf_cookie
@csrf_protect
@require_http_methods(["GET", "POST"])
def hosted_form(request: HttpRequest, form_id: str) -> HttpResponse:
    """The card form (GET), and adding the card it posts (POST): 303 to the app with a
    one-time reference, or the form again with its errors (400), or 410 once used/expired."""
    try:
        open_form(form_id)
        if request.method == "GET":
            return form_page(request, form_id)
        added = actions.do_add_card(
            form_id,
            number=request.POST.get("number", ""),
            expiry=request.POST.get("expiry", ""),
            security_code=request.POST.get("security_code", ""),
            holder_name=request.POST.get("holder_name", ""),
        )
    except CardErrors as exc:
        # Never the number or the code back: the person types them again.
        return form_page(
            request,
            form_id,
            status=400,
            errors=exc.by_field,
            expiry=request.POST.get("expiry", "")[:7],
            holder_name=request.POST.get("holder_name", "")[:100],
        )
    except actions.GatewayUnavailable as exc:
        return form_page(request, form_id, status=503, errors={"form": exc.message})
    except Refusal as exc:
        return gone_page(request, exc.message, exc.status)
    response = HttpResponseRedirect(with_reference(added.return_url, added.reference.ref))
    response.status_code = 303
    return response


@csrf_exempt
@require_http_methods(["POST"])
def gateway_events(request: HttpRequest, gateway_name: str) -> JsonResponse:
    """A gateway's webhook: verified (its signature, a 5-minute window, an id seen once) and
    applied in one transaction, so an event whose handling fails is not remembered and the
    gateway's retry is accepted. A replay is acknowledged (200) and does nothing; any other
    refusal is a 400 naming the check that failed."""
    secret = vault_settings.GATEWAY_WEBHOOK_SECRETS.get(gateway_name)
    if not secret:
        raise Http404
    try:
        with transaction.atomic():
            event = verify_gateway_event(
                gateway_name, request.body, request.headers, secret, SqlSeenEvents(connection)
            )
            charging.do_apply_gateway_event(event)
    except WebhookRefused as exc:
        if exc.reason == RefusalReason.REPLAYED:
            return JsonResponse({"received": True, "replayed": True})
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"received": True})


def form_css(request: HttpRequest) -> FileResponse:
    """The form's one stylesheet (the CSP allows no inline style)."""
    response = FileResponse((STATIC / "form.css").open("rb"), content_type="text/css")
    response["Cache-Control"] = "public, max-age=3600"
    return response


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return gone_page(request, "This form could not be checked: reload the page and try again.", 403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"error": "Not found."}, status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"error": "The vault failed; nothing was changed."}, status=500)
