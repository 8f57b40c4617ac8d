"""Every API request to the vault is signed by the app (vault/client.py has the format).

`signed_request` refuses, with one and the same 401, a request without a signature, with a
wrong one, with a timestamp more than 5 minutes old or ahead, with an id (nonce) seen before,
or whose method, path, business, idempotency key or body was changed after signing. A nonce
is stored (SeenNonce) until its timestamp leaves the window, so a replay is refused by every
vault worker.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from standardwebhooks.webhooks import WebhookVerificationError

from custodia.vault.client import (
    BUSINESS_HEADER,
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADERS,
    signed_payload,
    signer,
)
from custodia.vault.models import SeenNonce

logger = logging.getLogger(__name__)
WINDOW = dt.timedelta(minutes=5)
MAX_NONCE_LENGTH = 100


def unauthenticated() -> JsonResponse:
    """The one answer to every failed signature check: nothing says which part failed."""
    return JsonResponse({"error": "The request is not correctly signed."}, status=401)


def verify_signature(request: HttpRequest) -> uuid.UUID | None:
    """The business a correctly signed, fresh, first-seen request is for; None otherwise."""
    headers = {name: request.headers.get(name, "") for name in SIGNATURE_HEADERS}
    business = request.headers.get(BUSINESS_HEADER, "")
    idempotency_key = request.headers.get(IDEMPOTENCY_HEADER, "")
    nonce = headers["webhook-id"]
    if not all(headers.values()) or len(nonce) > MAX_NONCE_LENGTH:
        return None
    payload = signed_payload(
        request.method or "", request.get_full_path(), business, idempotency_key, request.body
    )
    try:
        signer(settings.VAULT_SIGNING_SECRET).verify(payload, headers, json_parse=False)
        business_id = uuid.UUID(business)
    except (WebhookVerificationError, ValueError):
        return None
    # Kept until no timestamp that could carry it is accepted any more.
    sent = dt.datetime.fromtimestamp(float(headers["webhook-timestamp"]), tz=dt.UTC)
    try:
        with transaction.atomic():
            SeenNonce.objects.create(
                nonce=nonce, expires_at=sent + WINDOW + dt.timedelta(seconds=5)
            )
    except IntegrityError:
        logger.warning("a signed request was replayed (nonce seen before)")
        return None
    SeenNonce.objects.filter(expires_at__lt=timezone.now()).delete()
    return business_id


def signed_request(
    view: Callable[..., HttpResponse],
) -> Callable[..., HttpResponse]:
    """A JSON API view for signed requests only; the view gets `business_id` first."""

    @csrf_exempt
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        business_id = verify_signature(request)
        if business_id is None:
            return unauthenticated()
        return view(request, business_id, *args, **kwargs)

    return wrapped
