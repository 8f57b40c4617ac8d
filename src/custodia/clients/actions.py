"""Writes to clients, their home access and their staff assignments."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from custodia.clients.limits import LIMITS
from custodia.clients.models import Assignment, Client, HomeAccess, email_key, name_key, phone_key
from custodia.core.actor import Actor, ensure_in_business, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.permissions import Permission, Role
from custodia.crypto.keyring import blind_index
from custodia.tenancy.models import Membership

CLIENT_FIELDS = ("name", "email", "phone", "address", "notes")
ACCESS_FIELDS = ("instructions", "door_code", "alarm_code")


def _clean(changes: dict[str, Any]) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    errors: dict[str, str] = {}
    for field, value in changes.items():
        if field not in CLIENT_FIELDS + ACCESS_FIELDS:
            errors[field] = "Unknown field."
            continue
        text = "" if value is None else str(value).strip()
        if len(text) > LIMITS[field]:
            errors[field] = f"At most {LIMITS[field]} characters."
        cleaned[field] = text
    if "name" in cleaned and not cleaned["name"]:
        errors["name"] = "A client needs a name."
    if cleaned.get("email"):
        try:
            validate_email(cleaned["email"])
        except ValidationError:
            errors["email"] = "Enter a valid email address."
    if cleaned.get("phone") and len(phone_key(cleaned["phone"])) < 5:
        errors["phone"] = "Enter a phone number with at least 5 digits."
    if errors:
        raise ValidationError(errors)
    return cleaned


def _apply(client: Client, cleaned: dict[str, str]) -> list[str]:
    fields = [field for field in CLIENT_FIELDS if field in cleaned]
    for field in fields:
        setattr(client, field, cleaned[field])
    client.name_search = name_key(client.name)
    client.email_search = blind_index(client.tenant_id, "email", email_key(client.email))
    client.phone_search = blind_index(client.tenant_id, "phone", phone_key(client.phone))
    return fields + ["name_search", "email_search", "phone_search", "updated_at"]


def do_create_client(*, actor: Actor, **fields: Any) -> Client:
    """A new client record, with home-access instructions if given."""
    require_active(actor)
    actor.require(Permission.CLIENTS_RECORD_WRITE)
    cleaned = _clean({"name": "", **fields})
    with transaction.atomic():
        client = Client(tenant_id=actor.tenant_id)
        _apply(client, cleaned)
        client.save()
        HomeAccess.objects.create(
            tenant_id=actor.tenant_id,
            client=client,
            **{field: cleaned.get(field, "") for field in ACCESS_FIELDS},
        )
        filled = sorted(field for field, value in cleaned.items() if value)
        record(AuditAction.CLIENT_CREATE, actor=actor, target=client, detail={"fields": filled})
    return client


def do_update_client(client: Client, *, actor: Actor, **changes: Any) -> Client:
    """Change some fields of a client (and their home access)."""
    require_active(actor)
    actor.require(Permission.CLIENTS_RECORD_WRITE)
    ensure_in_business(actor, client)
    cleaned = _clean(changes)
    changed = [f for f in CLIENT_FIELDS if f in cleaned and getattr(client, f) != cleaned[f]]
    with transaction.atomic():
        client.save(update_fields=_apply(client, cleaned))
        access_changes = {field: cleaned[field] for field in ACCESS_FIELDS if field in cleaned}
        if access_changes:
            home, _ = HomeAccess.objects.get_or_create(tenant_id=actor.tenant_id, client=client)
            for field, value in access_changes.items():
                if getattr(home, field) != value:
                    changed.append(field)
                setattr(home, field, value)
            home.save(update_fields=[*access_changes, "updated_at"])
        # Which fields changed, never their values (door codes among them).
        record(AuditAction.CLIENT_UPDATE, actor=actor, target=client, detail={"fields": changed})
    return client


def do_delete_client(client: Client, *, actor: Actor) -> None:
    """Delete a client with their visits, assignments, home access and portal login."""
    require_active(actor)
    actor.require(Permission.CLIENTS_RECORD_WRITE)
    ensure_in_business(actor, client)
    with transaction.atomic():
        record(AuditAction.CLIENT_DELETE, actor=actor, target=client)
        client.delete()


def do_assign_staff(client: Client, staff: Membership, *, actor: Actor) -> Assignment:
    """A manager decides that `staff` serves `client`; idempotent."""
    require_active(actor)
    actor.require(Permission.CLIENTS_ASSIGNMENT_WRITE)
    ensure_in_business(actor, client)
    if staff.tenant_id != actor.tenant_id or staff.role == Role.CLIENT or not staff.is_active:
        raise ValidationError({"staff": "Choose an active member of this business."})
    with transaction.atomic():
        assignment, created = Assignment.objects.get_or_create(
            tenant_id=actor.tenant_id,
            client=client,
            staff=staff,
            defaults={"assigned_by": actor.membership},
        )
        if created:
            _record_assignment(AuditAction.ASSIGNMENT_CREATE, client, staff, actor)
    return assignment


def do_unassign_staff(client: Client, staff: Membership, *, actor: Actor) -> None:
    """The staff member no longer sees this client."""
    require_active(actor)
    actor.require(Permission.CLIENTS_ASSIGNMENT_WRITE)
    ensure_in_business(actor, client, staff)
    with transaction.atomic():
        deleted, _ = Assignment.objects.filter(
            tenant_id=actor.tenant_id, client=client, staff=staff
        ).delete()
        if deleted:
            _record_assignment(AuditAction.ASSIGNMENT_DELETE, client, staff, actor)


def _record_assignment(
    action: AuditAction, client: Client, staff: Membership, actor: Actor
) -> None:
    record(action, actor=actor, target=client, detail={"staff": str(staff.pk)})
