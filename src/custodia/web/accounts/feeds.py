"""A member's calendar feed: see whether one is live, make one (its address shown once),
revoke it (docs/visits.md, "Calendar feed"). Session pages only: an API token never reaches
them, and making a feed needs a fresh proof of identity (step-up), as an API token does."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from custodia.accounts.access import live_calendar_feed
from custodia.accounts.actions import do_create_calendar_feed, do_revoke_calendar_feed
from custodia.accounts.links import public_url
from custodia.core.actor import Actor
from custodia.core.permissions import Permission
from custodia.web.decorators import member_required


@require_safe
@member_required(Permission.TOKENS_CREATE)
def calendar_feed_page(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Whether the member has a live feed (since when), and the buttons to make or revoke one."""
    return render(request, "accounts/calendar_feed.html", {"feed": live_calendar_feed(actor)})


@require_POST
@member_required(Permission.TOKENS_CREATE)
def calendar_feed_create(request: HttpRequest, actor: Actor) -> HttpResponse:
    """A new feed (the one before it stops working); its address is shown this once."""
    feed, secret_path = do_create_calendar_feed(actor=actor)
    prefix, secret = secret_path.split("/", 1)
    address = public_url(reverse("calendar_feed", args=[prefix, secret]))
    return render(
        request, "accounts/calendar_feed_created.html", {"feed": feed, "address": address}
    )


@require_POST
@member_required(Permission.TOKENS_CREATE)
def calendar_feed_revoke(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The live feed stops working at once."""
    feed = live_calendar_feed(actor)
    if feed is None:
        messages.info(request, "You have no calendar feed to revoke.")
    else:
        do_revoke_calendar_feed(feed, actor=actor)
        messages.success(request, "Calendar feed revoked: its address no longer works.")
    return redirect("calendar_feed_page")
