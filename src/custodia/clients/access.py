"""Reads of clients: the actor's business, the actor's role, 404 for anything else.

Each function that hands out a client's data records the read itself (a record, a page of the
list or search, the codes); callers say why they want a record (`Intent`), never whether to
record it. `list_clients` is the query those readers narrow: a view that shows clients gets them
from a reader (`page_of_clients`, `read_clients`), never by evaluating it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from custodia.accounts.stepup import has_fresh_step_up, require_step_up
from custodia.audit import access as audit_access
from custodia.audit import history
from custodia.clients.models import (
    Assignment,
    Client,
    ClientNamePart,
    HomeAccess,
    email_key,
    name_key,
    phone_key,
)
from custodia.core.actor import Actor
from custodia.core.audit import AuditAction, note_refusal, read_one, record
from custodia.core.permissions import Permission, Role
from custodia.crypto.keyring import blind_index
from custodia.tenancy.access import parse_id
from custodia.tenancy.models import Membership
from custodia.tenancy.paging import Page, keyset_page
from custodia.tenancy.reads import Intent

CLIENTS_PER_PAGE = 50
# The shortest part of a name searched for: one letter would match most of a business.
NAME_SEARCH_MIN_LENGTH = 2
NAME_TOO_SHORT = f"Type at least {NAME_SEARCH_MIN_LENGTH} characters of a name."
# The list's order: the name's search form, then the id (unique), so that pages never overlap.
CLIENT_ORDER = ("name_search", "id")


@dataclass(frozen=True)
class ClientView:
    """Everything a page or API answer may show of one client, decided and recorded: the record,
    the codes when the reader may see them now (else None), and whether a step-up would show
    them."""

    client: Client
    home_access: HomeAccess | None
    home_access_held_back: bool


def _visible_clients(actor: Actor) -> QuerySet[Client]:
    clients = Client.objects.filter(tenant_id=actor.tenant_id)
    if actor.role == Role.CLIENT:
        actor.require(Permission.CLIENTS_SELF_READ)
        own = actor.membership.client_id
        return clients.none() if own is None else clients.filter(id=own)
    actor.require(Permission.CLIENTS_RECORD_READ)
    if actor.role == Role.STAFF:
        return clients.filter(assignments__staff_id=actor.membership.pk)
    return clients


def list_clients(actor: Actor, *, query: str = "") -> QuerySet[Client]:
    """Clients the actor may see, optionally searched.

    A query with "@" matches the email exactly, one of mostly digits matches the phone exactly
    (both through the business's blind indexes: docs/keys.md), anything else is the beginning
    of any word of the name ("lee" finds "Kim Lee" and "Ashley Leeds"), at least
    NAME_SEARCH_MIN_LENGTH characters (else ValidationError on `q`); each is an index lookup
    that leads with tenant_id.
    """
    clients = _visible_clients(actor)
    query = query.strip()[:120]
    if query:
        problem = search_problem(query)
        if problem:
            raise ValidationError({"q": problem})
        digits = phone_key(query)
        if "@" in query:
            index = blind_index(actor.tenant_id, "email", email_key(query))
            clients = clients.filter(email_search=index)
        elif _is_phone(query, digits):
            clients = clients.filter(phone_search=blind_index(actor.tenant_id, "phone", digits))
        else:
            # The parts' own index range (tenancy/lookups.py `prefix`, leakproof under RLS),
            # then the clients by primary key.
            parts = ClientNamePart.objects.filter(
                tenant_id=actor.tenant_id, part__prefix=name_key(query)
            )
            clients = clients.filter(id__in=parts.values("client_id"))
    return clients.order_by(*CLIENT_ORDER)


def _is_phone(query: str, digits: str) -> bool:
    return len(digits) >= 5 and not any(char.isalpha() for char in query)


def search_problem(query: str) -> str | None:
    """Why `query` cannot be searched for (a name part too short), or None."""
    query = query.strip()
    if not query or "@" in query or _is_phone(query, phone_key(query)):
        return None
    return NAME_TOO_SHORT if len(name_key(query)) < NAME_SEARCH_MIN_LENGTH else None


def page_of_clients(
    actor: Actor, *, query: str = "", cursor: str | None = None, size: int = CLIENTS_PER_PAGE
) -> Page[Client]:
    """A page of the clients the actor may see, searched (`list_clients`), from `cursor` on
    (tenancy/paging.py; InvalidCursor for one this list did not issue): a bulk read that keeps
    whether there was a search term, never the term."""
    page = keyset_page(
        list_clients(actor, query=query),
        keys=CLIENT_ORDER,
        list_name="clients",
        cursor=cursor,
        size=size,
    )
    _record_list(actor, page.items, searched=bool(query))
    return page


def read_clients(actor: Actor, clients: QuerySet[Client], **detail: object) -> list[Client]:
    """Clients about to be shown some other way (a menu of a form), fetched and recorded as one
    bulk read; `clients` is a query this module built (`list_clients`)."""
    rows = list(clients)
    _record_list(actor, rows, **detail)
    return rows


def _record_list(actor: Actor, clients: Iterable[Client], **detail: object) -> None:
    # The client ids, in the order shown, once: in `subject_ids`.
    ids = [client.pk for client in clients]
    record(
        AuditAction.CLIENT_LIST, actor=actor, subject_ids=ids, detail={**detail, "count": len(ids)}
    )


def access_client_by_id(actor: Actor, client_id: object, *, intent: Intent) -> Client:
    """One client the actor may see, or 404 (never 403: existence is not revealed).

    Shown (`Intent.SHOW`), the read is an audit event; about to be changed or deleted, or only
    referred to, it is not (the action's own event says what was done). A refusal is noted.
    """
    key = parse_id(client_id)
    found = _visible_clients(actor).filter(id=key)
    if intent is Intent.SHOW:
        client = read_one(found, AuditAction.CLIENT_READ, actor=actor)
    else:
        client = found.first()
    if client is None:
        note_refusal("client", key)
        raise Http404("No such client.")
    return client


def view_client(actor: Actor, client_id: object, *, insist: bool = False) -> ClientView:
    """One client as a page or answer shows it: the record and, when the actor may see them now,
    the codes; the read and the reveal are recorded. `insist`: see `home_access_and_hold`."""
    client = access_client_by_id(actor, client_id, intent=Intent.SHOW)
    return _with_codes(actor, client, insist=insist)


def client_view(
    actor: Actor, client: Client, *, intent: Intent, insist: bool = False
) -> ClientView:
    """The view of a client already read through `access_client_by_id` with `intent`: shown
    again (a form sent back with errors: `Intent.SHOW`, recorded as a read) or just written
    (`Intent.CHANGE`: the write's event covers the record); a reveal of codes is recorded."""
    if intent is Intent.SHOW:
        record(AuditAction.CLIENT_READ, actor=actor, target=client)
    return _with_codes(actor, client, insist=insist)


def _with_codes(actor: Actor, client: Client, *, insist: bool) -> ClientView:
    codes, held_back = home_access_and_hold(actor, client, insist=insist)
    return ClientView(client=client, home_access=codes, home_access_held_back=held_back)


def home_access_for(actor: Actor, client: Client, *, insist: bool = False) -> HomeAccess | None:
    """Door and alarm codes, when the actor may see them now (see `home_access_and_hold`)."""
    codes, _held_back = home_access_and_hold(actor, client, insist=insist)
    return codes


def home_access_and_hold(
    actor: Actor, client: Client, *, insist: bool = False
) -> tuple[HomeAccess | None, bool]:
    """The codes the actor may see now, and whether they are held back for a step-up.

    The one rule (docs/threat-model.md, "Door codes"): staff see them only in the business's
    window around their own scheduled or completed visit (checked here, and by RLS underneath).
    Owners and managers see them only after a fresh step-up (accounts/stepup.py), which an API
    token never has; without one, (None, True), or StepUpRequired with `insist` (a page that
    must show the codes, such as the editor).
    """
    purpose, held_back = reveal_purpose(actor, client, insist=insist)
    if purpose is None:
        return None, held_back
    codes = HomeAccess.objects.filter(tenant_id=actor.tenant_id, client_id=client.pk).first()
    if codes is not None and (codes.door_code or codes.alarm_code or codes.instructions):
        record(AuditAction.ACCESS_CODES_REVEAL, actor=actor, target=client, purpose=purpose)
    return codes, False


def reveal_purpose(
    actor: Actor, client: Client, *, insist: bool = False
) -> tuple[str | None, bool]:
    """Why the client's home secrets (door codes, Wi-Fi, emergency contact) may be seen now, as
    the trail records it, or None; and whether a step-up would show them (see
    `home_access_and_hold`)."""
    if not actor.can(Permission.CLIENTS_ACCESS_READ):
        return None, False
    if actor.is_manager:
        # No visit counts for a manager: they can schedule, move and delete visits (and assign
        # staff, themself included) without a step-up, so a visit "near now" proves nothing.
        if insist:
            require_step_up(actor)
        elif not has_fresh_step_up(actor):
            return None, True
        return "stepped up", False
    if _in_own_visit_window(actor, client):
        return "visit window", False
    return None, False


# Visit statuses that open the window (scheduling.models.VisitStatus; the RLS policy on
# clients_homeaccess names the same two). Requested and cancelled visits open nothing.
WINDOW_STATUSES = ("scheduled", "completed")


def _in_own_visit_window(actor: Actor, client: Client) -> bool:
    """One of the actor's own visits to the client whose access window includes now."""
    business = actor.business
    now = timezone.now()
    # Through the reverse relation, so clients need not import scheduling (which imports us).
    return client.visits.filter(
        tenant_id=actor.tenant_id,
        staff_id=actor.membership.pk,
        status__in=WINDOW_STATUSES,
        starts_at__lte=now + dt.timedelta(hours=business.access_window_before_hours),
        ends_at__gte=now - dt.timedelta(hours=business.access_window_after_hours),
    ).exists()


def assigned_staff(actor: Actor, client: Client) -> QuerySet[Membership]:
    """Staff assigned to a client the actor can see."""
    actor.require(Permission.CLIENTS_RECORD_READ)
    return (
        Membership.objects.filter(tenant_id=actor.tenant_id, assignments__client_id=client.pk)
        .select_related("user")
        .order_by("user__full_name")
    )


def list_assignments(actor: Actor, client: Client) -> QuerySet[Assignment]:
    """Assignment rows of a client (managers see all; staff see their own)."""
    actor.require(Permission.CLIENTS_RECORD_READ)
    return Assignment.objects.filter(tenant_id=actor.tenant_id, client_id=client.pk).select_related(
        "staff__user"
    )


def own_record_access(actor: Actor) -> list[history.Day]:
    """For the portal: who recently read or changed the client's own record, in words
    (audit/access.py chooses the events, audit/history.py the words)."""
    return history.grouped(audit_access.recent_access_to_own_record(actor))


# The owner's "Who accessed this client": the last month, at most this many events.
HISTORY_DAYS = 30
HISTORY_EVENTS = 500


@dataclass(frozen=True)
class ClientHistory:
    client: Client
    days: list[history.Day]
    since: dt.datetime
    truncated: bool  # more events than HISTORY_EVENTS in the period: the oldest are left out


def client_access_history(actor: Actor, client_id: object) -> ClientHistory:
    """Who read or changed one client's record in the last HISTORY_DAYS days, in words.

    Owners only (the audit trail's permission); another business's client, or none, is a 404.
    Recorded twice: the record's name is shown (a client read) and the trail is read about it.
    """
    actor.require(Permission.AUDIT_READ)
    client = access_client_by_id(actor, client_id, intent=Intent.SHOW)
    since = timezone.now() - dt.timedelta(days=HISTORY_DAYS)
    filters = audit_access.EventFilters(client=client.pk, since=since)
    rows = list(audit_access.list_events(actor, filters)[: HISTORY_EVENTS + 1])
    shown = rows[:HISTORY_EVENTS]
    record(
        AuditAction.AUDIT_READ,
        actor=actor,
        target=client,
        detail={"view": "client history", "filters": filters.used(), "count": len(shown)},
    )
    return ClientHistory(
        client=client,
        days=history.grouped(audit_access.describe(actor, shown)),
        since=since,
        truncated=len(rows) > HISTORY_EVENTS,
    )


def emails_in_use(actor: Actor, emails: Iterable[str]) -> set[str]:
    """Which of `emails` (compared in their search form) an existing, not erased client of the
    business already has, through the business's blind index (an import's duplicate check).

    It hands back only addresses the caller gave, never a record, so it is not recorded as a
    read; it needs the write permission, whose holders see every client anyway.
    """
    actor.require(Permission.CLIENTS_RECORD_WRITE)
    by_index = {
        blind_index(actor.tenant_id, "email", email_key(email)): email_key(email)
        for email in emails
        if email_key(email)
    }
    if not by_index:
        return set()
    found = (
        Client.objects.filter(
            tenant_id=actor.tenant_id, email_search__in=list(by_index), erased_at__isnull=True
        )
        .values_list("email_search", flat=True)
        .distinct()
    )
    return {by_index[bytes(index)] for index in found if index is not None}
