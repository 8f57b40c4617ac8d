"""Business time zones: every time shown to or entered by a business's people is in its zone.

A business's `time_zone` is an IANA name (Europe/London), checked here against the zone
database Python ships with (`zoneinfo`, with the `tzdata` package where the system has none).
Acting as a member (core/actor.py: `acting_as`) makes Django's current time zone the
business's, so pages, forms, emails and the API's local times follow it; a background job
that acts for a business asks `zone_for` itself.
"""

from __future__ import annotations

import functools
import zoneinfo
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError


def default_time_zone() -> str:
    """A new business's time zone: the install's CUSTODIA_TIME_ZONE (checked at start-up)."""
    return str(settings.TIME_ZONE)


@functools.cache
def time_zone_names() -> tuple[str, ...]:
    """Every zone a business may choose, sorted: the zone database's Area/Location names, UTC
    and the install's own."""
    names = {
        name
        for name in zoneinfo.available_timezones()
        if "/" in name and not name.startswith(("Etc/", "SystemV/"))
    }
    return tuple(sorted(names | {"UTC", default_time_zone()}))


def validate_time_zone(name: str) -> str:
    """`name` if it is a zone a business may choose, else ValidationError naming it."""
    name = (name or "").strip()
    if name not in time_zone_names():
        raise ValidationError(
            f"{name!r} is not a time zone. Choose one from the list, such as Europe/London.",
            code="time_zone",
        )
    return name


def zone_for(business: Any) -> zoneinfo.ZoneInfo:
    """The business's time zone (the install's for an object without one)."""
    return zoneinfo.ZoneInfo(getattr(business, "time_zone", "") or default_time_zone())
