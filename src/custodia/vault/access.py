"""Reads: every object is looked up within the business the signed request is for, so another
business's token, charge or reference is a 404, exactly like one that never existed."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet
from django.utils import timezone

from custodia.vault.errors import Gone, NotFound
from custodia.vault.models import Card, Charge, DestroyedBusiness, FormSession


def require_live_business(business_id: uuid.UUID) -> None:
    """A business whose vault key was destroyed gets 410 for everything."""
    if DestroyedBusiness.objects.filter(business_id=business_id).exists():
        raise Gone("This business's cards were destroyed.")


def card_by_token(business_id: uuid.UUID, token: str, *, for_update: bool = False) -> Card:
    """A card of this business that was not deleted."""
    cards: QuerySet[Card] = Card.objects.filter(
        business_id=business_id, token=token, deleted_at__isnull=True
    )
    if for_update:
        cards = cards.select_for_update()
    card = cards.first()
    if card is None:
        raise NotFound("card")
    return card


def charge_by_id(business_id: uuid.UUID, charge_id: str, *, for_update: bool = False) -> Charge:
    charges: QuerySet[Charge] = Charge.objects.filter(business_id=business_id, charge_id=charge_id)
    if for_update:
        charges = charges.select_for_update()
    charge = charges.first()
    if charge is None:
        raise NotFound("charge")
    return charge


def open_form(form_id: str, *, for_update: bool = False) -> FormSession:
    """A form session still usable: 404 if unknown, 410 once used or expired."""
    forms: QuerySet[FormSession] = FormSession.objects.filter(form_id=form_id)
    if for_update:
        forms = forms.select_for_update()
    form = forms.first()
    if form is None:
        raise NotFound("card form")
    if form.used_at is not None or form.expires_at <= timezone.now():
        raise Gone("This card form has been used or has expired: start again from the app.")
    return form
