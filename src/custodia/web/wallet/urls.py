"""Wallet pages under /app/ (a client's pass or membership in their wallet) and Apple's PassKit
web service under /wallet/v1/ (docs/wallet.md)."""

from __future__ import annotations

from django.urls import path

from custodia.web.wallet import service, views

app_urlpatterns = [
    path("passes/<str:pass_id>/wallet.pkpass", views.apple_pass, name="wallet_apple_pass"),
    path("passes/<str:pass_id>/google-wallet/", views.google_pass, name="wallet_google_pass"),
    path(
        "memberships/<str:membership_id>/wallet.pkpass",
        views.apple_membership,
        name="wallet_apple_membership",
    ),
    path(
        "memberships/<str:membership_id>/google-wallet/",
        views.google_membership,
        name="wallet_google_membership",
    ),
]

service_urlpatterns = [
    path(
        "v1/devices/<str:device_id>/registrations/<str:type_id>/<str:serial>",
        service.registration,
        name="wallet_registration",
    ),
    path(
        "v1/devices/<str:device_id>/registrations/<str:type_id>",
        service.updated_passes,
        name="wallet_updated_passes",
    ),
    path("v1/passes/<str:type_id>/<str:serial>", service.latest_pass, name="wallet_latest_pass"),
    path("v1/log", service.device_log, name="wallet_device_log"),
]
