"""Writes to clients, their home access and their staff assignments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction

from custodia.clients.access import emails_in_use
from custodia.clients.importing import MAX_ROWS, PET_COLUMN_OF, ImportRow, RowError
from custodia.clients.limits import LIMITS
from custodia.clients.models import Assignment, Client, HomeAccess, email_key, name_key, phone_key
from custodia.clients.profile_actions import clean_new_pet, create_pet_in_transaction
from custodia.core.actor import Actor, ensure_in_business, require_active
from custodia.core.audit import AuditAction, record, record_each
from custodia.core.permissions import Permission, Role
from custodia.crypto.keyring import blind_index
from custodia.tenancy.models import Membership

CLIENT_FIELDS = ("name", "email", "phone", "address", "notes")
ACCESS_FIELDS = ("instructions", "door_code", "alarm_code")
# Rows an import inserts per statement.
IMPORT_BATCH = 500


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
        return _create(cleaned, actor=actor)


def _create(cleaned: dict[str, str], *, actor: Actor) -> Client:
    client = Client(tenant_id=actor.tenant_id)
    _apply(client, cleaned)
    client.save()
    HomeAccess.objects.create(
        tenant_id=actor.tenant_id,
        client=client,
        **{field: cleaned.get(field, "") for field in ACCESS_FIELDS},
    )
    record(AuditAction.CLIENT_CREATE, actor=actor, target=client, detail=_filled(cleaned))
    return client


def _filled(cleaned: dict[str, str]) -> dict[str, Any]:
    # Which fields were given, never their values (door codes among them).
    return {"fields": sorted(field for field, value in cleaned.items() if value)}


def _create_many(rows: list[dict[str, str]], *, actor: Actor) -> list[Client]:
    """`_create` for many clients in a few statements (bulk_create seals each field as save()
    does: crypto/fields.py), with the same event for each."""
    clients = []
    for cleaned in rows:
        client = Client(tenant_id=actor.tenant_id)
        _apply(client, cleaned)
        clients.append(client)
    Client.objects.bulk_create(clients, batch_size=IMPORT_BATCH)
    HomeAccess.objects.bulk_create(
        [
            HomeAccess(
                tenant_id=actor.tenant_id,
                client=client,
                **{field: cleaned.get(field, "") for field in ACCESS_FIELDS},
            )
            for client, cleaned in zip(clients, rows, strict=True)
        ],
        batch_size=IMPORT_BATCH,
    )
    record_each(
        AuditAction.CLIENT_CREATE,
        actor=actor,
        events=[(client, _filled(cleaned)) for client, cleaned in zip(clients, rows, strict=True)],
    )
    return clients


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


class ImportRefused(ValidationError):
    """Rows of an import that break the rules: nothing was written."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(
            [
                f"Row {error.row}{f', {error.column}' if error.column else ''}: {error.message}"
                for error in errors
            ]
        )
        self.row_errors = errors


def check_client_rows(rows: Sequence[ImportRow], *, actor: Actor) -> list[RowError]:
    """The problems of an import's rows, by row and column: the rules of a single creation,
    and no email twice in the file or already an existing client's (through the blind index).
    Writes nothing."""
    actor.require(Permission.CLIENTS_RECORD_WRITE)
    errors: list[RowError] = []
    first_row_of: dict[str, int] = {}
    for row in rows:
        try:
            _clean({"name": "", **row.client})
        except ValidationError as exc:
            errors += [
                RowError(row.row, column, message)
                for column, messages in exc.message_dict.items()
                for message in messages
            ]
        if row.has_pet:
            try:
                clean_new_pet(row.pet)
            except ValidationError as exc:
                errors += [
                    RowError(row.row, PET_COLUMN_OF.get(name, "pet_name"), message)
                    for name, messages in exc.message_dict.items()
                    for message in messages
                ]
        key = email_key(row.client.get("email", ""))
        if key and key in first_row_of:
            message = f"The same email as row {first_row_of[key]}."
            errors.append(RowError(row.row, "email", message))
        elif key:
            first_row_of[key] = row.row
    taken = emails_in_use(actor, first_row_of)
    errors += [
        RowError(row, "email", "A client with this email exists already.")
        for key, row in first_row_of.items()
        if key in taken
    ]
    return sorted(errors, key=lambda error: error.row)


def do_import_clients(rows: Sequence[ImportRow], *, actor: Actor) -> list[Client]:
    """Create a client for each row, all or none: ImportRefused names every row that breaks
    the rules (checked again here, whatever door the rows came through)."""
    require_active(actor)
    actor.require(Permission.CLIENTS_RECORD_WRITE)
    if not rows:
        raise ValidationError("There are no rows to import.")
    if len(rows) > MAX_ROWS:
        raise ValidationError(f"At most {MAX_ROWS:,} rows can be imported at once.")
    with transaction.atomic():
        # Under the business's import lock, so two imports of the same file cannot both pass
        # the duplicate check.
        _lock_imports(actor)
        errors = check_client_rows(rows, actor=actor)
        if errors:
            raise ImportRefused(errors)
        created = _create_many([_clean({"name": "", **row.client}) for row in rows], actor=actor)
        pets = 0
        for row, client in zip(rows, created, strict=True):
            if row.has_pet:
                create_pet_in_transaction(client, clean_new_pet(row.pet), actor=actor)
                pets += 1
        detail = {"count": len(created), **({"pets": pets} if pets else {})}
        record(AuditAction.CLIENT_IMPORT, actor=actor, detail=detail)
    return created


def _lock_imports(actor: Actor) -> None:
    # A transaction-level advisory lock, one per business: released at commit or rollback.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"custodia client import {actor.tenant_id}"],
        )
