"""How long each field of a client record may be: one table for the model, the web forms, the
API schemas and the actions (which check again whatever door the value came through)."""

from __future__ import annotations

from typing import Final

LIMITS: Final[dict[str, int]] = {
    "name": 120,
    "email": 254,  # the longest address RFC 5321 allows
    "phone": 40,
    "door_code": 40,
    "alarm_code": 40,
    "address": 2000,
    "notes": 10000,
    "instructions": 4000,
    # Pets and household details (docs/profiles.md).
    "pet_name": 120,
    "species": 60,
    "breed": 120,
    "feeding": 4000,
    "medication": 4000,
    "vet_name": 200,
    "vet_phone": 40,
    "pet_notes": 4000,
    "keys_held": 200,
    "parking": 2000,
    "wifi_name": 120,
    "wifi_password": 120,
    "emergency_contact": 400,
}
# A search term (a name prefix, an email address or a phone number) is never longer than a name.
SEARCH_MAX_LENGTH: Final = LIMITS["name"]
