"""Writes to businesses, memberships and invitations; each runs in one transaction."""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
import smtplib
import uuid
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import Http404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from custodia.accounts.digests import digest_secret, is_wellformed_prefix, issue_secret
from custodia.accounts.links import public_url
from custodia.accounts.models import User
from custodia.accounts.sessions import current_session_key, end_sessions
from custodia.accounts.stepup import require_step_up
from custodia.core.actor import Actor, acting_as, ensure_in_business, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.dbcontext import set_db_context
from custodia.core.permissions import MANAGING_ROLES, Permission, Role, may_grant
from custodia.crypto.actions import do_destroy_business_keys
from custodia.crypto.keyring import create_keys
from custodia.platform.access import refuse_operator_login
from custodia.tenancy.actors import new_member_actor
from custodia.tenancy.closing import delete_business_rows
from custodia.tenancy.models import (
    Business,
    ClosedBusiness,
    Invitation,
    Membership,
    TenantOwned,
)
from custodia.tenancy.profile import (
    ACCESS_WINDOW_MAX_HOURS,
    REMINDER_MAX_HOURS,
    DayHours,
    check_currency_code,
    check_hours,
    format_opening_hours,
)
from custodia.tenancy.zones import validate_time_zone

logger = logging.getLogger(__name__)
INVITATION_PURPOSE = "invitation"
INVALID_INVITATION = "This invitation link is not valid any more. Ask for a new one."
ALREADY_ACCEPTED = (
    "This invitation was already accepted, so revoking it would not take anything back."
    " To remove that person's access, deactivate them on the staff page."
)
EXISTING_ACCOUNT = "An account with this email already exists: log in, then open the link again."


def do_create_business(*, name: str, owner: User, slug: str | None = None) -> Actor:
    """A new business with `owner` as its first owner; returns the owner's actor."""
    # One line: the name goes into mail subjects (a header holds no line break) and is typed
    # back to confirm closing the business.
    name = " ".join(name.split())
    if not name:
        raise ValidationError({"name": "Give the business a name."})
    business_id = uuid.uuid4()
    slug = slug or f"{slugify(name)[:40] or 'business'}-{secrets.token_hex(3)}"
    # Its data keys first, outside the database (crypto/keystore.py): if the transaction then
    # fails, an unused key file is left, which `custodia keys status` reports as an orphan.
    create_keys(business_id)
    with transaction.atomic():
        set_db_context(tenant_id=business_id, user_id=owner.pk, role=Role.OWNER)
        refuse_operator_login(owner)
        business = Business.objects.create(id=business_id, name=name[:120], slug=slug)
        membership = Membership.objects.create(tenant=business, user=owner, role=Role.OWNER)
        actor = new_member_actor(owner, membership)
        with acting_as(actor):
            record(AuditAction.BUSINESS_CREATE, actor=actor, target=business)
    logger.info("business created tenant=%s", business.pk)
    return actor


def do_delete_business(business: Business, *, actor: Actor, confirm_slug: str) -> None:
    """Delete the business and everything it holds, at the owner's request.

    Its members' sessions acting for it end with it, in the same transaction. Its data keys
    are destroyed once the deletion commits (crypto-shredding: docs/keys.md), so no copy of its
    encrypted data can be read again once the keystore backups made before the deletion have
    expired (a database backup alone never could). The audit
    trail keeps its events (they hold ids and field names, no customer values) for its
    retention period.
    """
    require_active(actor)
    actor.require(Permission.BUSINESS_DELETE)
    require_step_up(actor)
    if business.pk != actor.tenant_id:
        raise Http404("No such business.")
    if confirm_slug.strip() != business.slug:
        raise ValidationError({"confirm": f"Type {business.slug} to confirm the deletion."})
    business_id = business.pk
    with transaction.atomic():
        # In the business's own chain, and in the owner's platform chain, which outlives it.
        record(AuditAction.BUSINESS_DELETE, actor=actor, target=business)
        record(AuditAction.BUSINESS_DELETE, user=actor.user, target=business)
        # Closed and waiting for its purge: deleted now instead, leaving no record of counts.
        ClosedBusiness.objects.filter(business_id=business_id).delete()
        delete_business_rows(business, actor=actor)
        transaction.on_commit(lambda: _destroy_keys(business_id, actor.user))
    logger.info("business deleted tenant=%s", business_id)


