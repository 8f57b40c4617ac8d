"""Reads of pets and household details (docs/profiles.md): whoever may see the client sees them,
404 for anything else, and every read is recorded.

- A client's profile (`profile_for`): their pets and household details, one PROFILE_READ event
  naming the pets shown. The household's sealed details (Wi-Fi name and password, emergency
  contact) follow the door codes' rule (`access.reveal_purpose`): staff see them only around
  their own visit, owners and managers after a step-up, each showing recorded as
  HOUSEHOLD_REVEAL; a client sees their own.
- One pet (`access_pet_by_id`): through the clients the actor may see, so another business's
  pet, or the pet of a client a staff member does not serve, is not found.
- A pet's photo or its thumbnail (`access_pet_photo`): the same reach; each one served is its
  own PROFILE_READ (naming the part). Other reads never load the photo's bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import Http404

from custodia.clients.access import list_clients, reveal_purpose
from custodia.clients.models import Client, Household, Pet
from custodia.core.actor import Actor
from custodia.core.audit import AuditAction, note_refusal, read_one, record
from custodia.core.permissions import Role
from custodia.tenancy.access import parse_id
from custodia.tenancy.reads import Intent

# A pet's photo, in two parts: only `access_pet_photo` loads one.
PHOTO_PARTS = ("photo", "photo_thumbnail")
# The household's sealed details, held back unless the reveal rule allows them.
HOUSEHOLD_SECRETS = ("wifi_name", "wifi_password", "emergency_contact")


@dataclass(frozen=True)
class HouseholdView:
    """What may be shown of a household now: the plain details always, the sealed ones only
    when `secrets_shown` (else `secrets_held_back` says whether a step-up would show them)."""

    keys_held: str
    parking: str
    wifi_name: str
    wifi_password: str
    emergency_contact: str
    secrets_shown: bool
    secrets_held_back: bool


@dataclass(frozen=True)
class Profile:
    """A client's pets and household details, decided and recorded."""

    client: Client
    pets: list[Pet]
    household: HouseholdView


def _reachable_pets(actor: Actor) -> QuerySet[Pet]:
    # The clients the actor may see (permissions checked there), as a subquery.
    visible = list_clients(actor).order_by().values("id")
    return Pet.objects.filter(tenant_id=actor.tenant_id, client_id__in=visible)


def _visible_pets(actor: Actor) -> QuerySet[Pet]:
    # Without the photo's bytes (`only()` after `defer()` would not bring them back).
    return _reachable_pets(actor).defer(*PHOTO_PARTS)


def pets_of(actor: Actor, client: Client) -> QuerySet[Pet]:
    """The pets of a client the actor may see (not yet read: `profile_for` records the read)."""
    return _visible_pets(actor).filter(client_id=client.pk).order_by("name", "id")


def access_pet_by_id(actor: Actor, pet_id: object, *, intent: Intent) -> Pet:
    """One pet of a client the actor may see, or 404; shown (`Intent.SHOW`), the read is
    recorded (PROFILE_READ, naming the pet and its client)."""
    key = parse_id(pet_id)
    found = _visible_pets(actor).filter(id=key)
    if intent is Intent.SHOW:
        pet = read_one(found, AuditAction.PROFILE_READ, actor=actor)
    else:
        pet = found.first()
    if pet is None:
        note_refusal("pet", key)
        raise Http404("No such pet.")
    return pet


def access_pet_photo(actor: Actor, pet_id: object, *, part: str) -> Pet:
    """A pet's photo (`part` "photo") or thumbnail ("photo_thumbnail") with its bytes loaded,
    to whoever may see the pet, or 404 (also when it has none); the read is recorded."""
    key = parse_id(pet_id)
    if part not in PHOTO_PARTS:
        raise Http404("No such photo.")
    pet = (
        _reachable_pets(actor)
        .filter(id=key, photo_updated_at__isnull=False)
        .only("id", "tenant_id", "client_id", "photo_updated_at", part)
        .first()
    )
    if pet is None:
        note_refusal("pet", key)
        raise Http404("No such photo.")
    record(
        AuditAction.PROFILE_READ,
        actor=actor,
        target=pet,
        client_id=pet.client_id,
        detail={"part": part},
    )
    return pet


def read_pets(actor: Actor, client: Client) -> list[Pet]:
    """The pets of `client` (already read through `access_client_by_id`), by name; the read is
    recorded (PROFILE_READ, naming the pets)."""
    pets = list(pets_of(actor, client))
    record(
        AuditAction.PROFILE_READ,
        actor=actor,
        target=client,
        subject_ids=[pet.pk for pet in pets],
        detail={"pets": len(pets)},
    )
    return pets


def profile_for(actor: Actor, client: Client, *, insist: bool = False) -> Profile:
    """The pets and household of `client`, already read through `access_client_by_id`.

    `insist`: a page that must show the sealed details (the household editor) asks a manager
    for a step-up first, as the door codes' editor does.
    """
    household = _household(actor, client, insist=insist)
    return Profile(client=client, pets=read_pets(actor, client), household=household)


def _household(actor: Actor, client: Client, *, insist: bool) -> HouseholdView:
    home = Household.objects.filter(tenant_id=actor.tenant_id, client_id=client.pk).first()
    if actor.role == Role.CLIENT:
        purpose: str | None = "own record"
        held_back = False
    else:
        purpose, held_back = reveal_purpose(actor, client, insist=insist)
    if home is None:
        return HouseholdView("", "", "", "", "", purpose is not None, held_back)
    shown = purpose is not None
    secrets = {field: getattr(home, field) if shown else "" for field in HOUSEHOLD_SECRETS}
    if shown and any(secrets.values()):
        record(AuditAction.HOUSEHOLD_REVEAL, actor=actor, target=client, purpose=purpose or "")
    return HouseholdView(
        keys_held=home.keys_held,
        parking=home.parking,
        secrets_shown=shown,
        secrets_held_back=held_back,
        **secrets,
    )
