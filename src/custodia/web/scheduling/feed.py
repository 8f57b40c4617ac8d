"""`/calendar/<prefix>/<secret>.ics`: a member's visits for their calendar app (docs/visits.md).

No session, no CSRF token: the address's secret authenticates, and the request then acts as the
feed's member (tenancy/actors.py: actor_for_calendar_feed) inside row-level security. A wrong,
unknown, malformed or revoked address is one plain 404. Requests are counted against the API's
rate limit (api/ratelimit.py), per address, before any work, so the holder of an address cannot
fill the audit trail: each fetch is a bulk read of the visits in it (`visit.feed`). The address
never reaches a log line (core/logs.py: SECRET_PATHS).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_safe

from custodia.accounts.digests import digest_secret
from custodia.api.ratelimit import KEY_PURPOSE, limit_message, take
from custodia.scheduling.access import read_feed_visits
from custodia.scheduling.feed import calendar_of
from custodia.tenancy.actors import actor_for_calendar_feed
from custodia.tenancy.zones import zone_for

MAX_SECRET_LENGTH = 64


def _plain(status: int, text: str) -> HttpResponse:
    response = HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


@require_safe
def calendar_feed(request: HttpRequest, prefix: str, secret: str) -> HttpResponse:
    """The feed's iCalendar body, or 404 for anything but a live feed's address."""
    if len(prefix) > MAX_SECRET_LENGTH or len(secret) > MAX_SECRET_LENGTH:
        return _plain(404, "No such calendar feed.")
    verdict = take(digest_secret(KEY_PURPOSE, f"calendar-feed:{prefix}/{secret}"))
    if not verdict.allowed:
        response = _plain(429, limit_message(verdict.retry_after))
        response["Retry-After"] = str(verdict.retry_after)
        return response
    actor = actor_for_calendar_feed(prefix, secret, acting=request.acting)  # type: ignore[attr-defined]
    if actor is None:
        return _plain(404, "No such calendar feed.")
    now = timezone.now()
    business = actor.business
    body = calendar_of(
        read_feed_visits(actor, now=now),
        calendar_name=f"{business.name}: your visits",
        zone=zone_for(business),
        now=now,
    )
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="visits.ics"'
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response
