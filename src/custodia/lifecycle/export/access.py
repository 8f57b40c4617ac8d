"""Reads for exports: every row a business export or a client's own-data download holds, and the
exports themselves. Each read of customer data records itself as a bulk read (purpose "export")
with its counts; the clients read are named in `subject_ids`, a batch at a time, so each client's
"who accessed my record" shows every export that held it.

Values are read as stored and opened here (crypto.fields.open_text) rather than through model
instances: an export of 200,000 clients is bounded by this loop.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.db import connection
from django.db.models import (
    BinaryField,
    DateTimeField,
    F,
    Func,
    GenericIPAddressField,
    Model,
    QuerySet,
    TextField,
    UUIDField,
    Value,
)
from django.db.models.functions import Cast
from django.http import Http404
from django.utils import timezone

from custodia.audit.access import describe, events_about_own_record
from custodia.audit.models import AuditEvent
from custodia.clients.models import Assignment, Client, HomeAccess, Household, Pet
from custodia.core.actor import Actor
from custodia.core.audit import AuditAction, note_refusal, record
from custodia.core.permissions import Permission, Role
from custodia.crypto.fields import EncryptedTextField, Sealed, open_text, value_context
from custodia.crypto.keyring import BusinessKeys, keys_for
from custodia.lifecycle.export import entities
from custodia.lifecycle.export.archive import Row, Source
from custodia.lifecycle.export.entities import Entity
from custodia.lifecycle.export.models import Export, ExportStatus
from custodia.scheduling.models import Service, Visit, VisitPhoto
from custodia.tenancy.access import parse_id
from custodia.tenancy.models import Business, Invitation, Membership

BATCH = 2000
PURPOSE = "export"
# Photos: rows per batch (and per bulk-read event, which names each photo), and images opened
# at a time (a photo is at most 10 MB): what an export holds in memory stays bounded.
PHOTO_BATCH = 200
PHOTO_OPEN = 8
PHOTO_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


# --- The exports ------------------------------------------------------------------------------


def list_own_exports(actor: Actor) -> QuerySet[Export]:
    """The exports this owner started in this business, newest first."""
    actor.require(Permission.BUSINESS_EXPORT)
    return Export.objects.filter(
        tenant_id=actor.tenant_id, started_by__user_id=actor.user.pk
    ).order_by("-created_at")


def access_export_by_id(actor: Actor, export_id: object, *, own: bool = True) -> Export:
    """An export of the actor's business (with `own`, one the actor's login started), or 404.
    Owners only; anything else is not found, never forbidden (existence is not revealed)."""
    key = parse_id(export_id)
    if actor.role != Role.OWNER or not actor.can(Permission.BUSINESS_EXPORT):
        note_refusal("export", key)
        raise Http404("No such export.")
    exports = Export.objects.filter(tenant_id=actor.tenant_id)
    if own:
        exports = exports.filter(started_by__user_id=actor.user.pk)
    try:
        return exports.get(pk=key)
    except Export.DoesNotExist:
        note_refusal("export", key)
        raise Http404("No such export.") from None


def is_gone(export: Export, now: Any = None) -> bool:
    """Downloaded, expired or failed: there is no file to hand out."""
    now = now or timezone.now()
    live = export.status in (ExportStatus.READY, ExportStatus.RUNNING)
    return not live or export.expires_at <= now


# --- Reading rows -------------------------------------------------------------------------------


def _row_opener(
    model: type[Model], tenant_id: uuid.UUID, fields: list[str], pk_index: int
) -> Callable[[tuple[Any, ...], BusinessKeys], Row]:
    """`open_row(row, keys)`: the row with its sealed values opened. The business's keys are
    taken once per batch (a rotation reaches the next batch); anything unusual (a key version
    this process has not seen, a value that does not authenticate) goes the long way, through
    crypto.fields.open_text, which refreshes, logs and raises as everywhere else."""
    table = model._meta.db_table
    by_name = {
        field.attname: field.column
        for field in model._meta.local_fields
        if isinstance(field, EncryptedTextField)
    }
    positions = [(index, by_name[name]) for index, name in enumerate(fields) if name in by_name]

    def open_row(row: tuple[Any, ...], keys: BusinessKeys) -> Row:
        if not positions:
            return row
        values = list(row)
        pk = values[pk_index]
        for index, column in positions:
            value = values[index]
            if not isinstance(value, Sealed):
                continue
            try:
                context = value_context(tenant_id, table, column, pk)
                values[index] = keys.open(value.blob, context)
            except Exception:  # noqa: BLE001 - the long way decides, logs and raises
                values[index] = open_text(tenant_id, table, column, pk, value.blob)
        return tuple(values)

    return open_row


# Times as ISO 8601 in UTC, made by the database (what datetime.isoformat() writes, always with
# microseconds); ids, addresses and hashes as text too: converting a million audit events'
# values in Python is most of an export's time.
ISO_UTC = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"


def _selected(model: type[Model], name: str) -> Any:
    """What to select for column `name` of `model`: the column, or an expression of it that
    the database turns into the text the archive holds."""
    if "__" in name:
        return name
    field = model._meta.get_field(name)
    target = field.target_field if field.is_relation else field  # type: ignore[union-attr]
    if isinstance(target, DateTimeField):
        return Func(F(name), template=ISO_UTC, output_field=TextField())
    if isinstance(target, UUIDField):
        return Cast(F(name), TextField())
    if isinstance(target, ArrayField) and isinstance(target.base_field, UUIDField):
        return Cast(F(name), ArrayField(TextField()))
    if isinstance(target, GenericIPAddressField):
        return Func(F(name), function="host", output_field=TextField())
    if type(target) is BinaryField:
        return Func(F(name), Value("hex"), function="encode", output_field=TextField())
    return name


def _rows(
    actor: Actor,
    query: QuerySet[Any],
    entity: Entity,
    fields: list[str],
    *,
    pk: str = "id",
    subjects: str | None = None,
) -> Source:
    """A source of `query`'s rows in `fields` order (decrypted), read in batches; each batch is
    recorded as a bulk read, with the client ids it held when `subjects` names their column."""
    pk_index = fields.index(pk)
    open_row = _row_opener(query.model, actor.tenant_id, fields, pk_index)
    subject_index = fields.index(subjects) if subjects else None

    def batches() -> Iterator[list[Row]]:
        selected = [_selected(query.model, name) for name in fields]
        rows = query.values_list(*selected).iterator(chunk_size=BATCH)
        batch: list[Row] = []
        keys = keys_for(actor.tenant_id)
        for row in rows:
            batch.append(open_row(row, keys))
            if len(batch) == BATCH:
                _record_batch(actor, entity, batch, subject_index)
                yield batch
                batch = []
                keys = keys_for(actor.tenant_id)
        _record_batch(actor, entity, batch, subject_index, last=True)
        yield batch

    return Source(entity, query.count(), batches)


def _record_batch(
    actor: Actor,
    entity: Entity,
    batch: list[Row],
    subject_index: int | None,
    *,
    last: bool = False,
) -> None:
    if not batch and not last:
        return
    if not batch and subject_index is not None:
        return  # the empty tail of a list of clients: nobody was read
    # The clients concerned, each once (a client's visits name them many times).
    subjects = None
    if subject_index is not None:
        subjects = list(dict.fromkeys(row[subject_index] for row in batch))
    record(
        AuditAction.EXPORT_READ,
        actor=actor,
        subject_ids=subjects,
        purpose=PURPOSE,
        detail={"entity": entity.name, "count": len(batch)},
    )


def business_sources(actor: Actor) -> list[Source]:
    """Everything the business holds, entity by entity (entities.BUSINESS_ENTITIES): owners only."""
    actor.require(Permission.BUSINESS_EXPORT)
    tenant = actor.tenant_id
    members = Membership.objects.filter(tenant_id=tenant).order_by("created_at", "id")
    return [
        _rows(
            actor,
            Business.objects.filter(pk=tenant),
            entities.BUSINESS,
            entities.BUSINESS.column_names,
        ),
        _rows(
            actor,
            members,
            entities.MEMBERS,
            [
                "id",
                "user_id",
                "user__full_name",
                "user__email",
                "role",
                "client_id",
                "is_active",
                "created_at",
            ],
        ),  # fmt: skip
        _rows(
            actor,
            Invitation.objects.filter(tenant_id=tenant).order_by("created_at", "id"),
            entities.INVITATIONS,
            [
                "id",
                "email",
                "role",
                "client_id",
                "invited_by_id",
                "created_at",
                "expires_at",
                "accepted_at",
                "revoked_at",
            ],
        ),  # fmt: skip
        _rows(
            actor,
            Service.objects.filter(tenant_id=tenant).order_by("name", "id"),
            entities.SERVICES,
            entities.SERVICES.column_names,
        ),
        _rows(
            actor,
            Client.objects.filter(tenant_id=tenant).order_by("id"),
            entities.CLIENTS,
            entities.CLIENTS.column_names,
            subjects="id",
        ),
        _rows(
            actor,
            HomeAccess.objects.filter(tenant_id=tenant).order_by("client_id"),
            entities.HOME_ACCESS,
            entities.HOME_ACCESS.column_names,
            pk="client_id",
            subjects="client_id",
        ),
        _rows(
            actor,
            Pet.objects.filter(tenant_id=tenant).order_by("client_id", "name", "id"),
            entities.PETS,
            entities.PETS.column_names,
            subjects="client_id",
        ),
        _rows(
            actor,
            Household.objects.filter(tenant_id=tenant).order_by("client_id"),
            entities.HOUSEHOLDS,
            entities.HOUSEHOLDS.column_names,
            pk="client_id",
            subjects="client_id",
        ),
        _rows(
            actor,
            Assignment.objects.filter(tenant_id=tenant).order_by("created_at", "id"),
            entities.ASSIGNMENTS,
            entities.ASSIGNMENTS.column_names,
            subjects="client_id",
        ),
        _rows(
            actor,
            Visit.objects.filter(tenant_id=tenant).order_by("starts_at", "id"),
            entities.VISITS,
            entities.VISITS.column_names,
            subjects="client_id",
        ),
        _images(
            actor,
            VisitPhoto.objects.filter(tenant_id=tenant),
            entities.VISIT_PHOTOS,
            VISIT_PHOTO_FILES,
        ),
        _images(
            actor,
            Pet.objects.filter(tenant_id=tenant, photo__isnull=False),
            entities.PET_PHOTOS,
            PET_PHOTO_FILES,
        ),
        _audit_events(actor),
    ]


# --- Visit photos and pets' photos --------------------------------------------------------------


def photo_file(visit_id: object, photo_id: object, content_type: str) -> str:
    """A visit photo's name in the archive."""
    return f"photos/{visit_id}/{photo_id}.{PHOTO_EXTENSIONS.get(content_type, 'bin')}"


