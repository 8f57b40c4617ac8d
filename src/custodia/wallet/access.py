"""Reads for wallet passes: a client's own pass, through payments' access (recorded as a read of
the pass); anyone else gets a 404, as for any pass they may not see."""

from __future__ import annotations

from django.http import Http404

from custodia.core.actor import Actor
from custodia.core.audit import note_refusal
from custodia.core.permissions import Role
from custodia.payments.access import access_pass_by_id
from custodia.payments.models import ClientPass
from custodia.tenancy.access import parse_id
from custodia.tenancy.models import Business
from custodia.tenancy.reads import Intent


def access_own_pass_for_wallet(actor: Actor, pass_id: object) -> ClientPass:
    """The acting client's own pass, read and recorded, or 404: a wallet pass is its client's
    alone (managers and staff, who may see the pass on its page, get none)."""
    key = parse_id(pass_id)
    if actor.role != Role.CLIENT:
        note_refusal("clientpass", key)
        raise Http404("No such pass.")
    return access_pass_by_id(actor, key, intent=Intent.SHOW)


def business_name(actor: Actor) -> str:
    """The name of the actor's business, as a pass shows it."""
    name: str = Business.objects.values_list("name", flat=True).get(pk=actor.tenant_id)
    return name
