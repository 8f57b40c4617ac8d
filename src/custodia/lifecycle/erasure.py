"""Erasure of one client's personal data, on their request or at the business's initiative.

- `do_request_erasure`: a client asks from the portal. A request record (ids and a time) and a
  notice by email to the business's owners and managers, naming no customer (a link to the
  record is all it carries).
- `do_erase_client`: an owner or manager, with a fresh step-up, erases the client (completing
  their pending request, if any). The name becomes "Erased client"; email, phone, address and
  notes, the home-access instructions and codes, and every visit's request note and report are
  replaced by sealed empty values (the old ciphertexts are overwritten, not kept); their pets and
  household details are deleted (docs/profiles.md); the client's invitations and visit photos go;
  their portal login is detached (its membership deleted, its sessions for the business ended),
  and a login left with no business at all is anonymised: its address, name, password, second
  factors and security events go. Visits stay, as anonymous rows the business's statistics still
  count. The erasure is one audit event with ids and counts; the trail never held the client's
  name or contact details (events carry ids and field names).

Here, above clients and scheduling (pyproject.toml's layers), because it reaches into both.
"""

from __future__ import annotations

import logging
from typing import Any

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from custodia.accounts import adapter as mail
from custodia.accounts.links import public_url
from custodia.accounts.models import SecurityEvent, User
from custodia.accounts.sessions import end_sessions
from custodia.accounts.stepup import require_step_up
from custodia.clients.actions import ACCESS_FIELDS
from custodia.clients.models import Client, ErasureRequest, HomeAccess, Household, Pet, name_key
from custodia.core.actor import Actor, activate, ensure_in_business, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.dbcontext import fetch_all_with_key, set_db_context
from custodia.core.permissions import Permission, Role
from custodia.payments.actions.cards import forget_cards_of
from custodia.scheduling.models import Visit, VisitPhoto
from custodia.tenancy.models import Invitation, Membership

logger = logging.getLogger(__name__)

ERASED_NAME = "Erased client"
PERSONAL_FIELDS = ("email", "phone", "address", "notes")
VISIT_TEXT_FIELDS = ("request_note", "report")
NOTICE_SQL = "SELECT email FROM custodia_erasure_notice_addresses(%s)"


def do_request_erasure(*, actor: Actor) -> ErasureRequest:
    """A client asks the business to erase their personal data; its managers are told."""
    require_active(actor)
    actor.require(Permission.CLIENTS_SELF_ERASURE)
    client_id = actor.membership.client_id
    if actor.role != Role.CLIENT or client_id is None:
        raise PermissionDenied("Only a client can ask for their own data to be erased.")
    with transaction.atomic():
        # Two requests at once (a double click) take turns here, so the second finds the first
        # instead of meeting the one-pending-request constraint (a 500).
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                [f"erasure-request:{actor.tenant_id}:{client_id}"],
            )
        pending = ErasureRequest.objects.filter(
            tenant_id=actor.tenant_id, client_id=client_id, erased_at__isnull=True
        ).first()
        if pending is not None:
            return pending  # asked already: one request, one notice
        request = ErasureRequest.objects.create(tenant_id=actor.tenant_id, client_id=client_id)
        record(
            AuditAction.CLIENT_ERASURE_REQUEST,
            actor=actor,
            target=request,
            client_id=client_id,
        )
        addresses = [row[0] for row in fetch_all_with_key(NOTICE_SQL, [])]
        _send_notice(actor, client_id, addresses)
    return request


def _send_notice(actor: Actor, client_id: Any, addresses: list[str]) -> None:
    """The notice to the owners and managers: the business, a link, no customer data."""
    if not addresses:
        return
    body = render_to_string(
        "clients/email/erasure_request.txt",
        {
            "business": actor.business,
            "link": public_url(reverse("client_detail", args=[client_id])),
        },
    )
    # Once the request commits; a failed send is logged by type only, and the request stands
    # (the client list shows it).
    mail.send_after_commit(
        EmailMessage(
            f"{actor.business.name}: a client asked for their data to be erased",
            body,
            settings.DEFAULT_FROM_EMAIL,
            addresses,
        )
    )


def pending_erasure_request(actor: Actor, client: Client) -> ErasureRequest | None:
    """The client's open erasure request, for their record's page (managers) or portal."""
    if not (
        actor.can(Permission.CLIENTS_RECORD_ERASE) or actor.can(Permission.CLIENTS_SELF_ERASURE)
    ):
        return None
    return (
        ErasureRequest.objects.filter(
            tenant_id=actor.tenant_id, client_id=client.pk, erased_at__isnull=True
        )
        .order_by("requested_at")
        .first()
    )


