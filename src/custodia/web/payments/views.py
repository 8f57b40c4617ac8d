"""Payments pages: the catalog and settings, a client's passes, passes, invoices (draft editing,
issuing, voiding, payments) and the printable invoice; clients see their own passes and invoices.

Thin doors: reads through payments/access.py (which records them), writes through its actions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from custodia.clients.access import access_client_by_id
from custodia.core.actor import Actor
from custodia.core.permissions import Permission, Role
from custodia.payments import access
from custodia.payments.actions.autopay import do_start_membership_with_autopay
from custodia.payments.actions.catalog import (
    do_create_pass_type,
    do_create_plan,
    do_update_pass_type,
    do_update_payment_settings,
    do_update_plan,
)
from custodia.payments.actions.invoices import (
    do_add_invoice_line,
    do_create_invoice,
    do_issue_invoice,
    do_record_payment,
    do_remove_invoice_line,
    do_void_invoice,
)
from custodia.payments.actions.passes import (
    do_cancel_membership,
    do_sell_pass,
    do_start_membership,
    do_void_pass,
)
from custodia.payments.models import InvoiceStatus
from custodia.payments.money import from_minor
from custodia.tenancy.models import Business
from custodia.tenancy.paging import InvalidCursor, Page
from custodia.tenancy.reads import Intent
from custodia.web.decorators import member_required
from custodia.web.forms import form_action
from custodia.web.payments.forms import (
    AMOUNT_FIELDS,
    CursorForm,
    InvoiceFilterForm,
    InvoiceLineForm,
    PassTypeForm,
    PaymentForm,
    PaymentSettingsForm,
    PlanForm,
    SellPassForm,
    StartMembershipForm,
)

FORM_METHODS = ["GET", "HEAD", "POST"]
M = TypeVar("M", bound=Model)


def _currency(actor: Actor) -> str:
    return str(actor.business.currency)


def _page(form: CursorForm, fetch: Callable[[str | None], Page[M]]) -> tuple[Page[M], bool]:
    """The page the form's cursor names, and whether the form was valid; a cursor this list did
    not issue (a link edited by hand, or kept past a change of the secret key) gets the first
    page and an error on the form."""
    valid = form.is_valid()
    cursor = (form.cleaned_data.get("cursor") if valid else None) or None
    try:
        return fetch(cursor), valid
    except InvalidCursor:
        form.add_error("cursor", "That page link is not valid: here is the first page.")
        return fetch(None), False


def _refused(request: HttpRequest, exc: ValidationError) -> None:
    messages.error(request, " ".join(exc.messages))


def _act(request: HttpRequest, action: Callable[[], Any], success: str) -> None:
    """Run an action that takes no form: its refusal becomes an error message."""
    try:
        action()
    except ValidationError as exc:
        _refused(request, exc)
    else:
        messages.success(request, success)


# --- The catalog and settings ------------------------------------------------------------------


def _catalog_page(
    request: HttpRequest,
    actor: Actor,
    *,
    pass_type_form: PassTypeForm | None = None,
    plan_form: PlanForm | None = None,
    status: int = 200,
) -> HttpResponse:
    currency = _currency(actor)
    context = {
        "pass_types": access.list_pass_types(actor, include_inactive=True),
        "plans": access.list_plans(actor, include_inactive=True),
        "currency": currency,
        "pass_type_form": pass_type_form or PassTypeForm(currency=currency),
        "plan_form": plan_form or PlanForm(currency=currency),
        "business": actor.business,
        "can_change_settings": actor.can(Permission.BUSINESS_SETTINGS_WRITE),
    }
    return render(request, "payments/catalog.html", context, status=status)


@require_safe
@member_required(Permission.PAYMENTS_CATALOG_WRITE)
def catalog(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Pass types and membership plans, with forms to add them."""
    return _catalog_page(request, actor)