def pet_photo_file(pet_id: object) -> str:
    """A pet's photo's name in the archive (always a JPEG: clients/images.py)."""
    return f"pets/{pet_id}.jpg"


PHOTOS_NOTE = (
    "The photos themselves are under `photos/`: `photos/<visit_id>/<photo_id>.jpg`, each the "
    "exact file the visit's page shows (re-encoded without location or camera details when it "
    "was added), listed with its sha256 in the manifest."
)
PET_PHOTOS_NOTE = (
    "The pets' photos are under `pets/`: `pets/<pet_id>.jpg`, each the exact file the pet's "
    "card shows (re-encoded without location or camera details when it was added), listed "
    "with its sha256 in the manifest."
)


@dataclass(frozen=True)
class ImageFiles:
    """Where a model keeps its images and how the archive names them."""

    model: type[Model]
    blob: str  # the sealed image's field
    client: str  # the lookup of the client the image is about
    order: tuple[str, ...]
    name: Callable[[dict[str, Any]], str]  # the file's name, from the row's columns
    note: str


VISIT_PHOTO_FILES = ImageFiles(
    VisitPhoto,
    "image",
    "visit__client_id",
    ("visit__starts_at", "visit_id", "created_at", "id"),
    lambda row: photo_file(row["visit_id"], row["id"], row["content_type"]),
    PHOTOS_NOTE,
)
PET_PHOTO_FILES = ImageFiles(
    Pet,
    "photo",
    "client_id",
    ("client_id", "name", "id"),
    lambda row: pet_photo_file(row["id"]),
    PET_PHOTOS_NOTE,
)


