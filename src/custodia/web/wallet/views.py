"""A client's pass or membership in their wallet: the Apple Wallet file and the Google Wallet
save link.

Thin doors: the pass or membership is read through wallet/access.py (recorded), the wallet pass
issued by wallet/actions.py; anyone but its own client gets a 404.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import http_date
from django.views.decorators.http import require_safe

from custodia.core.actor import Actor
from custodia.wallet import config, google, pkpass
from custodia.wallet.access import (
    access_own_membership_for_wallet,
    access_own_pass_for_wallet,
    business_name,
)
from custodia.wallet.actions import do_issue_wallet_pass
from custodia.wallet.content import Source, content_of
from custodia.web.decorators import member_required


def _apple(actor: Actor, source: Source) -> HttpResponse:
    issued = do_issue_wallet_pass(source, actor=actor)
    return pkpass_response(
        pkpass.build_pkpass(
            content_of(source, business_name(actor)),
            serial=issued.wallet_pass.serial_number,
            token=issued.token,
            credentials=config.apple_credentials(),
        ),
        issued.wallet_pass.updated_at.timestamp(),
    )


def _google(actor: Actor, source: Source) -> HttpResponse:
    issued = do_issue_wallet_pass(source, actor=actor)
    link = google.save_link(
        content_of(source, business_name(actor)),
        serial=issued.wallet_pass.serial_number,
        credentials=config.google_credentials(),
    )
    response = HttpResponseRedirect(link)
    response["Cache-Control"] = "no-store"
    return response


def _require_apple() -> None:
    if not config.apple_enabled():
        raise Http404("Apple Wallet passes are not offered here.")


def _require_google() -> None:
    if not config.google_enabled():
        raise Http404("Google Wallet passes are not offered here.")


def pkpass_response(content: bytes, modified: float) -> HttpResponse:
    """A .pkpass answer, never cached by anything between."""
    response = HttpResponse(content, content_type=pkpass.CONTENT_TYPE)
    response["Content-Disposition"] = 'attachment; filename="pass.pkpass"'
    response["Last-Modified"] = http_date(modified)
    response["Cache-Control"] = "no-store"
    return response


@require_safe
@member_required()
def apple_pass(request: HttpRequest, actor: Actor, pass_id: str) -> HttpResponse:
    """The client's own pass as a signed .pkpass file."""
    _require_apple()
    return _apple(actor, access_own_pass_for_wallet(actor, pass_id))


@require_safe
@member_required()
def google_pass(request: HttpRequest, actor: Actor, pass_id: str) -> HttpResponse:
    """On to Google Wallet's page that saves the client's own pass (a signed JWT link)."""
    _require_google()
    return _google(actor, access_own_pass_for_wallet(actor, pass_id))


@require_safe
@member_required()
def apple_membership(request: HttpRequest, actor: Actor, membership_id: str) -> HttpResponse:
    """The client's own membership as a signed .pkpass file."""
    _require_apple()
    return _apple(actor, access_own_membership_for_wallet(actor, membership_id))


@require_safe
@member_required()
def google_membership(request: HttpRequest, actor: Actor, membership_id: str) -> HttpResponse:
    """On to Google Wallet's page that saves the client's own membership."""
    _require_google()
    return _google(actor, access_own_membership_for_wallet(actor, membership_id))
