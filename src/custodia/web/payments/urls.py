"""Payments pages (mounted under /app/): catalog and settings, passes, invoices."""

from __future__ import annotations

from django.urls import path

from custodia.web.payments import cards, memberships, views

urlpatterns = [
    path("payments/catalog/", views.catalog, name="payments_catalog"),
    path("payments/settings/", views.payment_settings, name="payments_settings"),
    path("payments/pass-types/new/", views.pass_type_new, name="pass_type_new"),
    path(
        "payments/pass-types/<str:pass_type_id>/edit/", views.pass_type_edit, name="pass_type_edit"
    ),
    path(
        "payments/pass-types/<str:pass_type_id>/toggle/",
        views.pass_type_toggle,
        name="pass_type_toggle",
    ),
    path("payments/plans/new/", views.plan_new, name="plan_new"),
    path("payments/plans/<str:plan_id>/edit/", views.plan_edit, name="plan_edit"),
    path("payments/plans/<str:plan_id>/toggle/", views.plan_toggle, name="plan_toggle"),
    path("clients/<str:client_id>/passes/", views.client_passes, name="payments_client_passes"),
    path("clients/<str:client_id>/passes/sell/", views.pass_sell, name="pass_sell"),
    path(
        "clients/<str:client_id>/memberships/start/",
        views.membership_start,
        name="membership_start",
    ),
    path(
        "clients/<str:client_id>/memberships/<str:membership_id>/cancel/",
        views.membership_cancel,
        name="membership_cancel",
    ),
    path("clients/<str:client_id>/invoices/new/", views.invoice_new, name="invoice_new"),
    path(
        "memberships/<str:membership_id>/",
        memberships.membership_detail,
        name="membership_detail",
    ),
    path(
        "memberships/<str:membership_id>/autopay/",
        memberships.membership_autopay,
        name="membership_autopay",
    ),
    path(
        "memberships/<str:membership_id>/autopay/off/",
        memberships.membership_autopay_off,
        name="membership_autopay_off",
    ),
    path("passes/", views.pass_list, name="pass_list"),
    path("passes/buy/", cards.pass_buy, name="pass_buy"),
    path("plans/<str:plan_id>/buy/", cards.membership_buy, name="membership_buy"),
    path("passes/<str:pass_id>/", views.pass_detail, name="pass_detail"),
    path("passes/<str:pass_id>/void/", views.pass_void, name="pass_void"),
    path("invoices/", views.invoice_list, name="invoice_list"),
    path("invoices/<str:invoice_id>/", views.invoice_detail, name="invoice_detail"),
    path("invoices/<str:invoice_id>/print/", views.invoice_print, name="invoice_print"),
    path("invoices/<str:invoice_id>/lines/", views.invoice_line_add, name="invoice_line_add"),
    path(
        "invoices/<str:invoice_id>/lines/<str:line_id>/remove/",
        views.invoice_line_remove,
        name="invoice_line_remove",
    ),
    path("invoices/<str:invoice_id>/issue/", views.invoice_issue, name="invoice_issue"),
    path("invoices/<str:invoice_id>/void/", views.invoice_void, name="invoice_void"),
    path("invoices/<str:invoice_id>/payments/", views.invoice_payment, name="invoice_payment"),
    # Cards (web/payments/cards.py): never in the API.
    path("cards/", cards.cards, name="my_cards"),
    path("cards/add/", cards.card_form, name="my_card_form"),
    path("cards/added/<str:state>/", cards.card_added, name="card_added"),
    path("cards/<str:card_id>/remove/", cards.card_remove, name="card_remove"),
    path("clients/<str:client_id>/cards/", cards.cards, name="client_cards"),
    path("clients/<str:client_id>/cards/add/", cards.card_form, name="client_card_form"),
    path("invoices/<str:invoice_id>/charge/", cards.invoice_charge, name="invoice_charge"),
    path("payments/<str:payment_id>/retry/", cards.payment_retry, name="payment_retry"),
    path("payments/<str:payment_id>/refund/", cards.payment_refund, name="payment_refund"),
]
