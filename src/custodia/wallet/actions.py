"""Writes of wallet passes: issuing a client's pass or membership to a wallet, devices
registering for its updates and unregistering, the push task forgetting the devices that
Apple's push service says are gone. Each in one transaction with its audit event."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone

from custodia.core.actor import Actor, ensure_in_business, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.permissions import Permission, Role
from custodia.payments.models import ClientPass
from custodia.tenancy.actors import SystemActor
from custodia.wallet.content import Source
from custodia.wallet.models import (
    DEVICE_ID_LENGTH,
    PUSH_TOKEN_LENGTH,
    WalletPass,
    WalletRegistration,
)
from custodia.wallet.tokens import derive_token, new_serial, token_digest, token_matching

# Apple's identifiers are hex; a little wider here, never anything that needs escaping.
DEVICE_ID = re.compile(rf"[A-Za-z0-9._-]{{1,{DEVICE_ID_LENGTH}}}")
PUSH_TOKEN = re.compile(rf"[A-Za-z0-9._-]{{1,{PUSH_TOKEN_LENGTH}}}")
# The system actor's task that sends pushes and forgets the tokens APNs says are gone.
PUSH_TASK = "wallet-push"


@dataclass(frozen=True)
class IssuedWalletPass:
    """A wallet pass and the token its file carries (derived, never stored)."""

    wallet_pass: WalletPass
    token: str


def _require_holder(actor: Actor, client_id: object) -> None:
    # Only the pass's own client (a signed-in client, or a wallet acting as them) holds it.
    actor.require(Permission.PAYMENTS_PASS_READ)
    if actor.role != Role.CLIENT or actor.membership.client_id != client_id:
        raise Http404("No such pass.")


def _source_field(source: Source) -> str:
    # The wallet pass's foreign key to its source (exactly one is set).
    return "client_pass" if isinstance(source, ClientPass) else "membership"


def do_issue_wallet_pass(source: Source, *, actor: Actor) -> IssuedWalletPass:
    """The wallet pass of a client's pass or membership, made at its first download (a random
    serial, a derived token stored as a digest); its token issued anew when the key it was
    derived under is retired."""
    require_active(actor)
    ensure_in_business(actor, source)
    _require_holder(actor, source.client_id)
    now = timezone.now()
    field = _source_field(source)
    of_source = {"tenant_id": actor.tenant_id, f"{field}_id": source.pk}
    with transaction.atomic():
        existing = WalletPass.objects.select_for_update().filter(**of_source).first()
        if existing is not None:
            token = token_matching(existing.serial_number, existing.auth_digest)
            if token is not None:
                return IssuedWalletPass(existing, token)
            token = derive_token(existing.serial_number)
            existing.auth_digest = token_digest(token)
            existing.updated_at = now
            existing.save(update_fields=["auth_digest", "updated_at"])
            record(AuditAction.WALLET_PASS_ISSUE, actor=actor, target=existing)
            return IssuedWalletPass(existing, token)
        serial = new_serial()
        token = derive_token(serial)
        try:
            with transaction.atomic():
                made = WalletPass.objects.create(
                    **of_source,
                    client_id=source.client_id,
                    serial_number=serial,
                    auth_digest=token_digest(token),
                    updated_at=now,
                )
        except IntegrityError:
            # Issued by a download at the same moment: that one stands.
            raced = WalletPass.objects.get(**of_source)
            matching = token_matching(raced.serial_number, raced.auth_digest)
            if matching is None:
                raise
            return IssuedWalletPass(raced, matching)
        record(
            AuditAction.WALLET_PASS_ISSUE,
            actor=actor,
            target=made,
            detail={"pass" if field == "client_pass" else field: str(source.pk)},
        )
    return IssuedWalletPass(made, token)


def _valid_device(device_library_id: str) -> None:
    if not DEVICE_ID.fullmatch(device_library_id):
        raise ValidationError("The device library identifier is not valid.")


def do_register_device(
    wallet_pass: WalletPass, device_library_id: str, push_token: str, *, actor: Actor
) -> bool:
    """A device asks for the pass's updates; True if newly registered (an existing
    registration keeps its latest push token)."""
    require_active(actor)
    ensure_in_business(actor, wallet_pass)
    _require_holder(actor, wallet_pass.client_id)
    _valid_device(device_library_id)
    if not PUSH_TOKEN.fullmatch(push_token):
        raise ValidationError("The push token is not valid.")
    with transaction.atomic():
        existing = (
            WalletRegistration.objects.select_for_update()
            .filter(
                tenant_id=actor.tenant_id,
                wallet_pass_id=wallet_pass.pk,
                device_library_id=device_library_id,
            )
            .first()
        )
        if existing is not None:
            if existing.push_token != push_token:
                existing.push_token = push_token
                existing.save(update_fields=["push_token"])
            return False
        WalletRegistration.objects.create(
            tenant_id=actor.tenant_id,
            wallet_pass=wallet_pass,
            client_id=wallet_pass.client_id,
            device_library_id=device_library_id,
            push_token=push_token,
        )
        # The device's identifiers are not recorded: they name a person's phone.
        record(AuditAction.WALLET_DEVICE_REGISTER, actor=actor, target=wallet_pass)
    return True


def do_unregister_device(wallet_pass: WalletPass, device_library_id: str, *, actor: Actor) -> bool:
    """A device no longer wants the pass's updates (the pass was removed from it); True if it
    was registered."""
    require_active(actor)
    ensure_in_business(actor, wallet_pass)
    _require_holder(actor, wallet_pass.client_id)
    _valid_device(device_library_id)
    with transaction.atomic():
        deleted, _ = WalletRegistration.objects.filter(
            tenant_id=actor.tenant_id,
            wallet_pass_id=wallet_pass.pk,
            device_library_id=device_library_id,
        ).delete()
        if deleted:
            record(AuditAction.WALLET_DEVICE_UNREGISTER, actor=actor, target=wallet_pass)
    return bool(deleted)


def do_forget_push_tokens(push_tokens: list[str], *, actor: Actor) -> int:
    """Remove this business's registrations of push tokens that Apple's push service says are
    gone for good (410, or 400 BadDeviceToken: wallet/push.py); the number removed. Only the
    wallet's own push task acts so (its system actor, one business): a device that still has
    the pass registers again on its own."""
    require_active(actor)
    if not isinstance(actor, SystemActor) or actor.task != PUSH_TASK:
        raise PermissionDenied("Only the wallet's push task forgets push tokens.")
    with transaction.atomic():
        gone = list(
            WalletRegistration.objects.select_for_update(of=("self",))
            .filter(tenant_id=actor.tenant_id, push_token__in=push_tokens)
            .select_related("wallet_pass")
        )
        for registration in gone:
            registration.delete()
            # As a device's own unregistering: its identifiers and token are not recorded.
            record(
                AuditAction.WALLET_DEVICE_UNREGISTER,
                actor=actor,
                target=registration.wallet_pass,
                detail={"reason": "push service: device gone"},
            )
    return len(gone)
