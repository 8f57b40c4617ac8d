"""A record's audit events as people read them: sentences, grouped by day and person.

"Who accessed this client" (the owner, from the client's page) and "Who accessed your record"
(the client, in the portal) show the same events the trail holds, in words: "Priya Shah viewed
the door and alarm codes at 09:20, during one of their visits", one line per kind of thing a
person did in a day (repeats counted: "viewed the record 3 times, 09:02 to 09:40"), days newest
first, times in the server's time zone. Nothing here reads the database beyond `describe`'s
names: callers hand in events they were allowed to read, and record that read themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.utils import timezone

from custodia.audit.access import EventLine, action_label
from custodia.core.audit import AuditAction, Outcome

# What a person did, after their name ("Priya Shah viewed the record").
PHRASES: dict[str, str] = {
    AuditAction.CLIENT_READ: "viewed the record",
    AuditAction.CLIENT_LIST: "saw the record in a list",
    AuditAction.CLIENT_CREATE: "created the record",
    AuditAction.CLIENT_UPDATE: "changed the record",
    AuditAction.CLIENT_DELETE: "deleted the record",
    AuditAction.CLIENT_ERASE: "erased the record's personal data",
    AuditAction.CLIENT_ERASURE_REQUEST: "asked for the personal data to be erased",
    AuditAction.ACCESS_CODES_REVEAL: "viewed the door and alarm codes",
    AuditAction.PROFILE_READ: "viewed the pets and household details",
    AuditAction.HOUSEHOLD_REVEAL: "viewed the Wi-Fi and emergency contact",
    AuditAction.HOUSEHOLD_UPDATE: "changed the household details",
    AuditAction.PET_CREATE: "added a pet",
    AuditAction.PET_UPDATE: "changed a pet",
    AuditAction.PET_DELETE: "removed a pet",
    AuditAction.ASSIGNMENT_CREATE: "assigned a staff member",
    AuditAction.ASSIGNMENT_DELETE: "ended a staff member's assignment",
    AuditAction.VISIT_READ: "viewed a visit",
    AuditAction.VISIT_LIST: "saw visits in a list",
    AuditAction.VISIT_FEED: "received visits in their calendar feed",
    AuditAction.VISIT_CREATE: "scheduled a visit",
    AuditAction.VISIT_REQUEST: "requested a visit",
    AuditAction.VISIT_UPDATE: "changed a visit",
    AuditAction.VISIT_CONFIRM: "confirmed a visit",
    AuditAction.VISIT_DELETE: "deleted a visit",
    AuditAction.VISIT_CHECK_IN: "checked in at a visit",
    AuditAction.VISIT_CHECK_OUT: "checked out of a visit",
    AuditAction.VISIT_PHOTO_READ: "viewed a visit photo",
    AuditAction.VISIT_PHOTO_ADD: "added a visit photo",
    AuditAction.VISIT_PHOTO_DELETE: "deleted a visit photo",
    AuditAction.PASS_READ: "viewed a pass",
    AuditAction.PASS_LIST: "saw passes in a list",
    AuditAction.PASS_SELL: "sold a pass",
    AuditAction.PASS_VOID: "voided a pass",
    AuditAction.CREDIT_USE: "used a pass credit",
    AuditAction.CREDIT_RETURN: "gave a pass credit back",
    AuditAction.MEMBERSHIP_START: "started a membership",
    AuditAction.MEMBERSHIP_CANCEL: "cancelled a membership",
    AuditAction.INVOICE_READ: "viewed an invoice",
    AuditAction.INVOICE_LIST: "saw invoices in a list",
    AuditAction.INVOICE_CREATE: "started an invoice",
    AuditAction.INVOICE_ISSUE: "issued an invoice",
    AuditAction.INVOICE_VOID: "voided an invoice",
    AuditAction.PAYMENT_RECORD: "recorded a payment",
    AuditAction.PAYMENT_METHOD_ADD: "saved a card",
    AuditAction.PAYMENT_METHOD_REMOVE: "removed a saved card",
    AuditAction.PAYMENT_METHOD_LIST: "viewed the saved cards",
    AuditAction.PAYMENT_CHARGE: "took a card payment",
    AuditAction.PAYMENT_REFUND: "refunded a card payment",
    AuditAction.EXPORT_READ: "included the record in a data export",
    AuditAction.AUDIT_READ: "viewed this history",
    AuditAction.ACCESS_DENIED: "was refused access",
}
# Why a read was allowed, as the trail records it (`purpose`), after the time.
PURPOSES = {
    "visit window": "during one of their visits",
    "stepped up": "after confirming their password",
}


@dataclass
class Line:
    """One kind of thing a person did in a day: how often, first and last time."""

    phrase: str
    purpose: str
    outcome: str
    times: list[dt.datetime] = field(default_factory=list)

    @property
    def sentence(self) -> str:
        """ "viewed the record 3 times, 09:02 to 09:40, during one of their visits" """
        first, last = min(self.times), max(self.times)
        words = self.phrase
        if self.outcome != Outcome.OK:
            words += f" ({self.outcome})"
        if len(self.times) == 1:
            words += f" at {first:%H:%M}"
        else:
            words += f" {len(self.times)} times, {first:%H:%M} to {last:%H:%M}"
        if self.purpose:
            words += f", {self.purpose}"
        return words


@dataclass
class PersonDay:
    """Everything one person did to the record on one day, latest first."""

    person: str
    by_viewer: bool
    lines: list[Line] = field(default_factory=list)


@dataclass
class Day:
    day: dt.date
    people: list[PersonDay] = field(default_factory=list)

    @property
    def label(self) -> str:
        today = timezone.localdate()
        if self.day == today:
            return "Today"
        if self.day == today - dt.timedelta(days=1):
            return "Yesterday"
        return f"{self.day:%A} {self.day.day} {self.day:%B %Y}"


def phrase_of(line: EventLine) -> str:
    """The words for an event's action (the changed fields named for an update)."""
    action = line.event.action
    words = PHRASES.get(action) or action_label(action)
    fields = (line.event.detail or {}).get("fields")
    if action == AuditAction.CLIENT_UPDATE and fields and isinstance(fields, list):
        words += " (" + ", ".join(str(name).replace("_", " ") for name in fields) + ")"
    return words


def grouped(lines: Iterable[EventLine]) -> list[Day]:
    """`lines` (newest first) as days, then people in the order they last acted, then lines."""
    days: dict[dt.date, Day] = {}
    people: dict[tuple[dt.date, str], PersonDay] = {}
    kinds: dict[tuple[dt.date, str, str, str, str], Line] = {}
    for line in lines:
        moment = timezone.localtime(line.event.occurred_at)
        day = moment.date()
        group = days.setdefault(day, Day(day))
        person = people.get((day, line.person))
        if person is None:
            person = people[(day, line.person)] = PersonDay(line.person, line.by_viewer)
            group.people.append(person)
        phrase = phrase_of(line)
        purpose = PURPOSES.get(line.event.purpose, "")
        key = (day, line.person, phrase, purpose, line.event.outcome)
        kind = kinds.get(key)
        if kind is None:
            kind = kinds[key] = Line(phrase, purpose, line.event.outcome)
            person.lines.append(kind)
        kind.times.append(moment)
    return list(days.values())
