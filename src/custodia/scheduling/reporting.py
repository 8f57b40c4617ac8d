"""Writes of what staff record at a visit besides the report: check-in and check-out times and
photos (scheduling/images.py prepares them; they are stored sealed, docs/visits.md)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from custodia.core.actor import Actor, ensure_in_business, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.permissions import Permission
from custodia.scheduling.images import prepare_photo
from custodia.scheduling.models import Visit, VisitPhoto, VisitStatus

MAX_PHOTOS_PER_VISIT = 20


def _require_reporter(actor: Actor, visit: Visit) -> None:
    """Managers report on any visit; staff on the visits they are assigned to."""
    if actor.can(Permission.VISITS_WRITE):
        return
    if actor.can(Permission.VISITS_REPORT) and visit.staff_id == actor.membership.pk:
        return
    raise PermissionDenied("You cannot report on this visit.")


def _require_assigned(actor: Actor, visit: Visit) -> None:
    """Check-in and check-out are the visiting staff member's own record."""
    if not actor.can(Permission.VISITS_REPORT) or visit.staff_id != actor.membership.pk:
        raise PermissionDenied("Only the staff member making the visit checks in and out.")
    if visit.status != VisitStatus.SCHEDULED:
        raise ValidationError("Only a scheduled visit can be checked in or out.")


def do_check_in_visit(visit: Visit, *, actor: Actor) -> Visit:
    """The assigned staff member arrives: the time is recorded, once."""
    require_active(actor)
    ensure_in_business(actor, visit)
    _require_assigned(actor, visit)
    if visit.checked_in_at is not None:
        raise ValidationError("You checked in at this visit already.")
    with transaction.atomic():
        visit.checked_in_at = timezone.now()
        visit.save(update_fields=["checked_in_at", "updated_at"])
        record(AuditAction.VISIT_CHECK_IN, actor=actor, target=visit)
    return visit


def do_check_out_visit(visit: Visit, *, actor: Actor) -> Visit:
    """The assigned staff member leaves, after checking in: the time is recorded, once."""
    require_active(actor)
    ensure_in_business(actor, visit)
    _require_assigned(actor, visit)
    if visit.checked_in_at is None:
        raise ValidationError("Check in before you check out.")
    if visit.checked_out_at is not None:
        raise ValidationError("You checked out of this visit already.")
    with transaction.atomic():
        visit.checked_out_at = timezone.now()
        visit.save(update_fields=["checked_out_at", "updated_at"])
        record(AuditAction.VISIT_CHECK_OUT, actor=actor, target=visit)
    return visit


def do_add_visit_photo(visit: Visit, data: bytes, *, actor: Actor) -> VisitPhoto:
    """Attach a photo to a visit: re-encoded without metadata, sealed with its thumbnail."""
    require_active(actor)
    ensure_in_business(actor, visit)
    _require_reporter(actor, visit)
    if visit.status in (VisitStatus.CANCELLED, VisitStatus.REQUESTED):
        raise ValidationError("Photos belong to scheduled or completed visits.")
    # Decoding and encoding take a while: done before the transaction takes any lock.
    prepared = prepare_photo(data)
    with transaction.atomic():
        # The visit's row, locked: two uploads at once cannot both pass the limit.
        Visit.objects.select_for_update().filter(tenant_id=actor.tenant_id, pk=visit.pk).only(
            "id"
        ).first()
        if VisitPhoto.objects.filter(tenant_id=actor.tenant_id, visit=visit).count() >= (
            MAX_PHOTOS_PER_VISIT
        ):
            raise ValidationError({"photo": f"A visit has at most {MAX_PHOTOS_PER_VISIT} photos."})
        photo = VisitPhoto(
            tenant_id=actor.tenant_id,
            visit=visit,
            image=prepared.image,
            thumbnail=prepared.thumbnail,
            content_type=prepared.content_type,
            size=len(prepared.image),
            width=prepared.width,
            height=prepared.height,
            created_by=actor.membership,
        )
        photo.save(force_insert=True)
        record(
            AuditAction.VISIT_PHOTO_ADD,
            actor=actor,
            target=photo,
            client_id=visit.client_id,
            detail={"visit": str(visit.pk), "bytes": photo.size},
        )
    return photo


def do_delete_visit_photo(photo: VisitPhoto, *, actor: Actor) -> None:
    """Remove a photo: its uploader (still reporting on the visit) or a manager."""
    require_active(actor)
    ensure_in_business(actor, photo)
    visit = photo.visit
    if not actor.can(Permission.VISITS_WRITE):
        _require_reporter(actor, visit)
        if photo.created_by_id != actor.membership.pk:
            raise PermissionDenied("Only who took a photo, or a manager, deletes it.")
    with transaction.atomic():
        record(
            AuditAction.VISIT_PHOTO_DELETE,
            actor=actor,
            target=photo,
            client_id=visit.client_id,
            detail={"visit": str(visit.pk)},
        )
        VisitPhoto.objects.filter(tenant_id=actor.tenant_id, pk=photo.pk).delete()
