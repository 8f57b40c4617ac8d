"""Reads for wallet passes: a client's own pass or membership, through payments' access (recorded
`pass.read` or `client_membership.read`); anyone else gets a 404, as for any pass they may not
see."""

from __future__ import annotations

from django.http import Http404

from custodia.core.actor import Actor
from custodia.core.audit import note_refusal
from custodia.core.permissions import Role
from custodia.payments.access import access_pass_by_id, read_membership_by_id
from custodia.payments.models import ClientMembership, ClientPass
from custodia.tenancy.access import parse_id
from custodia.tenancy.models import Business
from custodia.tenancy.reads import Intent
from custodia.wallet.content import Source
from custodia.wallet.models import WalletPass


def access_own_pass_for_wallet(actor: Actor, pass_id: object) -> ClientPass:
    """The acting client's own pass, read and recorded, or 404: a wallet pass is its client's
    alone (managers and staff, who may see the pass on its page, get none)."""
    key = parse_id(pass_id)
    if actor.role != Role.CLIENT:
        note_refusal("clientpass", key)
        raise Http404("No such pass.")
    return access_pass_by_id(actor, key, intent=Intent.SHOW)


def access_own_membership_for_wallet(actor: Actor, membership_id: object) -> ClientMembership:
    """The acting client's own membership, read through payments' access and recorded, or 404
    (anyone else, managers and owners included: a wallet pass is its client's alone)."""
    key = parse_id(membership_id)
    if actor.role != Role.CLIENT:
        note_refusal("clientmembership", key)
        raise Http404("No such membership.")
    return read_membership_by_id(actor, key)


def access_wallet_source(actor: Actor, wallet_pass: WalletPass) -> Source:
    """What the wallet pass shows, read as its holder (the pass's client) and recorded."""
    if wallet_pass.membership_id is not None:
        return access_own_membership_for_wallet(actor, wallet_pass.membership_id)
    return access_own_pass_for_wallet(actor, wallet_pass.client_pass_id)


def business_name(actor: Actor) -> str:
    """The name of the actor's business, as a pass shows it."""
    name: str = Business.objects.values_list("name", flat=True).get(pk=actor.tenant_id)
    return name