def _destroy_keys(business_id: uuid.UUID, owner: Any) -> None:
    """After the deletion commits. A failure leaves an orphan key file, which `custodia keys
    rotate-all` destroys (and `custodia keys status` reports); the deletion stands."""
    try:
        # On the owner's platform chain, beside their `business.delete`, and through the app's
        # own connection, which committed the deletion (the owner connection would wait on a
        # chain head an open transaction holds: tests run these callbacks inside theirs).
        do_destroy_business_keys(
            business_id, reason="business deleted", using="default", user=owner
        )
    except Exception:
        logger.exception("business keys not destroyed yet tenant=%s", business_id)


def do_invite_member(
    *, actor: Actor, email: str, role: Role, client: TenantOwned | None = None
) -> Invitation:
    """Invite someone by a single-use, expiring link sent by email."""
    require_active(actor)
    actor.require(Permission.STAFF_MEMBER_INVITE)
    ensure_in_business(actor, client)
    if not may_grant(actor.role, role):
        raise PermissionDenied("Only an owner can invite another owner.")
    if role != Role.CLIENT:
        # Granting the run of the business is a permission change, and a staff member sees door
        # codes around their visits: without this, a session past its step-up could invite a
        # second address of its own as staff, assign it and schedule its visit, and read every
        # code that way. Confirm it's you.
        require_step_up(actor)
    if (role == Role.CLIENT) != (client is not None):
        raise ValidationError({"role": "Client invitations must name the client record."})
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": "Enter a valid email address."}) from None
    issued = issue_secret(INVITATION_PURPOSE)
    with transaction.atomic():
        invitation = Invitation.objects.create(
            tenant_id=actor.tenant_id,
            email=email,
            role=role,
            # By id: the client record is the clients app's, above this one.
            client_id=None if client is None else client.pk,
            prefix=issued.prefix,
            digest=issued.digest,
            invited_by=actor.membership,
            expires_at=timezone.now() + dt.timedelta(hours=settings.INVITATION_TTL_HOURS),
        )
        # The role, not the address: the trail names people by id.
        record(
            AuditAction.MEMBER_INVITE,
            actor=actor,
            target=invitation,
            client_id=invitation.client_id,
            detail={"role": str(role)},
        )
        link = public_url(reverse("invitation_open", args=[issued.prefix, issued.secret]))
        body = render_to_string(
            "tenancy/email/invitation.txt",
            {
                "business": actor.business,
                "inviter": actor.user,
                "role": role,
                "link": link,
                "hours": settings.INVITATION_TTL_HOURS,
            },
        )
        try:
            send_mail(
                f"{actor.business.name} invited you to Custodia",
                body,
                settings.DEFAULT_FROM_EMAIL,
                [email],
            )
        except (smtplib.SMTPException, OSError):
            logger.warning("invitation email could not be sent tenant=%s", actor.tenant_id)
            raise ValidationError(
                {"email": "The invitation email could not be sent. Try again later."}
            ) from None
    return invitation


def invitation_proof(secret: str) -> str:
    """What is kept of an opened link between pages: its digest, never the secret itself."""
    return digest_secret(INVITATION_PURPOSE, secret)


def open_invitation(prefix: str, proof: str) -> Invitation:
    """The live invitation a link names (by prefix and `invitation_proof` of its secret), or a
    ValidationError that says nothing more."""
    if not is_wellformed_prefix(prefix):
        raise ValidationError(INVALID_INVITATION)
    set_db_context(lookup=prefix)
    invitation = Invitation.objects.select_related("tenant").filter(prefix=prefix).first()
    if (
        invitation is None
        or not hmac.compare_digest(proof, invitation.digest)
        or invitation.accepted_at is not None
        or invitation.revoked_at is not None
        or invitation.expires_at <= timezone.now()
    ):
        raise ValidationError(INVALID_INVITATION)
    # Also here, so the page never offers to accept what acceptance would refuse.
    _ensure_sender_may_grant(invitation)
    return invitation