def _images(actor: Actor, query: QuerySet[Any], entity: Entity, kind: ImageFiles) -> Source:
    """The images of `query` as rows (batches of PHOTO_BATCH, each recorded as a bulk read that
    names the images and the clients they are about) and as files: the images are read and
    opened with the business's key PHOTO_OPEN at a time, in this actor's context (row-level
    security applies), as the archive writes each batch."""
    query = query.order_by(*kind.order)
    columns = [name for name in entity.column_names if name != "file"]
    selected = [_selected(kind.model, name) for name in columns]
    id_index = columns.index("id")

    def batches() -> Iterator[list[Row]]:
        rows = query.values_list(*selected, kind.client).iterator(chunk_size=PHOTO_BATCH)
        batch: list[Row] = []
        clients: list[Any] = []
        for *values, client_id in rows:
            batch.append((*values, kind.name(dict(zip(columns, values, strict=True)))))
            clients.append(str(client_id))
            if len(batch) == PHOTO_BATCH:
                _record_images(actor, entity, batch, clients, id_index)
                yield batch
                batch, clients = [], []
        if batch:
            _record_images(actor, entity, batch, clients, id_index)
            yield batch

    def files(batch: list[Row]) -> Iterator[tuple[str, bytes]]:
        names = {str(row[id_index]): row[-1] for row in batch}
        ids = list(names)
        for start in range(0, len(ids), PHOTO_OPEN):
            chunk = ids[start : start + PHOTO_OPEN]
            rows = kind.model._default_manager.filter(tenant_id=actor.tenant_id, pk__in=chunk)
            found = {str(row.pk): row for row in rows.only("id", "tenant_id", kind.blob)}
            for key in chunk:
                image = getattr(found.pop(key, None), kind.blob, None)
                if image is None:
                    continue  # deleted since its row was read: the row names a missing file
                yield names[key], bytes(image)

    return Source(entity, query.count(), batches, files=files, files_note=kind.note)