@require_POST
@member_required(Permission.PAYMENTS_CATALOG_WRITE)
def pass_type_new(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Add a pass type."""
    form = PassTypeForm(request.POST, currency=_currency(actor))
    return form_action(
        request,
        form,
        lambda: do_create_pass_type(actor=actor, **form.action_fields()),
        success="Pass type added.",
        done=lambda _: redirect("payments_catalog"),
        page=lambda status: _catalog_page(request, actor, pass_type_form=form, status=status),
        field_names=AMOUNT_FIELDS,
    )


@require_POST
@member_required(Permission.PAYMENTS_CATALOG_WRITE)
def plan_new(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Add a membership plan."""
    form = PlanForm(request.POST, currency=_currency(actor))
    return form_action(
        request,
        form,
        lambda: do_create_plan(actor=actor, **form.action_fields()),
        success="Membership plan added.",
        done=lambda _: redirect("payments_catalog"),
        page=lambda status: _catalog_page(request, actor, plan_form=form, status=status),
        field_names=AMOUNT_FIELDS,
    )


@require_http_methods(FORM_METHODS)
@member_required(Permission.PAYMENTS_CATALOG_WRITE)
def pass_type_edit(request: HttpRequest, actor: Actor, pass_type_id: str) -> HttpResponse:
    """Rename or re-price a pass type (passes already sold keep theirs)."""
    pass_type = access.access_pass_type_by_id(actor, pass_type_id)
    currency = _currency(actor)
    return _edit(
        request,
        PassTypeForm,
        currency,
        pass_type,
        initial={
            "name": pass_type.name,
            "credits": pass_type.credits,
            "price": from_minor(pass_type.price_minor, currency),
            "validity_days": pass_type.validity_days,
        },
        action=lambda fields: do_update_pass_type(pass_type, actor=actor, **fields),
        title="Edit pass type",
    )


@require_http_methods(FORM_METHODS)
@member_required(Permission.PAYMENTS_CATALOG_WRITE)
def plan_edit(request: HttpRequest, actor: Actor, plan_id: str) -> HttpResponse:
    """Rename or re-price a membership plan (current members keep theirs)."""
    plan = access.access_plan_by_id(actor, plan_id)
    currency = _currency(actor)
    return _edit(
        request,
        PlanForm,
        currency,
        plan,
        initial={
            "name": plan.name,
            "monthly_price": from_minor(plan.monthly_price_minor, currency),
            "credits_per_month": plan.credits_per_month,
        },
        action=lambda fields: do_update_plan(plan, actor=actor, **fields),
        title="Edit membership plan",
    )


def _edit(
    request: HttpRequest,
    form_class: type[PassTypeForm] | type[PlanForm],
    currency: str,
    row: Any,
    *,
    initial: dict[str, Any],
    action: Callable[[dict[str, Any]], Any],
    title: str,
) -> HttpResponse:
    def page(form: Any, status: int = 200) -> HttpResponse:
        context = {"form": form, "row": row, "title": title}
        return render(request, "payments/catalog_form.html", context, status=status)

    if request.method != "POST":
        return page(form_class(initial=initial, currency=currency))
    form = form_class(request.POST, currency=currency)
    return form_action(
        request,
        form,
        lambda: action(form.action_fields()),
        success="Saved.",
        done=lambda _: redirect("payments_catalog"),
        page=lambda status: page(form, status),
        field_names=AMOUNT_FIELDS,
    )


@require_POST
@member_required(Permission.PAYMENTS_CATALOG_WRITE)
def pass_type_toggle(request: HttpRequest, actor: Actor, pass_type_id: str) -> HttpResponse:
    """Stop selling a pass type, or sell it again."""
    pass_type = access.access_pass_type_by_id(actor, pass_type_id)
    do_update_pass_type(pass_type, actor=actor, is_active=not pass_type.is_active)
    messages.success(request, "Sold again." if pass_type.is_active else "No longer sold.")
    return redirect("payments_catalog")


@require_POST
@member_required(Permission.PAYMENTS_CATALOG_WRITE)
def plan_toggle(request: HttpRequest, actor: Actor, plan_id: str) -> HttpResponse:
    """Stop offering a membership plan, or offer it again."""
    plan = access.access_plan_by_id(actor, plan_id)
    do_update_plan(plan, actor=actor, is_active=not plan.is_active)
    messages.success(request, "Offered again." if plan.is_active else "No longer offered.")
    return redirect("payments_catalog")


@require_http_methods(FORM_METHODS)
@member_required(Permission.BUSINESS_SETTINGS_WRITE)
def payment_settings(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The business's currency and its rule for credits of cancelled visits (owners)."""
    business: Business = actor.business
    if request.method != "POST":
        form = PaymentSettingsForm(
            initial={
                "currency": business.currency,
                "credit_back_on_cancel": business.credit_back_on_cancel,
            }
        )
        return render(request, "payments/settings.html", {"form": form})
    form = PaymentSettingsForm(request.POST)
    return form_action(
        request,
        form,
        lambda: do_update_payment_settings(business, actor=actor, **form.cleaned_data),
        success="Payment settings saved.",
        done=lambda _: redirect("payments_catalog"),
        page=lambda status: render(
            request, "payments/settings.html", {"form": form}, status=status
        ),
    )


# --- Passes and memberships --------------------------------------------------------------------


@require_safe
@member_required(Permission.PAYMENTS_PASS_WRITE)
def client_passes(request: HttpRequest, actor: Actor, client_id: str) -> HttpResponse:
    """One client's passes and memberships, with forms to sell one and to invoice visits."""
    client = access_client_by_id(actor, client_id, intent=Intent.SHOW)
    cards = []
    if actor.can(Permission.PAYMENTS_CARD_CHARGE):
        cards = access.read_cards_of(actor, client)
    context = {
        "client": client,
        "passes": access.read_passes_of(actor, client),
        "memberships": access.read_memberships_of(actor, client),
        "sell_form": SellPassForm(pass_types=access.list_pass_types(actor)),
        "membership_form": StartMembershipForm(plans=access.list_plans(actor), cards=cards),
    }
    return render(request, "payments/client_passes.html", context)


@require_POST
@member_required(Permission.PAYMENTS_PASS_WRITE)
def pass_sell(request: HttpRequest, actor: Actor, client_id: str) -> HttpResponse:
    """Sell a pass to a client: the pass and its invoice."""
    client = access_client_by_id(actor, client_id, intent=Intent.REFERENCE)
    form = SellPassForm(request.POST, pass_types=access.list_pass_types(actor))
    if not form.is_valid():
        messages.error(request, "Choose one of the passes on sale.")
        return redirect("payments_client_passes", client_id=client.pk)
    try:
        _pass, invoice = do_sell_pass(client, form.cleaned_data["pass_type"], actor=actor)
    except ValidationError as exc:
        _refused(request, exc)
        return redirect("payments_client_passes", client_id=client.pk)
    messages.success(request, f"Pass sold; invoice {invoice.number} is open.")
    return redirect("invoice_detail", invoice_id=invoice.pk)


@require_POST
@member_required(Permission.PAYMENTS_PASS_WRITE)
def membership_start(request: HttpRequest, actor: Actor, client_id: str) -> HttpResponse:
    """Start a client's membership: its first month and its invoice."""
    client = access_client_by_id(actor, client_id, intent=Intent.REFERENCE)
    form = StartMembershipForm(request.POST, plans=access.list_plans(actor))
    if not form.is_valid():
        messages.error(request, "Choose one of the plans offered.")
        return redirect("payments_client_passes", client_id=client.pk)
    plan = form.cleaned_data["plan"]
    card_id = request.POST.get("autopay_card", "")
    card = None
    try:
        if card_id:
            # Autopay from the start: a card permission (403 without it), the card window.
            card = access.access_card_by_id(
                actor, card_id, permission=Permission.PAYMENTS_CARD_CHARGE
            )
            consent = request.POST.get("consent") == "yes"
            _membership, invoice = do_start_membership_with_autopay(
                client, plan, card, actor=actor, consent=consent
            )
        else:
            _membership, invoice = do_start_membership(client, plan, actor=actor)
    except ValidationError as exc:
        _refused(request, exc)
        return redirect("payments_client_passes", client_id=client.pk)
    autopay = f", autopay to {card}" if card is not None else ""
    messages.success(request, f"Membership started{autopay}; invoice {invoice.number} is open.")
    return redirect("invoice_detail", invoice_id=invoice.pk)


@require_POST
@member_required(Permission.PAYMENTS_PASS_WRITE)
def membership_cancel(
    request: HttpRequest, actor: Actor, client_id: str, membership_id: str
) -> HttpResponse:
    """Cancel a client's membership (not renewed)."""
    client = access_client_by_id(actor, client_id, intent=Intent.REFERENCE)
    membership = access.access_membership_by_id(actor, membership_id)
    if membership.client_id != client.pk:
        raise Http404("No such membership.")
    _act(request, lambda: do_cancel_membership(membership, actor=actor), "Membership cancelled.")
    return redirect("payments_client_passes", client_id=client.pk)


@require_safe
@member_required(Permission.PAYMENTS_PASS_READ)
def pass_list(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Managers: every pass of the business, a page at a time. A client: their own passes and
    memberships."""
    if actor.role == Role.CLIENT:
        client = access_client_by_id(actor, actor.membership.client_id, intent=Intent.REFERENCE)
        context: dict[str, Any] = {
            "own": True,
            "passes": access.read_passes_of(actor, client),
            "memberships": access.read_memberships_of(actor, client),
            "on_sale": access.list_pass_types(actor),
            "plans": access.list_plans(actor).filter(monthly_price_minor__gt=0),
            "cards": access.read_cards_of(actor, client),
        }
    else:
        form = CursorForm(request.GET)
        page, valid = _page(form, lambda cursor: access.page_of_passes(actor, cursor=cursor))
        context = {
            "own": False,
            "page": page,
            "page_error": " ".join(str(error) for error in form.errors.get("cursor", [])),
        }
        if not valid:
            return render(request, "payments/passes.html", context, status=400)
    return render(request, "payments/passes.html", context)


@require_safe
@member_required(Permission.PAYMENTS_PASS_READ)
def pass_detail(request: HttpRequest, actor: Actor, pass_id: str) -> HttpResponse:
    """One pass: its balance, expiry and history of uses."""
    view = access.view_pass(actor, pass_id)
    can_write = actor.can(Permission.PAYMENTS_PASS_WRITE)
    return render(request, "payments/pass_detail.html", {"view": view, "can_write": can_write})


@require_POST
@member_required(Permission.PAYMENTS_PASS_WRITE)
def pass_void(request: HttpRequest, actor: Actor, pass_id: str) -> HttpResponse:
    """Void a pass: it gives no more credits."""
    client_pass = access.access_pass_by_id(actor, pass_id, intent=Intent.CHANGE)
    _act(request, lambda: do_void_pass(client_pass, actor=actor), "Pass voided.")
    return redirect("pass_detail", pass_id=client_pass.pk)


# --- Invoices ----------------------------------------------------------------------------------


@require_safe
@member_required(Permission.PAYMENTS_INVOICE_READ)
def invoice_list(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Invoices (a client: their own issued ones), optionally by status, a page at a time."""
    form = InvoiceFilterForm(request.GET)
    status = (form.cleaned_data.get("status") if form.is_valid() else "") or None
    page, valid = _page(
        form,
        lambda cursor: access.page_of_invoices(
            actor, status=InvoiceStatus(status) if status else None, cursor=cursor
        ),
    )
    context = {"form": form, "page": page, "status": status or ""}
    return render(request, "payments/invoices.html", context, status=200 if valid else 400)


@require_POST
@member_required(Permission.PAYMENTS_INVOICE_WRITE)
def invoice_new(request: HttpRequest, actor: Actor, client_id: str) -> HttpResponse:
    """A draft invoice of a client's completed visits not yet invoiced."""
    client = access_client_by_id(actor, client_id, intent=Intent.REFERENCE)
    invoice = do_create_invoice(client, actor=actor)
    messages.success(request, "Draft invoice created.")
    return redirect("invoice_detail", invoice_id=invoice.pk)


def _invoice_page(
    request: HttpRequest,
    actor: Actor,
    view: access.InvoiceView,
    *,
    line_form: InvoiceLineForm | None = None,
    payment_form: PaymentForm | None = None,
    status: int = 200,
) -> HttpResponse:
    invoice = view.invoice
    can_write = actor.can(Permission.PAYMENTS_INVOICE_WRITE)
    context: dict[str, Any] = {"view": view, "invoice": invoice, "can_write": can_write}
    if can_write and invoice.status == InvoiceStatus.DRAFT:
        context["line_form"] = line_form or InvoiceLineForm(currency=invoice.currency)
    context["can_charge"] = actor.can(Permission.PAYMENTS_CARD_CHARGE)
    context["can_refund"] = actor.can(Permission.PAYMENTS_CARD_REFUND)
    if context["can_charge"] and invoice.status == InvoiceStatus.OPEN and view.totals.due:
        context["cards"] = access.read_cards_of(actor, invoice.client)
    if (
        can_write
        and actor.can(Permission.PAYMENTS_PAYMENT_RECORD)
        and invoice.status == InvoiceStatus.OPEN
    ):
        context["payment_form"] = payment_form or PaymentForm(
            currency=invoice.currency,
            initial={"amount": from_minor(view.totals.due, invoice.currency)},
        )
    return render(request, "payments/invoice_detail.html", context, status=status)


@require_safe
@member_required(Permission.PAYMENTS_INVOICE_READ)
def invoice_detail(request: HttpRequest, actor: Actor, invoice_id: str) -> HttpResponse:
    """One invoice: lines, totals, payments; managers edit drafts, issue, void, record payments."""
    return _invoice_page(request, actor, access.view_invoice(actor, invoice_id))


@require_safe
@member_required(Permission.PAYMENTS_INVOICE_READ)
def invoice_print(request: HttpRequest, actor: Actor, invoice_id: str) -> HttpResponse:
    """The invoice (a receipt once paid) as a page to print."""
    view = access.view_invoice(actor, invoice_id)
    return render(request, "payments/invoice_print.html", {"view": view, "invoice": view.invoice})


@require_POST
@member_required(Permission.PAYMENTS_INVOICE_WRITE)
def invoice_line_add(request: HttpRequest, actor: Actor, invoice_id: str) -> HttpResponse:
    """Add a line to a draft."""
    invoice = access.access_invoice_by_id(actor, invoice_id, intent=Intent.CHANGE)
    form = InvoiceLineForm(request.POST, currency=invoice.currency)
    return form_action(
        request,
        form,
        lambda: do_add_invoice_line(invoice, actor=actor, **form.action_fields()),
        success="Line added.",
        done=lambda _: redirect("invoice_detail", invoice_id=invoice.pk),
        page=lambda status: _invoice_page(
            request,
            actor,
            access.invoice_view(actor, invoice, shown_again=True),
            line_form=form,
            status=status,
        ),
        field_names=AMOUNT_FIELDS,
    )


@require_POST
@member_required(Permission.PAYMENTS_INVOICE_WRITE)
def invoice_line_remove(
    request: HttpRequest, actor: Actor, invoice_id: str, line_id: str
) -> HttpResponse:
    """Remove a line from a draft."""
    invoice = access.access_invoice_by_id(actor, invoice_id, intent=Intent.CHANGE)
    line = access.access_invoice_line_by_id(actor, invoice, line_id)
    _act(request, lambda: do_remove_invoice_line(line, actor=actor), "Line removed.")
    return redirect("invoice_detail", invoice_id=invoice.pk)


@require_POST
@member_required(Permission.PAYMENTS_INVOICE_WRITE)
def invoice_issue(request: HttpRequest, actor: Actor, invoice_id: str) -> HttpResponse:
    """Number a draft and open it."""
    invoice = access.access_invoice_by_id(actor, invoice_id, intent=Intent.CHANGE)
    _act(request, lambda: do_issue_invoice(invoice, actor=actor), "Invoice issued.")
    return redirect("invoice_detail", invoice_id=invoice.pk)


@require_POST
@member_required(Permission.PAYMENTS_INVOICE_WRITE)
def invoice_void(request: HttpRequest, actor: Actor, invoice_id: str) -> HttpResponse:
    """Void a draft or open invoice; its visits can be invoiced again."""
    invoice = access.access_invoice_by_id(actor, invoice_id, intent=Intent.CHANGE)
    _act(request, lambda: do_void_invoice(invoice, actor=actor), "Invoice voided.")
    return redirect("invoice_detail", invoice_id=invoice.pk)


@require_POST
@member_required(Permission.PAYMENTS_PAYMENT_RECORD)
def invoice_payment(request: HttpRequest, actor: Actor, invoice_id: str) -> HttpResponse:
    """Record a payment received by hand (cash or other)."""
    invoice = access.access_invoice_by_id(actor, invoice_id, intent=Intent.CHANGE)
    form = PaymentForm(request.POST, currency=invoice.currency)
    return form_action(
        request,
        form,
        lambda: do_record_payment(invoice, actor=actor, **form.action_fields()),
        success="Payment recorded.",
        done=lambda _: redirect("invoice_detail", invoice_id=invoice.pk),
        page=lambda status: _invoice_page(
            request,
            actor,
            access.invoice_view(actor, invoice, shown_again=True),
            payment_form=form,
            status=status,
        ),
        field_names=AMOUNT_FIELDS,
    )