def do_accept_invitation(
    prefix: str, proof: str, *, user: User | None, full_name: str = "", password: str = ""
) -> Actor:
    """Join the inviting business; creates the login when the invitee has none yet.

    The invitation row stays locked until this commits, so a revocation, the sender's removal
    or a second acceptance of the same link either waits and then finds it spent, or comes first
    and makes this one refuse.
    """
    with transaction.atomic():
        invitation = open_invitation(prefix, proof)
        # Read with the link's context; the caller names it once acting for it, or for another.
        business = invitation.tenant
        if user is None:
            user = _create_invitee(invitation, full_name=full_name, password=password)
        elif user.email.lower() != invitation.email.lower():
            raise ValidationError("This invitation was sent to a different email address.")
        set_db_context(tenant_id=invitation.tenant_id, user_id=user.pk, lookup=prefix)
        refuse_operator_login(user)
        invitation = _lock_pending_invitation(invitation.pk)
        _ensure_sender_may_grant(invitation)
        try:
            with transaction.atomic():
                membership = Membership.objects.create(
                    tenant=business,
                    user=user,
                    role=invitation.role,
                    client_id=invitation.client_id,
                )
        except IntegrityError:
            raise ValidationError("You are already a member of this business.") from None
        invitation.accepted_at = timezone.now()
        # The address has done its work (finding the invitee); it is not kept (docs/keys.md).
        invitation.email = ""
        invitation.save(update_fields=["accepted_at", "email"])
        actor = new_member_actor(user, membership)
        with acting_as(actor):
            record(
                AuditAction.MEMBER_JOIN,
                actor=actor,
                target=membership,
                detail={"role": membership.role, "invitation": str(invitation.pk)},
            )
    return actor


def _create_invitee(invitation: Invitation, *, full_name: str, password: str) -> User:
    """The invitee's new login, its address verified by the emailed link."""
    from allauth.account.models import EmailAddress

    if User.objects.filter(email__iexact=invitation.email).exists():
        raise ValidationError(EXISTING_ACCOUNT)
    candidate = User(email=invitation.email, full_name=full_name.strip()[:120])
    validate_password(password, candidate)
    if not candidate.full_name:
        raise ValidationError({"full_name": "Tell us your name."})
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                invitation.email, password, full_name=candidate.full_name
            )
            # Opening the emailed link proves the address.
            EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    except IntegrityError:
        # The same address signed up meanwhile (the link submitted twice at once, say).
        raise ValidationError(EXISTING_ACCOUNT) from None
    return user


