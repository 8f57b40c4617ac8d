"""Apple's PassKit web service (`/wallet/v1/...`), the HTTP doors onto wallet/webservice.py.

No session, no CSRF token (devices call it); a request about one pass authenticates with
`Authorization: ApplePass <token>` and then acts as that pass's client only. Bad input is a 400,
a wrong or missing token a 401 that says nothing more.
"""

from __future__ import annotations

import json
import logging

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.http import http_date, parse_http_date_safe
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from custodia.core.actor import acting_as
from custodia.wallet import config, pkpass
from custodia.wallet.access import access_wallet_source, business_name
from custodia.wallet.actions import do_register_device, do_unregister_device
from custodia.wallet.content import content_of
from custodia.wallet.webservice import Holder, authenticate, updated_serials
from custodia.web.wallet.views import pkpass_response

logger = logging.getLogger(__name__)

MAX_LOG_ENTRIES = 100


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


def _unauthorized() -> HttpResponse:
    return _no_store(HttpResponse(status=401))


def _bad_request(message: str) -> HttpResponse:
    return _no_store(JsonResponse({"detail": message}, status=400))


def _holder_or_401(request: HttpRequest, type_id: str, serial: str) -> Holder | None:
    return authenticate(type_id, serial, request.headers.get("Authorization"))


@csrf_exempt
@require_http_methods(["POST", "DELETE"])
def registration(request: HttpRequest, device_id: str, type_id: str, serial: str) -> HttpResponse:
    """Register a device for a pass's updates (POST, body {"pushToken": ...}) or unregister it
    (DELETE)."""
    holder = _holder_or_401(request, type_id, serial)
    if holder is None:
        return _unauthorized()
    if request.method == "DELETE":
        with acting_as(holder.actor):
            try:
                do_unregister_device(holder.wallet_pass, device_id, actor=holder.actor)
            except ValidationError as exc:
                return _bad_request(exc.messages[0])
        return _no_store(HttpResponse(status=200))
    try:
        body = json.loads(request.body or b"{}")
        push_token = body["pushToken"]
        if not isinstance(push_token, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return _bad_request('The body must be JSON with a "pushToken" string.')
    with acting_as(holder.actor):
        try:
            created = do_register_device(
                holder.wallet_pass, device_id, push_token, actor=holder.actor
            )
        except ValidationError as exc:
            return _bad_request(exc.messages[0])
    return _no_store(HttpResponse(status=201 if created else 200))


@require_safe
def updated_passes(request: HttpRequest, device_id: str, type_id: str) -> HttpResponse:
    """The serial numbers of the device's passes changed since `passesUpdatedSince` (a tag this
    answered before), and the newest tag; 204 when none."""
    found = updated_serials(device_id, type_id, request.GET.get("passesUpdatedSince"))
    if found is None:
        return _no_store(HttpResponse(status=204))
    return _no_store(
        JsonResponse({"serialNumbers": found.serial_numbers, "lastUpdated": found.last_updated})
    )


@require_safe
def latest_pass(request: HttpRequest, type_id: str, serial: str) -> HttpResponse:
    """The pass as it is now, signed; 304 when unchanged since If-Modified-Since."""
    holder = _holder_or_401(request, type_id, serial)
    if holder is None:
        return _unauthorized()
    modified = holder.wallet_pass.updated_at.timestamp()
    since = parse_http_date_safe(request.headers.get("If-Modified-Since", ""))
    if since is not None and int(modified) <= since:
        response = HttpResponse(status=304)
        response["Last-Modified"] = http_date(modified)
        return _no_store(response)
    with acting_as(holder.actor):
        source = access_wallet_source(holder.actor, holder.wallet_pass)
        content = pkpass.build_pkpass(
            content_of(source, business_name(holder.actor)),
            serial=holder.wallet_pass.serial_number,
            # The token the device holds and just proved (its digest is the stored one).
            token=holder.token,
            credentials=config.apple_credentials(),
        )
    return pkpass_response(content, modified)


@csrf_exempt
@require_POST
def device_log(request: HttpRequest) -> HttpResponse:
    """Devices report problems with this service here; only their number is logged (the
    messages name passes and addresses)."""
    try:
        entries = json.loads(request.body or b"{}").get("logs", [])
        count = len(entries) if isinstance(entries, list) else 0
    except (ValueError, AttributeError):
        return _bad_request('The body must be JSON with a "logs" list.')
    logger.info("wallet devices reported %d problem(s)", min(count, MAX_LOG_ENTRIES))
    return _no_store(HttpResponse(status=200))
