"""What the business sells (pass types, membership plans) and its payment settings."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404

from custodia.core.actor import Actor, ensure_in_business, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.permissions import Permission
from custodia.payments.models import (
    MAX_CREDITS,
    MAX_PRICE,
    MAX_VALIDITY_DAYS,
    NAME_LENGTH,
    MembershipPlan,
    PassType,
)
from custodia.payments.money import check_currency
from custodia.tenancy.models import Business

PRICE_ERROR = f"Between 0 and {MAX_PRICE:,} (in the currency's smallest unit)."


def _check_name(name: object, errors: dict[str, str]) -> None:
    if not isinstance(name, str) or not name.strip():
        errors["name"] = "Give it a name."
    elif len(name.strip()) > NAME_LENGTH:
        errors["name"] = f"At most {NAME_LENGTH} characters."


def _check_int(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _check_pass_type(fields: dict[str, Any]) -> None:
    errors: dict[str, str] = {}
    _check_name(fields["name"], errors)
    if not _check_int(fields["credits"], 1, MAX_CREDITS):
        errors["credits"] = f"Between 1 and {MAX_CREDITS} credits."
    if not _check_int(fields["price_minor"], 0, MAX_PRICE):
        errors["price_minor"] = PRICE_ERROR
    if not _check_int(fields["validity_days"], 1, MAX_VALIDITY_DAYS):
        errors["validity_days"] = f"Between 1 and {MAX_VALIDITY_DAYS} days."
    if errors:
        raise ValidationError(errors)


def _check_plan(fields: dict[str, Any]) -> None:
    errors: dict[str, str] = {}
    _check_name(fields["name"], errors)
    if not _check_int(fields["monthly_price_minor"], 0, MAX_PRICE):
        errors["monthly_price_minor"] = PRICE_ERROR
    if not _check_int(fields["credits_per_month"], 0, MAX_CREDITS):
        errors["credits_per_month"] = f"Between 0 and {MAX_CREDITS} credits."
    if errors:
        raise ValidationError(errors)


def do_create_pass_type(
    *, actor: Actor, name: str, credits: int, price_minor: int, validity_days: int
) -> PassType:
    """A punch pass the business sells."""
    require_active(actor)
    actor.require(Permission.PAYMENTS_CATALOG_WRITE)
    fields = {
        "name": name,
        "credits": credits,
        "price_minor": price_minor,
        "validity_days": validity_days,
    }
    _check_pass_type(fields)
    with transaction.atomic():
        pass_type = PassType.objects.create(
            tenant_id=actor.tenant_id, **{**fields, "name": name.strip()}
        )
        record(AuditAction.PASS_TYPE_CREATE, actor=actor, target=pass_type)
    return pass_type


def do_update_pass_type(pass_type: PassType, *, actor: Actor, **changes: Any) -> PassType:
    """Rename, re-price or deactivate (`is_active=False`) a pass type; passes already sold keep
    what they were sold with."""
    require_active(actor)
    actor.require(Permission.PAYMENTS_CATALOG_WRITE)
    ensure_in_business(actor, pass_type)
    editable = ("name", "credits", "price_minor", "validity_days")
    return _update(
        pass_type, actor, changes, editable, _check_pass_type, AuditAction.PASS_TYPE_UPDATE
    )


def do_create_plan(
    *, actor: Actor, name: str, monthly_price_minor: int, credits_per_month: int
) -> MembershipPlan:
    """A monthly membership the business sells."""
    require_active(actor)
    actor.require(Permission.PAYMENTS_CATALOG_WRITE)
    fields = {
        "name": name,
        "monthly_price_minor": monthly_price_minor,
        "credits_per_month": credits_per_month,
    }
    _check_plan(fields)
    with transaction.atomic():
        plan = MembershipPlan.objects.create(
            tenant_id=actor.tenant_id, **{**fields, "name": name.strip()}
        )
        record(AuditAction.PLAN_CREATE, actor=actor, target=plan)
    return plan


def do_update_plan(plan: MembershipPlan, *, actor: Actor, **changes: Any) -> MembershipPlan:
    """Rename, re-price or deactivate (`is_active=False`) a plan; current members keep theirs."""
    require_active(actor)
    actor.require(Permission.PAYMENTS_CATALOG_WRITE)
    ensure_in_business(actor, plan)
    editable = ("name", "monthly_price_minor", "credits_per_month")
    return _update(plan, actor, changes, editable, _check_plan, AuditAction.PLAN_UPDATE)


def _update(
    row: Any,
    actor: Actor,
    changes: dict[str, Any],
    editable: tuple[str, ...],
    check: Any,
    action: AuditAction,
) -> Any:
    unknown = set(changes) - {*editable, "is_active"}
    if unknown:
        raise ValidationError({field: "Unknown field." for field in sorted(unknown)})
    if "is_active" in changes and not isinstance(changes["is_active"], bool):
        raise ValidationError({"is_active": "true or false."})
    check({field: changes.get(field, getattr(row, field)) for field in editable})
    with transaction.atomic():
        changed = []
        for field, value in changes.items():
            value = value.strip() if isinstance(value, str) else value
            if getattr(row, field) != value:
                changed.append(field)
            setattr(row, field, value)
        row.save(update_fields=list(changes))
        record(action, actor=actor, target=row, detail={"fields": sorted(changed)})
    return row


def do_update_payment_settings(
    business: Business, *, actor: Actor, currency: str, credit_back_on_cancel: bool
) -> Business:
    """The business's currency (for what is sold and invoiced from now on) and whether a
    cancelled visit gives its pass credit back."""
    require_active(actor)
    actor.require(Permission.BUSINESS_SETTINGS_WRITE)
    if business.pk != actor.tenant_id:
        raise Http404("No such business.")
    code = check_currency(currency)
    with transaction.atomic():
        changed = sorted(
            field
            for field, value in (
                ("currency", code),
                ("credit_back_on_cancel", credit_back_on_cancel),
            )
            if getattr(business, field) != value
        )
        business.currency = code
        business.credit_back_on_cancel = bool(credit_back_on_cancel)
        business.save(update_fields=["currency", "credit_back_on_cancel"])
        record(
            AuditAction.PAYMENT_SETTINGS_UPDATE,
            actor=actor,
            target=business,
            detail={"fields": changed},
        )
    return business
