"""Read-only API of passes and invoices: thin doors onto payments/access.py (which records the
reads). Writes, and anything about cards, are not offered to tokens."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router

from custodia.api.auth import actor_of
from custodia.api.pagination import CURSOR_ERROR, CursorParams
from custodia.api.payments.schemas import (
    InvoiceDetailOut,
    InvoiceFilters,
    InvoicePageOut,
    PassDetailOut,
    PassFilters,
    PassPageOut,
)
from custodia.payments import access
from custodia.payments.models import ClientPass, Invoice, InvoiceStatus
from custodia.tenancy.paging import Page

passes_router = Router(tags=["passes"])
invoices_router = Router(tags=["invoices"])


@passes_router.get("", response=PassPageOut, openapi_extra=CURSOR_ERROR)
def list_passes(
    request: HttpRequest, filters: Query[PassFilters], paging: Query[CursorParams]
) -> Page[ClientPass]:
    """Passes you may see (a client: their own), oldest first, a page at a time."""
    return access.page_of_passes(
        actor_of(request), client_id=filters.client_id, cursor=paging.cursor, size=paging.limit
    )


@passes_router.get("/{pass_id}", response=PassDetailOut)
def get_pass(request: HttpRequest, pass_id: str) -> dict[str, Any]:
    """One pass with its history of credit uses."""
    view = access.view_pass(actor_of(request), pass_id)
    return {**_fields(view.client_pass), "uses": view.uses}


@invoices_router.get("", response=InvoicePageOut, openapi_extra=CURSOR_ERROR)
def list_invoices(
    request: HttpRequest, filters: Query[InvoiceFilters], paging: Query[CursorParams]
) -> Page[Invoice]:
    """Invoices you may see (a client: their own issued ones), oldest first, optionally of one
    status or client, a page at a time."""
    return access.page_of_invoices(
        actor_of(request),
        status=InvoiceStatus(filters.status) if filters.status else None,
        client_id=filters.client_id,
        cursor=paging.cursor,
        size=paging.limit,
    )


@invoices_router.get("/{invoice_id}", response=InvoiceDetailOut)
def get_invoice(request: HttpRequest, invoice_id: str) -> dict[str, Any]:
    """One invoice with its lines, payments, total, paid and due amounts (minor units)."""
    view = access.view_invoice(actor_of(request), invoice_id)
    return {
        **_fields(view.invoice),
        "lines": view.lines,
        "payments": view.payments,
        "total_minor": view.totals.total,
        "paid_minor": view.totals.paid,
        "due_minor": view.totals.due,
    }


def _fields(row: Any) -> dict[str, Any]:
    return {field.attname: getattr(row, field.attname) for field in row._meta.concrete_fields}