def pending_erasure_requests(actor: Actor) -> QuerySet[ErasureRequest]:
    """Every open erasure request of the business (owners and managers)."""
    actor.require(Permission.CLIENTS_RECORD_ERASE)
    return ErasureRequest.objects.filter(
        tenant_id=actor.tenant_id, erased_at__isnull=True
    ).order_by("requested_at")


def do_erase_client(client: Client, *, actor: Actor) -> Client:
    """Erase the client's personal data (see the module's docstring); visits stay, anonymous."""
    require_active(actor)
    actor.require(Permission.CLIENTS_RECORD_ERASE)
    ensure_in_business(actor, client)
    require_step_up(actor)
    if client.erased_at is not None:
        raise ValidationError("This client's data was erased already.")
    now = timezone.now()
    with transaction.atomic():
        # First, and at the vault: saved card numbers are deleted, or nothing is erased yet.
        cards = forget_cards_of(client, actor=actor)
        client.name = ERASED_NAME
        for field in PERSONAL_FIELDS:
            setattr(client, field, "")
        client.name_search = name_key(ERASED_NAME)
        client.email_search = None
        client.phone_search = None
        client.erased_at = now
        client.save(
            update_fields=[
                "name",
                *PERSONAL_FIELDS,
                "name_search",
                "email_search",
                "phone_search",
                "erased_at",
                "updated_at",
            ]
        )
        home = HomeAccess.objects.filter(tenant_id=actor.tenant_id, client=client).first()
        if home is not None:
            for field in ACCESS_FIELDS:
                setattr(home, field, "")
            home.save(update_fields=[*ACCESS_FIELDS, "updated_at"])
        pets, _ = Pet.objects.filter(tenant_id=actor.tenant_id, client=client).delete()
        household, _ = Household.objects.filter(tenant_id=actor.tenant_id, client=client).delete()
        visits = 0
        for visit in Visit.objects.filter(tenant_id=actor.tenant_id, client=client).order_by("pk"):
            for field in VISIT_TEXT_FIELDS:
                setattr(visit, field, "")
            visit.save(update_fields=[*VISIT_TEXT_FIELDS, "updated_at"])
            visits += 1
        # Photos are the client's home and belongings: deleted, not kept.
        photos, _ = VisitPhoto.objects.filter(
            tenant_id=actor.tenant_id, visit__client=client
        ).delete()
        invitations, _ = Invitation.objects.filter(
            tenant_id=actor.tenant_id, client_id=client.pk
        ).delete()
        detached = _detach_portal_login(client, actor=actor)
        requests = ErasureRequest.objects.filter(
            tenant_id=actor.tenant_id, client=client, erased_at__isnull=True
        ).update(erased_at=now, erased_by=actor.membership)
        record(
            AuditAction.CLIENT_ERASE,
            actor=actor,
            target=client,
            detail={
                "visits_kept": visits,
                "photos_deleted": photos,
                "invitations_deleted": invitations,
                "portal_login_detached": detached,
                "requests_completed": requests,
                "cards_deleted": cards,
                "pets_deleted": pets,
                "household_deleted": household,
            },
        )
    logger.info("client erased tenant=%s client=%s", actor.tenant_id, client.pk)
    return client


def _detach_portal_login(client: Client, *, actor: Actor) -> bool:
    """Delete the client's portal membership and end its sessions for the business; a login
    left with no business at all is anonymised (it holds the client's address and name)."""
    membership = (
        Membership.objects.select_related("user")
        .filter(tenant_id=actor.tenant_id, client=client)
        .first()
    )
    if membership is None:
        return False
    user = membership.user
    end_sessions(user, business_id=actor.tenant_id)
    membership.delete()
    if not _has_other_memberships(user, actor=actor):
        _anonymise_login(user)
    return True


def _has_other_memberships(user: User, *, actor: Actor) -> bool:
    """Whether the login belongs to any business still. The acting manager sees only their own
    business's memberships, so the login's own context (which sees all of its memberships) is
    asked, and the actor's put back at once."""
    set_db_context(user_id=user.pk)
    try:
        return Membership.objects.filter(user=user).exists()
    finally:
        activate(actor)


def _anonymise_login(user: User) -> None:
    """A login with no business left: nothing of the person stays on it."""
    end_sessions(user)
    EmailAddress.objects.filter(user=user).delete()
    Authenticator.objects.filter(user=user).delete()
    SecurityEvent.objects.filter(user=user).delete()
    user.email = f"erased-{user.pk.hex}@erased.invalid"
    user.full_name = ""
    user.is_active = False
    user.set_unusable_password()
    user.save(update_fields=["email", "full_name", "is_active", "password"])
