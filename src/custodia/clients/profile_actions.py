"""Writes to pets and household details (docs/profiles.md): owners and managers only, each one
transaction with its audit event, which names the fields changed, never their values."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from custodia.clients.images import prepare_photo
from custodia.clients.limits import LIMITS
from custodia.clients.models import Client, Household, Pet
from custodia.core.actor import Actor, ensure_in_business, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.permissions import Permission

PET_TEXT_FIELDS = (
    "name",
    "species",
    "breed",
    "feeding",
    "medication",
    "vet_name",
    "vet_phone",
    "notes",
)
PET_FIELDS = (*PET_TEXT_FIELDS, "birthday")
HOUSEHOLD_FIELDS = ("keys_held", "parking", "wifi_name", "wifi_password", "emergency_contact")
# The limit of each field (clients/limits.py names a few differently from the model).
_LIMIT_NAMES = {"name": "pet_name", "notes": "pet_notes"}


def _text(field: str, value: Any, errors: dict[str, str]) -> str:
    text = "" if value is None else str(value).strip()
    if "\x00" in text:
        errors[field] = "Remove the NUL character."
    limit = LIMITS[_LIMIT_NAMES.get(field, field)]
    if len(text) > limit:
        errors[field] = f"At most {limit} characters."
    return text


def _birthday(value: Any, errors: dict[str, str]) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date):
        try:
            value = dt.date.fromisoformat(str(value))
        except ValueError:
            errors["birthday"] = "Enter a date as YYYY-MM-DD."
            return None
    if value > timezone.localdate():
        errors["birthday"] = "A birthday cannot be in the future."
    return value


def _clean_pet(changes: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field, value in changes.items():
        if field == "birthday":
            cleaned[field] = _birthday(value, errors)
        elif field in PET_TEXT_FIELDS:
            cleaned[field] = _text(field, value, errors)
        else:
            errors[field] = "Unknown field."
    if "name" in cleaned and not cleaned["name"]:
        errors["name"] = "A pet needs a name."
    if errors:
        raise ValidationError(errors)
    return cleaned


def clean_new_pet(fields: dict[str, Any]) -> dict[str, Any]:
    """A new pet's fields as `do_create_pet` keeps them, or ValidationError by field (the
    clients import checks its pet columns with it)."""
    return _clean_pet({"name": "", **fields})


def create_pet_in_transaction(client: Client, cleaned: dict[str, Any], *, actor: Actor) -> Pet:
    """A pet of a client just created in the caller's transaction (the clients import), from
    `clean_new_pet`'s fields, with the same event as `do_create_pet`."""
    pet = Pet(tenant_id=actor.tenant_id, client=client, **cleaned)
    pet.save(force_insert=True)
    filled = sorted(field for field, value in cleaned.items() if value)
    record(
        AuditAction.PET_CREATE,
        actor=actor,
        target=pet,
        client_id=client.pk,
        detail={"fields": filled},
    )
    return pet


def _clean_household(changes: dict[str, Any]) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    errors: dict[str, str] = {}
    for field, value in changes.items():
        if field in HOUSEHOLD_FIELDS:
            cleaned[field] = _text(field, value, errors)
        else:
            errors[field] = "Unknown field."
    if errors:
        raise ValidationError(errors)
    return cleaned


def _may_write(actor: Actor, *records: object) -> None:
    require_active(actor)
    actor.require(Permission.CLIENTS_RECORD_WRITE)
    ensure_in_business(actor, *records)


def do_create_pet(client: Client, *, actor: Actor, **fields: Any) -> Pet:
    """A new pet of `client`."""
    _may_write(actor, client)
    cleaned = _clean_pet({"name": "", **fields})
    with transaction.atomic():
        pet = Pet(tenant_id=actor.tenant_id, client=client, **cleaned)
        pet.save()
        filled = sorted(field for field, value in cleaned.items() if value)
        record(
            AuditAction.PET_CREATE,
            actor=actor,
            target=pet,
            client_id=client.pk,
            detail={"fields": filled},
        )
    return pet


def do_update_pet(pet: Pet, *, actor: Actor, **changes: Any) -> Pet:
    """Change some fields of a pet."""
    _may_write(actor, pet)
    cleaned = _clean_pet(changes)
    changed = [
        field for field in PET_FIELDS if field in cleaned and getattr(pet, field) != cleaned[field]
    ]
    with transaction.atomic():
        for field, value in cleaned.items():
            setattr(pet, field, value)
        pet.save(update_fields=[*cleaned, "updated_at"])
        record(
            AuditAction.PET_UPDATE,
            actor=actor,
            target=pet,
            client_id=pet.client_id,
            detail={"fields": changed},
        )
    return pet


def do_delete_pet(pet: Pet, *, actor: Actor) -> None:
    """Remove a pet from its client's profile."""
    _may_write(actor, pet)
    with transaction.atomic():
        record(AuditAction.PET_DELETE, actor=actor, target=pet, client_id=pet.client_id)
        pet.delete()


def do_set_pet_photo(pet: Pet, data: bytes, *, actor: Actor) -> Pet:
    """Give a pet a photo (replacing any): checked, re-encoded without metadata (EXIF location
    included), sealed with its thumbnail."""
    _may_write(actor, pet)
    # Decoding and encoding take a while: done before the transaction.
    prepared = prepare_photo(data)
    with transaction.atomic():
        pet.photo = prepared.image
        pet.photo_thumbnail = prepared.thumbnail
        pet.photo_updated_at = timezone.now()
        pet.save(update_fields=["photo", "photo_thumbnail", "photo_updated_at", "updated_at"])
        record(
            AuditAction.PET_UPDATE,
            actor=actor,
            target=pet,
            client_id=pet.client_id,
            detail={"fields": ["photo"], "bytes": len(prepared.image)},
        )
    return pet


def do_remove_pet_photo(pet: Pet, *, actor: Actor) -> Pet:
    """Remove a pet's photo (nothing to do without one)."""
    _may_write(actor, pet)
    with transaction.atomic():
        had_photo = pet.photo_updated_at is not None
        pet.photo = None
        pet.photo_thumbnail = None
        pet.photo_updated_at = None
        pet.save(update_fields=["photo", "photo_thumbnail", "photo_updated_at", "updated_at"])
        record(
            AuditAction.PET_UPDATE,
            actor=actor,
            target=pet,
            client_id=pet.client_id,
            detail={"fields": ["photo"] if had_photo else []},
        )
    return pet


def do_update_household(client: Client, *, actor: Actor, **changes: Any) -> Household:
    """Change some household details of `client` (the row is made on first use)."""
    _may_write(actor, client)
    cleaned = _clean_household(changes)
    with transaction.atomic():
        home, _ = Household.objects.get_or_create(tenant_id=actor.tenant_id, client=client)
        changed = [field for field, value in cleaned.items() if getattr(home, field) != value]
        for field, value in cleaned.items():
            setattr(home, field, value)
        home.save(update_fields=[*cleaned, "updated_at"])
        # Which fields changed, never their values (the Wi-Fi password among them).
        record(AuditAction.HOUSEHOLD_UPDATE, actor=actor, target=client, detail={"fields": changed})
    return home
