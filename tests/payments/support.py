"""Payments test data on top of the tenant matrix: a pass type and plan per business, visits."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from custodia.core.actor import Actor
from custodia.payments.actions.catalog import do_create_pass_type, do_create_plan
from custodia.payments.models import MembershipPlan, PassType
from custodia.scheduling.actions import do_create_visit, do_update_visit
from custodia.scheduling.models import Visit
from tests.acting import act
from tests.factories import Business, TenantMatrix


@dataclass
class Catalog:
    ten: PassType  # 10 credits, 200.00, 90 days
    plan: MembershipPlan  # 80.00 a month, 4 credits


def catalog(business: Business) -> Catalog:
    owner = business.owner
    act(owner)
    ten = do_create_pass_type(
        actor=owner, name="Ten walks", credits=10, price_minor=20000, validity_days=90
    )
    plan = do_create_plan(
        actor=owner, name="Monthly", monthly_price_minor=8000, credits_per_month=4
    )
    return Catalog(ten, plan)


def catalogs(matrix: TenantMatrix) -> tuple[Catalog, Catalog]:
    return catalog(matrix.a), catalog(matrix.b)


def new_visit(business: Business, *, hours: float = -3) -> Visit:
    """Another visit of the business's client by its staff member (`hours` from now)."""
    act(business.owner)
    return do_create_visit(
        actor=business.owner,
        client=business.client,
        staff=business.staff.membership,
        service=business.service,
        starts_at=timezone.now() + dt.timedelta(hours=hours),
    )


def complete(visit: Visit, actor: Actor) -> Visit:
    act(actor)
    return do_update_visit(visit, actor=actor, status="completed")


def cancel(visit: Visit, actor: Actor) -> Visit:
    act(actor)
    return do_update_visit(visit, actor=actor, status="cancelled")
