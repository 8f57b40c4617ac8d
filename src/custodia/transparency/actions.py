"""An owner publishes or withdraws the business's own security page (audited; no step-up:
the page shows only figures the business chose to make public, never a client's data)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from custodia.core.actor import Actor, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.permissions import Permission
from custodia.transparency.models import Publication


def do_publish_security_page(*, actor: Actor) -> Publication:
    """Publish `/b/<slug>/security/` for the actor's business (once: publishing again keeps it)."""
    require_active(actor)
    actor.require(Permission.BUSINESS_SECURITY_WRITE)
    with transaction.atomic():
        existing = Publication.objects.filter(tenant_id=actor.tenant_id).first()
        if existing is not None:
            return existing
        publication = Publication.objects.create(
            tenant_id=actor.tenant_id, published_by_id=actor.membership.pk
        )
        record(
            AuditAction.TRANSPARENCY_PUBLISH,
            actor=actor,
            target_type="business",
            target_id=actor.tenant_id,
        )
    return publication


def do_unpublish_security_page(*, actor: Actor) -> None:
    """Withdraw the business's page: from now on its address answers 404."""
    require_active(actor)
    actor.require(Permission.BUSINESS_SECURITY_WRITE)
    with transaction.atomic():
        deleted, _ = Publication.objects.filter(tenant_id=actor.tenant_id).delete()
        if not deleted:
            raise ValidationError("The page is not published.")
        record(
            AuditAction.TRANSPARENCY_UNPUBLISH,
            actor=actor,
            target_type="business",
            target_id=actor.tenant_id,
        )
