"""Reads of clients: the actor's business, the actor's role, 404 for anything else."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from custodia.accounts.stepup import has_fresh_step_up, require_step_up
from custodia.clients.models import Assignment, Client, HomeAccess, email_key, name_key, phone_key
from custodia.core.actor import Actor
from custodia.core.audit import AuditAction, note_refusal, record
from custodia.core.permissions import Permission, Role
from custodia.crypto.keyring import blind_index
from custodia.tenancy.access import parse_id
from custodia.tenancy.models import Membership


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
    (both through the business's blind indexes: docs/keys.md), anything else is a name prefix;
    each is an index lookup that leads with tenant_id.
    """
    clients = _visible_clients(actor)
    query = query.strip()[:120]
    if query:
        digits = phone_key(query)
        if "@" in query:
            index = blind_index(actor.tenant_id, "email", email_key(query))
            clients = clients.filter(email_search=index)
        elif len(digits) >= 5 and not any(char.isalpha() for char in query):
            clients = clients.filter(phone_search=blind_index(actor.tenant_id, "phone", digits))
        else:
            clients = clients.filter(name_search__prefix=name_key(query))
    return clients.order_by("name_search", "id")


def access_client_by_id(actor: Actor, client_id: object, *, record_read: bool = True) -> Client:
    """One client the actor may see, or 404 (never 403: existence is not revealed).

    The read is an audit event, unless the caller is about to change or delete the record
    (`record_read=False`), whose own event then says what was done. A refusal is noted too.
    """
    key = parse_id(client_id)
    try:
        client = _visible_clients(actor).get(id=key)
    except Client.DoesNotExist:
        note_refusal("client", key)
        raise Http404("No such client.") from None
    if record_read:
        record(AuditAction.CLIENT_READ, actor=actor, target=client)
    return client


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
    if not actor.can(Permission.CLIENTS_ACCESS_READ):
        return None, False
    # Why the codes may be seen now: the purpose the trail records with the reveal.
    if actor.is_manager:
        # No visit counts for a manager: they can schedule, move and delete visits (and assign
        # staff, themself included) without a step-up, so a visit "near now" proves nothing.
        if insist:
            require_step_up(actor)
        elif not has_fresh_step_up(actor):
            return None, True
        purpose = "stepped up"
    elif _in_own_visit_window(actor, client):
        purpose = "visit window"
    else:
        return None, False
    codes = HomeAccess.objects.filter(tenant_id=actor.tenant_id, client_id=client.pk).first()
    if codes is not None and (codes.door_code or codes.alarm_code or codes.instructions):
        record(AuditAction.ACCESS_CODES_REVEAL, actor=actor, target=client, purpose=purpose)
    return codes, False


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