def _record_images(
    actor: Actor, entity: Entity, batch: list[Row], clients: list[Any], id_index: int
) -> None:
    record(
        AuditAction.EXPORT_READ,
        actor=actor,
        subject_ids=list(dict.fromkeys(clients)),
        purpose=PURPOSE,
        detail={
            "entity": entity.name,
            "count": len(batch),
            "ids": [str(row[id_index]) for row in batch],
        },
    )


# --- The audit trail, written by the database ---------------------------------------------------

# Each column of an event as the text a CSV cell holds (NULL: empty), and as a JSON value.
AUDIT_TEXT = {
    "id": ("id::text", "id"),
    "occurred_at": (ISO_UTC % {"expressions": "occurred_at"},) * 2,
    "lane": ("lane::text", "lane"),
    "seq": ("seq::text", "seq"),
    "actor_user_id": ("actor_user_id::text",) * 2,
    "actor_role": ("actor_role",) * 2,
    "action": ("action",) * 2,
    "outcome": ("outcome",) * 2,
    "target_type": ("target_type",) * 2,
    "target_id": ("target_id",) * 2,
    "client_id": ("client_id::text",) * 2,
    "subject_ids": ("array_to_string(subject_ids, ' ')", "subject_ids"),
    "ip": ("host(ip)",) * 2,
    "user_agent": ("user_agent",) * 2,
    "request_id": ("request_id",) * 2,
    "purpose": ("purpose",) * 2,
    "detail": ("detail::text", "detail"),
    "hash": ("encode(hash, 'hex')",) * 2,
}
# A CSV cell as archive.safe_cell and Python's csv module make it: a formula-like start gets an
# apostrophe, then a cell holding a quote, comma or line break is quoted. Plain expressions (a
# sub-select per cell would run as a sub-plan per row); the time is made once per row, below.
GUARDED = (
    "CASE WHEN left({x}, 1) IN ('=', '+', '-', '@', chr(9), chr(13)) THEN '''' || {x}"
    " ELSE coalesce({x}, '') END"
)
QUOTED = (
    "CASE WHEN strpos({g}, '\"') + strpos({g}, ',') + strpos({g}, chr(10)) + strpos({g}, chr(13))"
    " > 0 THEN '\"' || replace({g}, '\"', '\"\"') || '\"' ELSE {g} END"
)
# Ids, numbers, the time and the hash never need a guard or quotes.
PLAIN_AUDIT_COLUMNS = frozenset(
    {"id", "occurred_at", "lane", "seq", "actor_user_id", "client_id", "subject_ids", "hash"}
)
# Each row's texts are made once (OFFSET 0 keeps the planner from pasting an expression into
# every place that uses it), then guarded once, then quoted.
AUDIT_SQL = (
    "SELECT {csv}, json_build_object({json})::text FROM audit_auditevent AS e"
    " CROSS JOIN LATERAL (SELECT {texts} OFFSET 0) AS t"
    " CROSS JOIN LATERAL (SELECT {guards} OFFSET 0) AS g"
    " WHERE e.tenant_id = %s ORDER BY e.id"
)


def _audit_sql() -> str:
    names = entities.AUDIT_EVENTS.column_names
    texts, guards, cells, pairs = [], [], [], []
    for number, name in enumerate(names):
        text, value = AUDIT_TEXT[name]
        texts.append(f"{text} AS c{number}")
        if name in PLAIN_AUDIT_COLUMNS:
            cells.append(f"coalesce(t.c{number}, '')")
        else:
            guards.append(f"{GUARDED.format(x=f't.c{number}')} AS g{number}")
            cells.append(QUOTED.format(g=f"g.g{number}"))
        pairs.append(f"'{name}', {'t.c' + str(number) if value == text else 'e.' + value}")
    return AUDIT_SQL.format(
        csv=" || ',' || ".join(cells),
        json=", ".join(pairs),
        texts=", ".join(texts),
        guards=", ".join(guards),
    )


