"""A business's profile: its opening hours, currency code and the limits of its settings.

`Business.opening_hours` keeps seven days, Monday first, as comma-separated "HH:MM-HH:MM"
entries, an empty entry for a closed day, and "" while the owner has not set them
(tenancy/models.py checks the shape). Here they are read and written as a list of seven
`(opens, closes)` pairs or None.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from babel.numbers import is_currency
from django.core.exceptions import ValidationError

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Hours before a visit from which its staff see the door codes, and after it until which they do.
ACCESS_WINDOW_MAX_HOURS = 168
# Hours before a visit the client's reminder goes out; 0 sends none.
REMINDER_MAX_HOURS = 168

DayHours = tuple[dt.time, dt.time] | None


def parse_opening_hours(text: str) -> list[DayHours]:
    """The seven days of `Business.opening_hours`, Monday first (all None when not set)."""
    parts = text.split(",") if text else [""] * 7
    days: list[DayHours] = []
    for part in (parts + [""] * 7)[:7]:
        if not part:
            days.append(None)
            continue
        opens, closes = part.split("-")
        days.append((dt.time.fromisoformat(opens), dt.time.fromisoformat(closes)))
    return days


def format_opening_hours(days: Sequence[DayHours]) -> str:
    """The stored form of seven days; ValidationError naming the day that is not right."""
    if len(days) != 7:
        raise ValidationError({"opening_hours": "Give the hours of all seven days."})
    entries = []
    for name, day in zip(WEEKDAYS, days, strict=True):
        if day is None:
            entries.append("")
            continue
        opens, closes = day
        if not isinstance(opens, dt.time) or not isinstance(closes, dt.time):
            raise ValidationError({"opening_hours": f"{name}: enter the times as HH:MM."})
        if closes <= opens:
            raise ValidationError(
                {"opening_hours": f"{name}: closing time must be after opening time."}
            )
        entries.append(f"{opens:%H:%M}-{closes:%H:%M}")
    return "" if not any(entries) else ",".join(entries)


def check_currency_code(code: str) -> str:
    """The ISO 4217 code, upper-cased; ValidationError naming the field for anything else."""
    code = str(code or "").strip().upper()
    if len(code) != 3 or not code.isalpha() or not is_currency(code):
        raise ValidationError({"currency": "Choose an ISO 4217 currency code such as USD or EUR."})
    return code


def check_hours(field: str, value: object, high: int, what: str) -> int:
    """A whole number of hours from 0 to `high`; ValidationError naming `field` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise ValidationError({field: f"{what}: a whole number of hours from 0 to {high}."})
    return value
