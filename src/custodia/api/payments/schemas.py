"""API output of passes and invoices (read-only for now). Amounts are integers in the minor
units of `currency` (ISO 4217): 1250 with USD is $12.50."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from ninja import Schema

from custodia.api.pagination import PageOut

InvoiceStatusName = Literal["draft", "open", "paid", "void"]


class PassOut(Schema):
    id: uuid.UUID
    client_id: uuid.UUID
    pass_type_id: uuid.UUID | None
    name: str
    credits_total: int
    credits_left: int
    price_minor: int
    currency: str
    starts_at: dt.datetime
    expires_at: dt.datetime
    status: str
    created_at: dt.datetime


class CreditUseOut(Schema):
    id: uuid.UUID
    visit_id: uuid.UUID | None
    change: int
    reason: str
    created_at: dt.datetime


class PassDetailOut(PassOut):
    """A pass with its history of uses (-1) and returns (+1), oldest first."""

    uses: list[CreditUseOut]


class PassPageOut(PageOut):
    """A page of passes."""

    items: list[PassOut]


class InvoiceOut(Schema):
    id: uuid.UUID
    client_id: uuid.UUID
    number: int | None
    status: str
    currency: str
    created_at: dt.datetime
    issued_at: dt.datetime | None
    paid_at: dt.datetime | None
    voided_at: dt.datetime | None


class InvoiceLineOut(Schema):
    id: uuid.UUID
    description: str
    quantity: int
    unit_price_minor: int
    amount_minor: int
    visit_id: uuid.UUID | None
    client_pass_id: uuid.UUID | None
    membership_id: uuid.UUID | None


class PaymentOut(Schema):
    id: uuid.UUID
    amount_minor: int
    currency: str
    method: str
    status: str
    reference: str
    created_at: dt.datetime


class InvoiceDetailOut(InvoiceOut):
    """An invoice with its lines, payments and amounts (computed from them)."""

    lines: list[InvoiceLineOut]
    payments: list[PaymentOut]
    total_minor: int
    paid_minor: int
    due_minor: int


class InvoicePageOut(PageOut):
    """A page of invoices."""

    items: list[InvoiceOut]


class InvoiceFilters(Schema):
    """Invoices of one status, of one client, or both."""

    status: InvoiceStatusName | None = None
    client_id: uuid.UUID | None = None


class PassFilters(Schema):
    """Passes of one client."""

    client_id: uuid.UUID | None = None