def _audit_events(actor: Actor) -> Source:
    """The business's audit trail, owners only: CSV lines and JSON objects made by PostgreSQL
    (a year's trail is millions of events; converting them in Python took most of an export's
    time), read in batches, each recorded as a bulk read."""
    actor.require(Permission.AUDIT_READ)
    events = AuditEvent.objects.filter(tenant_id=actor.tenant_id)
    entity = entities.AUDIT_EVENTS

    def written() -> Iterator[list[tuple[str, str]]]:
        with connection.chunked_cursor() as cursor:
            cursor.execute(_audit_sql(), [str(actor.tenant_id)])
            while lines := cursor.fetchmany(BATCH * 5):
                record(
                    AuditAction.EXPORT_READ,
                    actor=actor,
                    purpose=PURPOSE,
                    detail={"entity": entity.name, "count": len(lines)},
                )
                yield lines

    return Source(entity, events.count(), written=written)


# --- A client's own data ------------------------------------------------------------------------


def own_data_sources(actor: Actor) -> list[Source]:
    """A client login's own record, visits and who accessed the record; the read is one event
    naming the record. Anyone but a client of this business: 404."""
    if actor.role != Role.CLIENT or not actor.can(Permission.CLIENTS_SELF_EXPORT):
        note_refusal("client", actor.membership.client_id)
        raise Http404("No such record.")
    own = actor.membership.client_id
    try:
        client = Client.objects.get(tenant_id=actor.tenant_id, pk=own)
    except Client.DoesNotExist:
        raise Http404("No such record.") from None
    client_row = tuple(getattr(client, name) for name in entities.OWN_CLIENT.column_names)
    visits = (
        Visit.objects.filter(tenant_id=actor.tenant_id, client_id=own)
        .select_related("service", "staff__user")
        .order_by("starts_at", "id")
    )
    visit_rows = [
        (
            visit.pk,
            visit.service.name if visit.service else "",
            (visit.staff.user.full_name or "Staff") if visit.staff else "",
            visit.starts_at,
            visit.ends_at,
            visit.status,
            visit.request_note,
            visit.report,
            visit.created_at,
        )
        for visit in visits
    ]
    pets = (
        Pet.objects.filter(tenant_id=actor.tenant_id, client_id=own)
        .defer("photo", "photo_thumbnail")  # the photo is a file of its own (pet_photos)
        .order_by("name", "id")
    )
    pet_rows = [
        tuple(getattr(pet, name) for name in entities.OWN_PETS.column_names) for pet in pets
    ]
    households = Household.objects.filter(tenant_id=actor.tenant_id, client_id=own)
    household_rows = [
        tuple(getattr(home, name) for name in entities.OWN_HOUSEHOLD.column_names)
        for home in households
    ]
    events = describe(actor, events_about_own_record(actor).order_by("id"))
    access_rows = [
        (
            line.event.id,
            line.event.occurred_at,
            line.person,
            line.event.actor_role,
            line.event.action,
            line.event.outcome,
            line.event.purpose,
        )
        for line in events
    ]
    record(
        AuditAction.EXPORT_READ,
        actor=actor,
        target=client,
        purpose=PURPOSE,
        detail={
            "entity": "own_data",
            "count": 1,
            "visits": len(visit_rows),
            "pets": len(pet_rows),
            "household": len(household_rows),
            "events": len(access_rows),
        },
    )
    return [
        _fixed(entities.OWN_CLIENT, [client_row]),
        _fixed(entities.OWN_PETS, pet_rows),
        _fixed(entities.OWN_HOUSEHOLD, household_rows),
        _fixed(entities.OWN_VISITS, visit_rows),
        _images(
            actor,
            VisitPhoto.objects.filter(tenant_id=actor.tenant_id, visit__client_id=own),
            entities.OWN_PHOTOS,
            VISIT_PHOTO_FILES,
        ),
        _images(
            actor,
            Pet.objects.filter(tenant_id=actor.tenant_id, client_id=own, photo__isnull=False),
            entities.OWN_PET_PHOTOS,
            PET_PHOTO_FILES,
        ),
        _fixed(entities.OWN_ACCESS, access_rows),
    ]


def _fixed(entity: Entity, rows: list[Row]) -> Source:
    return Source(entity, len(rows), lambda: iter([rows]))
