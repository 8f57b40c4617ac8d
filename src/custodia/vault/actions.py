"""Writes about cards: hosted form sessions, adding a card, one-time references, deleting a
card, destroying a business's keys. Each runs in one transaction.

Charges and refunds are in charging.py.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from custodia.vault import keys
from custodia.vault import settings as vault_settings
from custodia.vault.access import card_by_token, open_form, require_live_business
from custodia.vault.cards import CardErrors, CardInvalid, CheckedCard, check_card
from custodia.vault.errors import Gone, NotFound, Refusal
from custodia.vault.gateways.base import CardDetails, GatewayError, Outcome
from custodia.vault.gateways.registry import gateway
from custodia.vault.models import Card, DestroyedBusiness, FormSession, Reference

logger = logging.getLogger(__name__)
MAX_RETURN_URL = 2000
# Which field a verification decline belongs to on the form.
DECLINE_FIELDS = {"incorrect_cvc": "security_code", "expired_card": "expiry"}
# How long a used or expired form or reference is kept (to answer 410 rather than 404).
EXPIRED_KEPT = dt.timedelta(days=1)
# Failed tries a hosted form takes before it closes (card testing needs many).
MAX_FORM_ATTEMPTS = 5
TOO_MANY_ATTEMPTS = "Too many tries with this form: it is closed. Start again from the app."


def new_id(prefix: str, nbytes: int = 18) -> str:
    """An unguessable id (URL-safe) with a readable prefix."""
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"


def check_return_url(return_url: str) -> str:
    """The app's return URL: absolute, on the app's origin (CUSTODIA_PUBLIC_URL), nothing else."""
    if not isinstance(return_url, str) or not return_url or len(return_url) > MAX_RETURN_URL:
        raise Refusal("return_url must be a URL on the app's origin.")
    parts = urlsplit(return_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if origin != vault_settings.APP_ORIGIN or parts.username or parts.password or parts.fragment:
        raise Refusal("return_url must be a URL on the app's origin.")
    if any(ord(char) < 0x21 for char in return_url):
        raise Refusal("return_url must be a URL on the app's origin.")
    return return_url


def do_create_form(business_id: uuid.UUID, return_url: str) -> FormSession:
    """A one-time, short-lived hosted form for the business, returning to `return_url`."""
    require_live_business(business_id)
    return_url = check_return_url(return_url)
    keys.ensure_business_keys(business_id)
    now = timezone.now()
    purge_expired(now)
    return FormSession.objects.create(
        form_id=new_id("form", 24),
        business_id=business_id,
        return_url=return_url,
        expires_at=now + dt.timedelta(seconds=vault_settings.FORM_TTL_SECONDS),
    )


def purge_expired(now: dt.datetime) -> None:
    """Forms and references a day past their expiry go (a used one answers 410 until then)."""
    before = now - EXPIRED_KEPT
    FormSession.objects.filter(expires_at__lt=before).delete()
    Reference.objects.filter(expires_at__lt=before).delete()


class GatewayUnavailable(Refusal):
    status = 503


@dataclass(frozen=True)
class AddedCard:
    reference: Reference
    return_url: str


def _verify(card: CheckedCard, token: str) -> None:
    """The one authorization made with the security code; a decline is a field error."""
    details = CardDetails(
        number=card.number,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        holder_name=card.holder_name,
        security_code=card.security_code,
    )
    try:
        result = gateway().verify_card(details, idempotency_key=f"verify_{token}")
    except GatewayError:
        # A timeout included: the card was not added, and the person may simply try again.
        raise GatewayUnavailable(
            "The card could not be checked just now: please try again in a moment."
        ) from None
    if result.outcome != Outcome.APPROVED:
        field = DECLINE_FIELDS.get(result.decline_code or "", "number")
        message = result.message or "The card was declined."
        raise CardErrors([CardInvalid(field, message)])


def do_add_card(
    form_id: str, *, number: str, expiry: str, security_code: str, holder_name: str
) -> AddedCard:
    """Check the card, verify it with the gateway, seal it, and hand back a one-time reference.

    The form is used up when the card is added. Wrong details or a declined card leave it open
    for another try (CardErrors), MAX_FORM_ATTEMPTS times at most: then it closes, so a form
    cannot be used to test stolen card numbers one after another. A used, closed or expired
    form is Gone.
    """
    failed: CardErrors | None = None
    with transaction.atomic():
        form = open_form(form_id, for_update=True)
        require_live_business(form.business_id)
        token = new_id("card")
        try:
            checked = check_card(
                number=number, expiry=expiry, security_code=security_code, holder_name=holder_name
            )
            _verify(checked, token)
        except CardErrors as exc:
            failed = exc
            form.attempts += 1
            if form.attempts >= MAX_FORM_ATTEMPTS:
                form.used_at = timezone.now()
                failed.by_field["form"] = TOO_MANY_ATTEMPTS
            form.save(update_fields=["attempts", "used_at"])
        else:
            reference = _store_card(form, checked, token)
    if failed is not None:
        raise failed
    logger.info("card %s added for business %s", token, form.business_id)
    return AddedCard(reference=reference, return_url=form.return_url)


def _store_card(form: FormSession, checked: CheckedCard, token: str) -> Reference:
    """The sealed card, the form used up, and the one-time reference to it."""
    business = form.business_id
    fingerprint = keys.fingerprint(business, checked.number)
    same = (
        Card.objects.filter(business_id=business, fingerprint=fingerprint, deleted_at__isnull=True)
        .order_by("created_at")
        .first()
    )
    card = Card.objects.create(
        token=token,
        business_id=business,
        brand=checked.brand,
        last4=checked.last4,
        exp_month=checked.exp_month,
        exp_year=checked.exp_year,
        fingerprint=fingerprint,
        number_sealed=keys.seal(business, "number", token, checked.number),
        holder_sealed=keys.seal(business, "holder", token, checked.holder_name),
    )
    now = timezone.now()
    form.used_at = now
    form.save(update_fields=["used_at"])
    return Reference.objects.create(
        ref=new_id("ref", 24),
        business_id=business,
        card=card,
        duplicate_of=same.token if same else "",
        expires_at=now + dt.timedelta(seconds=vault_settings.REFERENCE_TTL_SECONDS),
    )


def do_redeem_reference(business_id: uuid.UUID, ref: str) -> Reference:
    """The card a reference names, once only, within its 10 minutes, for its own business."""
    require_live_business(business_id)
    with transaction.atomic():
        reference = (
            Reference.objects.select_for_update()
            .select_related("card")
            .filter(ref=ref, business_id=business_id)
            .first()
        )
        if reference is None:
            raise NotFound("reference")
        if reference.redeemed_at is not None or reference.expires_at <= timezone.now():
            raise Gone("This reference has been redeemed already or has expired.")
        if reference.card.deleted_at is not None:
            raise Gone("The card of this reference was deleted.")
        reference.redeemed_at = timezone.now()
        reference.save(update_fields=["redeemed_at"])
    return reference


def do_delete_card(business_id: uuid.UUID, token: str) -> None:
    """Destroy the card's sealed number and name (the row keeps its metadata for charges)."""
    require_live_business(business_id)
    with transaction.atomic():
        card = card_by_token(business_id, token, for_update=True)
        card.number_sealed = None
        card.holder_sealed = None
        card.deleted_at = timezone.now()
        card.save(update_fields=["number_sealed", "holder_sealed", "deleted_at"])
    logger.info("card %s deleted for business %s", token, business_id)


def do_destroy_business(business_id: uuid.UUID) -> bool:
    """Crypto-shred the business: its vault key is destroyed, so no sealed card of it can be
    opened again, and every later request for it is refused. True if a key existed."""
    with transaction.atomic():
        DestroyedBusiness.objects.get_or_create(business_id=business_id)
        Reference.objects.filter(business_id=business_id, redeemed_at__isnull=True).delete()
        FormSession.objects.filter(business_id=business_id, used_at__isnull=True).delete()
    existed = keys.destroy_business_keys(business_id)
    logger.info("vault key of business %s destroyed", business_id)
    return existed
