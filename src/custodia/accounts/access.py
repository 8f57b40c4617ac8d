"""Reads for accounts: API tokens, calendar feeds, and a person's security events."""

from __future__ import annotations

import hmac
import re
from typing import Any, NamedTuple

from django.db.models import QuerySet
from django.http import Http404

from custodia.accounts.digests import candidate_digests, is_wellformed_prefix
from custodia.accounts.models import ApiToken, CalendarFeed, SecurityEvent, User
from custodia.core.actor import Actor
from custodia.core.dbcontext import set_db_context
from custodia.tenancy.access import parse_id

# Labels, not secrets: the HMAC purpose and the visible start of every token.
TOKEN_PURPOSE = "api-token"  # noqa: S105
TOKEN_PREFIX = "cst"  # noqa: S105
CALENDAR_FEED_PURPOSE = "calendar-feed"
# What `secrets.token_urlsafe(32)` makes (accounts/digests.py: issue_secret), 43 characters.
FEED_SECRET = re.compile(r"[A-Za-z0-9_-]{20,64}")
# Compared against when no feed has the prefix, so a wrong prefix costs what a wrong secret does.
NO_DIGEST = "0" * 64


def list_tokens(actor: Actor) -> QuerySet[ApiToken]:
    """The actor's own tokens in the current business."""
    return ApiToken.objects.filter(tenant_id=actor.tenant_id, user=actor.user).order_by(
        "-created_at"
    )


def access_token_by_id(actor: Actor, token_id: object) -> ApiToken:
    """One of the actor's own tokens in the current business, or 404."""
    try:
        return list_tokens(actor).get(id=parse_id(token_id))
    except ApiToken.DoesNotExist:
        raise Http404("No such token.") from None


def live_calendar_feed(actor: Actor) -> CalendarFeed | None:
    """The actor's own calendar feed in the current business, unless revoked (or none made)."""
    return CalendarFeed.objects.filter(
        tenant_id=actor.tenant_id, membership_id=actor.membership.pk, revoked_at__isnull=True
    ).first()


class FoundFeed(NamedTuple):
    """A live feed found by its address, and its secret's digest under the current SECRET_KEY
    when the stored one was made under a fallback key (else None)."""

    feed: CalendarFeed
    current_digest: str | None


def calendar_feed_by_secret(prefix: str, secret: str) -> FoundFeed | None:
    """The live feed whose address is `<prefix>/<secret>`, or None (malformed, unknown prefix,
    wrong secret, revoked: one answer for all).

    Inside the request's transaction, with no actor yet: the lookup context shows the one feed
    with that prefix (accounts/migrations/0008), whose digest is then compared with the
    secret's digests under SECRET_KEY and each fallback, in constant time, every one of them
    whether or not a feed was found. The caller then acts as the feed's member
    (tenancy/actors.py: actor_for_calendar_feed), which replaces the lookup context.
    """
    digests = candidate_digests(CALENDAR_FEED_PURPOSE, secret[:64])
    if not is_wellformed_prefix(prefix) or not FEED_SECRET.fullmatch(secret):
        return None
    set_db_context(lookup=f"calendar-feed:{prefix}")
    feed = CalendarFeed.objects.filter(prefix=prefix).first()
    stored = feed.digest if feed is not None else NO_DIGEST
    matched = False
    for digest in digests:
        matched |= hmac.compare_digest(digest, stored)
    if feed is None or not matched or feed.revoked_at is not None:
        return None
    current = hmac.compare_digest(digests[0], stored)
    return FoundFeed(feed, None if current else digests[0])


def email_has_account(email: str) -> bool:
    """Whether a login exists for this email (only for someone holding an invitation link to it)."""
    return User.objects.filter(email__iexact=email.strip()).exists()


def recent_security_events(user: Any, limit: int = 20) -> list[SecurityEvent]:
    """The person's own latest security events, newest first (for their security panel)."""
    return list(SecurityEvent.objects.filter(user_id=user.pk).order_by("-at")[:limit])
