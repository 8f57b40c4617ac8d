"""API of pets (docs/profiles.md): `/clients/{id}/pets` lists and adds, `/pets/{id}` reads,
changes and removes; thin doors onto clients/profiles.py and clients/profile_actions.py."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import ClassVar

from django.http import HttpRequest
from ninja import Field, Router, Schema
from pydantic import StrictStr

from custodia.api.auth import actor_of
from custodia.api.inputs import NON_BLANK_TEXT, InputSchema, PatchSchema
from custodia.clients import access, profile_actions, profiles
from custodia.clients.limits import LIMITS
from custodia.clients.models import Pet
from custodia.tenancy.reads import Intent

# Mounted under /clients (the list and the new pet) and /pets (one pet).
client_pets_router = Router(tags=["pets"])
pets_router = Router(tags=["pets"])


class PetIn(InputSchema):
    """A new pet; everything but the name is optional. `birthday` is a date (YYYY-MM-DD)."""

    name: StrictStr = Field(min_length=1, max_length=LIMITS["pet_name"], pattern=NON_BLANK_TEXT)
    species: StrictStr = Field("", max_length=LIMITS["species"])
    breed: StrictStr = Field("", max_length=LIMITS["breed"])
    birthday: dt.date | None = None
    feeding: StrictStr = Field("", max_length=LIMITS["feeding"])
    medication: StrictStr = Field("", max_length=LIMITS["medication"])
    vet_name: StrictStr = Field("", max_length=LIMITS["vet_name"])
    vet_phone: StrictStr = Field("", max_length=LIMITS["vet_phone"])
    notes: StrictStr = Field("", max_length=LIMITS["pet_notes"])


class PetPatch(PatchSchema):
    """Only the fields sent change; `birthday` may be null (no birthday)."""

    NULLABLE: ClassVar[frozenset[str]] = frozenset({"birthday"})

    name: StrictStr | None = Field(
        None, min_length=1, max_length=LIMITS["pet_name"], pattern=NON_BLANK_TEXT
    )
    species: StrictStr | None = Field(None, max_length=LIMITS["species"])
    breed: StrictStr | None = Field(None, max_length=LIMITS["breed"])
    birthday: dt.date | None = None
    feeding: StrictStr | None = Field(None, max_length=LIMITS["feeding"])
    medication: StrictStr | None = Field(None, max_length=LIMITS["medication"])
    vet_name: StrictStr | None = Field(None, max_length=LIMITS["vet_name"])
    vet_phone: StrictStr | None = Field(None, max_length=LIMITS["vet_phone"])
    notes: StrictStr | None = Field(None, max_length=LIMITS["pet_notes"])


class PetOut(Schema):
    id: uuid.UUID
    client_id: uuid.UUID
    name: str
    species: str
    breed: str
    birthday: dt.date | None
    feeding: str
    medication: str
    vet_name: str
    vet_phone: str
    notes: str
    created_at: dt.datetime
    updated_at: dt.datetime


@client_pets_router.get("/{client_id}/pets", response=list[PetOut])
def list_pets(request: HttpRequest, client_id: str) -> list[Pet]:
    """The pets of a client you may see (staff: assigned clients; a client: themself)."""
    actor = actor_of(request)
    # Only the pets are shown: their read is the event (no client read).
    client = access.access_client_by_id(actor, client_id, intent=Intent.REFERENCE)
    return profiles.read_pets(actor, client)


@client_pets_router.post("/{client_id}/pets", response={201: PetOut})
def create_pet(request: HttpRequest, client_id: str, payload: PetIn) -> Pet:
    """Add a pet to a client (owners and managers)."""
    actor = actor_of(request)
    client = access.access_client_by_id(actor, client_id, intent=Intent.CHANGE)
    return profile_actions.do_create_pet(client, actor=actor, **payload.model_dump())


@pets_router.get("/{pet_id}", response=PetOut)
def get_pet(request: HttpRequest, pet_id: str) -> Pet:
    """One pet of a client you may see."""
    return profiles.access_pet_by_id(actor_of(request), pet_id, intent=Intent.SHOW)


@pets_router.patch("/{pet_id}", response=PetOut)
def update_pet(request: HttpRequest, pet_id: str, payload: PetPatch) -> Pet:
    """Change the fields sent (owners and managers)."""
    actor = actor_of(request)
    pet = profiles.access_pet_by_id(actor, pet_id, intent=Intent.CHANGE)
    changes = payload.model_dump(exclude_unset=True)
    return profile_actions.do_update_pet(pet, actor=actor, **changes)


@pets_router.delete("/{pet_id}", response={204: None})
def delete_pet(request: HttpRequest, pet_id: str) -> None:
    """Remove a pet (owners and managers)."""
    actor = actor_of(request)
    pet = profiles.access_pet_by_id(actor, pet_id, intent=Intent.CHANGE)
    profile_actions.do_delete_pet(pet, actor=actor)
