"""What an export holds: one entity per pair of files (CSV and JSON), every column described.

The README of each archive is written from these descriptions (archive.py), and a test checks
that every column of every file is described, so the two cannot drift apart. The rows
themselves are read by access.py, in the order of `columns`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    description: str


@dataclass(frozen=True)
class Entity:
    """One kind of record: `<name>.csv` and `<name>.json` in the archive."""

    name: str
    description: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


def _columns(*pairs: tuple[str, str]) -> tuple[Column, ...]:
    return tuple(Column(name, description) for name, description in pairs)


ID = ("id", "The record's unique id (a UUID); other files refer to it by this id.")
CREATED = ("created_at", "When the record was created (ISO 8601, UTC).")

BUSINESS = Entity(
    "business",
    "The business itself and its settings (one row).",
    _columns(
        ID,
        ("name", "The business's name."),
        ("slug", "The short name used in addresses and commands."),
        ("access_window_before_hours", "Hours before a visit from which its staff see the codes."),
        ("access_window_after_hours", "Hours after a visit until which its staff see the codes."),
        ("session_idle_minutes", "Minutes of inactivity after which a member's session ends."),
        ("mfa_required_owners", "Whether owners must use a second factor (true/false)."),
        ("mfa_required_managers", "Whether managers must use a second factor (true/false)."),
        ("mfa_required_staff", "Whether staff must use a second factor (true/false)."),
        ("time_zone", "The business's time zone (an IANA name such as Europe/London)."),
        ("currency", "The currency sold and invoiced in now (ISO 4217 code)."),
        (
            "opening_hours",
            "Opening hours, Monday first: seven comma-separated HH:MM-HH:MM, empty when closed.",
        ),
        ("reminder_hours_before", "Hours before a visit the client's reminder goes out (0: none)."),
        CREATED,
    ),
)

MEMBERS = Entity(
    "members",
    "Everyone with a login in the business: owners, managers, staff and clients' portal logins.",
    _columns(
        ID,
        ("user_id", "The person's login id (the same in every business they belong to)."),
        ("full_name", "The person's name as they entered it."),
        ("email", "The person's login email address."),
        ("role", "owner, manager, staff or client."),
        ("client_id", "For a client's portal login: the client record (clients.csv)."),
        ("is_active", "false once the member was deactivated (true/false)."),
        CREATED,
    ),
)

INVITATIONS = Entity(
    "invitations",
    "Invitations sent to join the business (their secret links are never stored or exported).",
    _columns(
        ID,
        ("email", "The address invited."),
        ("role", "The role offered."),
        ("client_id", "For a client invitation: the client record (clients.csv)."),
        ("invited_by_id", "The member who sent it (members.csv)."),
        CREATED,
        ("expires_at", "When the link stops working."),
        ("accepted_at", "When it was accepted, if it was."),
        ("revoked_at", "When it was revoked, if it was."),
    ),
)

CLIENTS = Entity(
    "clients",
    "The business's clients, every field decrypted.",
    _columns(
        ID,
        ("name", "The client's name."),
        ("email", "The client's email address."),
        ("phone", "The client's phone number."),
        ("address", "The client's address."),
        ("notes", "The business's notes about the client."),
        CREATED,
        ("updated_at", "When the record last changed."),
    ),
)

HOME_ACCESS = Entity(
    "home_access",
    "How staff get into each client's home: instructions, door and alarm codes (decrypted).",
    _columns(
        ("client_id", "The client (clients.csv)."),
        ("instructions", "How to get in."),
        ("door_code", "The door code."),
        ("alarm_code", "The alarm code."),
        ("updated_at", "When these last changed."),
    ),
)

PET_COLUMNS = (
    ("name", "The pet's name."),
    ("species", "For example dog or cat."),
    ("breed", "The pet's breed."),
    ("birthday", "The pet's birthday (YYYY-MM-DD), if known."),
    ("feeding", "Feeding instructions."),
    ("medication", "Medication and how to give it."),
    ("vet_name", "The pet's vet."),
    ("vet_phone", "The vet's phone number."),
    ("notes", "Notes about the pet."),
    CREATED,
    ("updated_at", "When the record last changed."),
)
PETS = Entity(
    "pets",
    "Clients' pets and their care (decrypted).",
    _columns(ID, ("client_id", "The pet's client (clients.csv)."), *PET_COLUMNS),
)

HOUSEHOLD_COLUMNS = (
    ("keys_held", "Which keys the business holds."),
    ("parking", "Where to park."),
    ("wifi_name", "The Wi-Fi network's name."),
    ("wifi_password", "The Wi-Fi password."),
    ("emergency_contact", "Who to call in an emergency."),
    ("updated_at", "When these last changed."),
)
HOUSEHOLDS = Entity(
    "households",
    "Clients' household details: keys, parking, Wi-Fi, emergency contact (decrypted).",
    _columns(("client_id", "The client (clients.csv)."), *HOUSEHOLD_COLUMNS),
)

ASSIGNMENTS = Entity(
    "assignments",
    "Which staff member serves which client.",
    _columns(
        ID,
        ("client_id", "The client (clients.csv)."),
        ("staff_id", "The staff member (members.csv)."),
        ("assigned_by_id", "The member who made the assignment (members.csv)."),
        CREATED,
    ),
)

SERVICES = Entity(
    "services",
    "The services the business sells.",
    _columns(
        ID,
        ("name", "The service's name."),
        ("duration_minutes", "How long a visit of this service lasts, in minutes."),
        ("price_cents", "Its price in cents."),
        ("is_active", "false once it is no longer offered (true/false)."),
        CREATED,
    ),
)

VISITS = Entity(
    "visits",
    "Visits to clients, with the client's request note and the staff member's report (decrypted).",
    _columns(
        ID,
        ("client_id", "The client visited (clients.csv)."),
        ("staff_id", "The staff member making the visit (members.csv), if assigned."),
        ("service_id", "The service (services.csv), if any."),
        ("starts_at", "When the visit starts (ISO 8601, UTC)."),
        ("ends_at", "When it ends."),
        ("status", "requested, scheduled, completed or cancelled."),
        ("request_note", "The client's note when they requested the visit."),
        ("report", "The staff member's report of the visit."),
        CREATED,
        ("updated_at", "When the visit last changed."),
    ),
)

PHOTO_FILE = (
    "file",
    "The photo's file in this archive (photos/<visit_id>/<photo_id>.jpg), exactly as served.",
)
PHOTO_COLUMNS = (
    ("visit_id", "The visit the photo was taken at (visits.csv)."),
    ("content_type", "The file's type (image/jpeg)."),
    ("size", "The file's size in bytes."),
    ("width", "Its width in pixels."),
    ("height", "Its height in pixels."),
)

VISIT_PHOTOS = Entity(
    "visit_photos",
    "Photos taken at visits (decrypted); each is a file under photos/, named in `file`.",
    _columns(
        ID,
        *PHOTO_COLUMNS,
        ("created_by_id", "Who added it (members.csv), if they are still a member."),
        CREATED,
        PHOTO_FILE,
    ),
)

PET_PHOTO_FILE = (
    "file",
    "The photo's file in this archive (pets/<pet_id>.jpg), exactly as the pet's card shows it.",
)
PET_PHOTO_UPDATED = ("photo_updated_at", "When the photo was set.")
PET_PHOTOS = Entity(
    "pet_photos",
    "Pets' photos (decrypted); each is a file under pets/, named in `file`.",
    _columns(
        ("id", "The pet (pets.csv)."),
        ("client_id", "The pet's client (clients.csv)."),
        PET_PHOTO_UPDATED,
        PET_PHOTO_FILE,
    ),
)

AUDIT_COLUMNS = _columns(
    ("id", "The event's number; the trail's order."),
    ("occurred_at", "When it happened (ISO 8601, UTC)."),
    ("lane", "Which of the business's hash chains the event is in."),
    ("seq", "Its position in that chain."),
    ("actor_user_id", "Who acted (members.csv user_id); empty for Custodia itself."),
    ("actor_role", "The role they acted in."),
    ("action", "What was done, e.g. client.read or visit.update."),
    ("outcome", "ok, denied or failed."),
    ("target_type", "The kind of record acted on."),
    ("target_id", "Its id."),
    ("client_id", "The client record concerned, if one."),
    ("subject_ids", "For a bulk read: the client records read, space-separated."),
    ("ip", "The address the request came from."),
    ("user_agent", "The browser or program that made the request."),
    ("request_id", "The request's id in the server's logs."),
    ("purpose", "Why the data was read, when stated (e.g. export)."),
    ("detail", "Field names and counts, as JSON (never a customer field's value)."),
    ("hash", "The event's hash in its chain (hex): see docs/audit.md."),
)

AUDIT_EVENTS = Entity(
    "audit_events",
    "The business's audit trail: who did what to which record, and when.",
    AUDIT_COLUMNS,
)

# The whole-business export, in the order it is written.
BUSINESS_ENTITIES = (
    BUSINESS,
    MEMBERS,
    INVITATIONS,
    SERVICES,
    CLIENTS,
    HOME_ACCESS,
    PETS,
    HOUSEHOLDS,
    ASSIGNMENTS,
    VISITS,
    VISIT_PHOTOS,
    PET_PHOTOS,
    AUDIT_EVENTS,
)

# A client's own data (the portal): their record, their visits, who accessed their record.
OWN_CLIENT = Entity(
    "client",
    "Your record with the business (one row), every field decrypted.",
    CLIENTS.columns,
)
OWN_VISITS = Entity(
    "visits",
    "Your visits, with your request notes and the visit reports.",
    _columns(
        ID,
        ("service", "The service's name, if any."),
        ("staff", "The name of who visits you, if assigned."),
        ("starts_at", "When the visit starts (ISO 8601, UTC)."),
        ("ends_at", "When it ends."),
        ("status", "requested, scheduled, completed or cancelled."),
        ("request_note", "Your note when you requested the visit."),
        ("report", "The visit's report."),
        CREATED,
    ),
)
OWN_ACCESS = Entity(
    "record_access",
    "Who accessed your record and when, from the business's audit trail, including every "
    "export of the whole business (which holds your record).",
    _columns(
        ("id", "The event's number in the trail."),
        ("occurred_at", "When it happened (ISO 8601, UTC)."),
        ("person", "Who acted (their name, or their role)."),
        ("role", "The role they acted in."),
        ("action", "What was done, e.g. client.read."),
        ("outcome", "ok, denied or failed."),
        ("purpose", "Why, when stated (e.g. export)."),
    ),
)
OWN_PETS = Entity("pets", "Your pets and their care.", _columns(ID, *PET_COLUMNS))
OWN_HOUSEHOLD = Entity(
    "household",
    "Your household details (one row, if any): keys, parking, Wi-Fi, emergency contact.",
    _columns(*HOUSEHOLD_COLUMNS),
)
OWN_PHOTOS = Entity(
    "visit_photos",
    "Photos taken at your visits; each is a file under photos/, named in `file`.",
    _columns(ID, *PHOTO_COLUMNS, CREATED, PHOTO_FILE),
)
OWN_PET_PHOTOS = Entity(
    "pet_photos",
    "Your pets' photos; each is a file under pets/, named in `file`.",
    _columns(("id", "The pet (pets.csv)."), PET_PHOTO_UPDATED, PET_PHOTO_FILE),
)
CLIENT_ENTITIES = (
    OWN_CLIENT,
    OWN_PETS,
    OWN_HOUSEHOLD,
    OWN_VISITS,
    OWN_PHOTOS,
    OWN_PET_PHOTOS,
    OWN_ACCESS,
)