def _lock_pending_invitation(invitation_id: uuid.UUID) -> Invitation:
    """The invitation, locked for this transaction, if it is still pending; else the one
    message for every spent link. A revocation or acceptance committed while this waited for
    the lock is seen here."""
    invitation = (
        Invitation.objects.select_for_update()
        .filter(
            pk=invitation_id,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .first()
    )
    if invitation is None:
        raise ValidationError(INVALID_INVITATION)
    return invitation


def _ensure_sender_may_grant(invitation: Invitation) -> None:
    """An invitation grants only what its sender may still grant: they must still be an active
    member whose role may invite into the invitation's role."""
    sender = (
        None  # the sender's membership was deleted
        if invitation.invited_by_id is None
        else Membership.objects.filter(pk=invitation.invited_by_id, tenant_id=invitation.tenant_id)
        .values_list("role", "is_active")
        .first()
    )
    if sender is None or not sender[1] or not may_grant(Role(sender[0]), Role(invitation.role)):
        raise ValidationError(INVALID_INVITATION)


def do_revoke_invitation(invitation: Invitation, *, actor: Actor) -> Invitation:
    """A pending invitation stops working and its address is erased; an accepted one is refused
    (the access it gave is taken back by deactivating the member)."""
    require_active(actor)
    actor.require(Permission.STAFF_MEMBER_INVITE)
    ensure_in_business(actor, invitation)
    with transaction.atomic():
        # Locked: an acceptance under way commits first (and this refuses), or waits and then
        # finds it revoked.
        locked = (
            Invitation.objects.select_for_update()
            .filter(pk=invitation.pk, tenant_id=actor.tenant_id)
            .first()
        )
        if locked is None:
            raise Http404("No such invitation.")
        if locked.accepted_at is not None:
            raise ValidationError(ALREADY_ACCEPTED)
        if locked.revoked_at is None:
            _revoke(locked, actor=actor)
        # Already revoked (a second click): nothing changes, nothing more to record.
    return locked


def _revoke(invitation: Invitation, *, actor: Actor, reason: str = "") -> None:
    """Revoke a locked, pending invitation and record it."""
    invitation.revoked_at = timezone.now()
    invitation.email = ""  # no longer needed to find anyone (docs/keys.md)
    invitation.save(update_fields=["revoked_at", "email"])
    record(
        AuditAction.INVITATION_REVOKE,
        actor=actor,
        target=invitation,
        detail={"reason": reason} if reason else None,
    )


def _revoke_invitations_sent_by(member: Membership, *, actor: Actor, reason: str) -> None:
    """Revoke the member's pending invitations that they can no longer grant (all of them once
    they are deactivated): an invitation must not outlive its sender's authority."""
    pending = (
        Invitation.objects.select_for_update()
        .filter(
            tenant_id=member.tenant_id,
            invited_by=member,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
        )
        .order_by("pk")  # one lock order for every writer
    )
    for invitation in pending:
        if not member.is_active or not may_grant(Role(member.role), Role(invitation.role)):
            _revoke(invitation, actor=actor, reason=reason)


def do_erase_spent_invitation_addresses(*, using: str) -> int:
    """Erase the addresses of accepted, revoked and expired invitations; how many were erased.

    Acceptance and revocation erase theirs at once; this catches the expired ones. It runs
    daily as the operator (`custodia audit maintain`) on the connection `using`, whose policies
    (tenancy/0004) let it see spent invitations of every business and only blank their address.
    """
    spent = (
        Q(accepted_at__isnull=False)
        | Q(revoked_at__isnull=False)
        | Q(expires_at__lte=timezone.now())
    )
    with transaction.atomic(using=using):
        return Invitation.objects.using(using).filter(spent).exclude(email="").update(email="")


def do_change_role(member: Membership, role: Role, *, actor: Actor) -> Membership:
    """Owners change the role of people working in their business."""
    require_active(actor)
    actor.require(Permission.STAFF_ROLE_WRITE)
    ensure_in_business(actor, member)
    require_step_up(actor)
    if member.role == Role.CLIENT or role == Role.CLIENT:
        raise ValidationError({"role": "Client logins are managed from the client's record."})
    with transaction.atomic():
        if member.role == Role.OWNER and role != Role.OWNER:
            _ensure_another_owner(member)
        detail = {"from": member.role, "to": str(role)}
        member.role = role
        # A grant of cards is to a manager: any change of role ends it.
        member.cards_granted = False
        member.save(update_fields=["role", "cards_granted"])
        record(AuditAction.MEMBER_ROLE_CHANGE, actor=actor, target=member, detail=detail)
        _revoke_invitations_sent_by(member, actor=actor, reason="sender's role changed")
        _end_member_sessions(member)
    return member


def do_grant_cards(member: Membership, granted: bool, *, actor: Actor) -> Membership:
    """An owner lets a manager take card payments (add cards, charge, refund), or stops it."""
    require_active(actor)
    actor.require(Permission.STAFF_ROLE_WRITE)
    ensure_in_business(actor, member)
    require_step_up(actor)
    if member.role != Role.MANAGER:
        raise ValidationError("Cards are granted to managers only: owners have them, others never.")
    with transaction.atomic():
        member.cards_granted = granted
        member.save(update_fields=["cards_granted"])
        record(
            AuditAction.MEMBER_CARDS_GRANT,
            actor=actor,
            target=member,
            detail={"granted": granted},
        )
    return member


def do_deactivate_member(member: Membership, *, actor: Actor) -> Membership:
    """The member loses access to this business at their next request."""
    require_active(actor)
    actor.require(Permission.STAFF_MEMBER_INVITE)
    ensure_in_business(actor, member)
    require_step_up(actor)
    if member.pk == actor.membership.pk:
        raise ValidationError("You cannot deactivate yourself.")
    if member.role in MANAGING_ROLES and actor.role != Role.OWNER:
        raise PermissionDenied("Only an owner can deactivate an owner or manager.")
    with transaction.atomic():
        if member.role == Role.OWNER:
            _ensure_another_owner(member)
        member.is_active = False
        member.save(update_fields=["is_active"])
        record(AuditAction.MEMBER_DEACTIVATE, actor=actor, target=member)
        _revoke_invitations_sent_by(member, actor=actor, reason="sender deactivated")
        _end_member_sessions(member)
    return member


SESSION_IDLE_MINUTES_RANGE = (5, 120)


def do_update_security_policy(
    business: Business,
    *,
    session_idle_minutes: int,
    mfa_required_owners: bool,
    mfa_required_managers: bool,
    mfa_required_staff: bool,
    actor: Actor,
) -> Business:
    """An owner sets how long idle sessions last and which roles must have a second factor."""
    require_active(actor)
    actor.require(Permission.BUSINESS_SECURITY_WRITE)
    require_step_up(actor)
    if business.pk != actor.tenant_id:
        raise Http404("No such business.")
    low, high = SESSION_IDLE_MINUTES_RANGE
    if isinstance(session_idle_minutes, bool) or not isinstance(session_idle_minutes, int):
        raise ValidationError({"session_idle_minutes": "Enter a whole number of minutes."})
    if not low <= session_idle_minutes <= high:
        raise ValidationError(
            {"session_idle_minutes": f"Sessions end after {low} to {high} idle minutes."}
        )
    with transaction.atomic():
        business.session_idle_minutes = session_idle_minutes
        business.mfa_required_owners = bool(mfa_required_owners)
        business.mfa_required_managers = bool(mfa_required_managers)
        business.mfa_required_staff = bool(mfa_required_staff)
        fields = [
            "session_idle_minutes",
            "mfa_required_owners",
            "mfa_required_managers",
            "mfa_required_staff",
        ]
        business.save(update_fields=fields)
        # Settings, not customer data: the new values are part of the record.
        record(
            AuditAction.SECURITY_POLICY_UPDATE,
            actor=actor,
            target=business,
            detail={field: getattr(business, field) for field in fields},
        )
    logger.info("security policy updated tenant=%s", business.pk)
    return business


def do_update_business_profile(
    business: Business,
    *,
    name: str,
    time_zone: str,
    currency: str,
    opening_hours: Sequence[DayHours],
    access_window_before_hours: int,
    access_window_after_hours: int,
    reminder_hours_before: int,
    actor: Actor,
) -> list[str]:
    """An owner sets the business's name, time zone, currency, opening hours, the staff's access
    window and when clients are reminded of a visit; returns the names of the fields changed."""
    require_active(actor)
    actor.require(Permission.BUSINESS_SETTINGS_WRITE)
    if business.pk != actor.tenant_id:
        raise Http404("No such business.")
    name = " ".join(str(name or "").split())[:120]  # one line: it goes into mail subjects
    if not name:
        raise ValidationError({"name": "Give the business a name."})
    try:
        time_zone = validate_time_zone(time_zone)
    except ValidationError as exc:
        raise ValidationError({"time_zone": exc.messages}) from None
    what = "Staff see door codes"
    values = {
        "name": name,
        "time_zone": time_zone,
        "currency": check_currency_code(currency),
        "opening_hours": format_opening_hours(opening_hours),
        "access_window_before_hours": check_hours(
            "access_window_before_hours", access_window_before_hours, ACCESS_WINDOW_MAX_HOURS, what
        ),
        "access_window_after_hours": check_hours(
            "access_window_after_hours", access_window_after_hours, ACCESS_WINDOW_MAX_HOURS, what
        ),
        "reminder_hours_before": check_hours(
            "reminder_hours_before", reminder_hours_before, REMINDER_MAX_HOURS, "Reminders"
        ),
    }
    with transaction.atomic():
        locked = Business.objects.select_for_update().get(pk=business.pk)
        changed = [field for field, value in values.items() if getattr(locked, field) != value]
        for field in changed:
            setattr(locked, field, values[field])
            setattr(business, field, values[field])
        if changed:
            locked.save(update_fields=changed)
            # Settings, not customer data: which changed, and the new values but the name.
            record(
                AuditAction.BUSINESS_PROFILE_UPDATE,
                actor=actor,
                target=business,
                detail={
                    "changed": changed,
                    **{field: values[field] for field in changed if field != "name"},
                },
            )
    logger.info("business profile updated tenant=%s changed=%s", business.pk, ",".join(changed))
    return changed


def _end_member_sessions(member: Membership) -> None:
    """A privilege change or removal ends the member's sessions acting for this business.

    An owner changing their own role keeps the session doing it: that can only lower their
    privilege, and they have just re-authenticated for it (which gave the session a new id).
    """
    end_sessions(member.user, keep=current_session_key(member.user), business_id=member.tenant_id)


def _ensure_another_owner(member: Membership) -> None:
    others = Membership.objects.filter(
        tenant_id=member.tenant_id, role=Role.OWNER, is_active=True
    ).exclude(pk=member.pk)
    if not others.exists():
        raise ValidationError("A business needs at least one active owner.")
