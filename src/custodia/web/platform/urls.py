"""The operator console's pages (the public report form is routed in custodia/urls.py)."""

from __future__ import annotations

from django.urls import path

from custodia.web.platform import views

urlpatterns = [
    path("", views.console, name="operator_console"),
    path("reports/<uuid:report_id>/", views.report_detail, name="operator_report"),
    path("reports/<uuid:report_id>/respond/", views.report_respond, name="operator_report_respond"),
    path("reports/<uuid:report_id>/status/", views.report_status, name="operator_report_status"),
    path("backups/", views.backups, name="operator_backups"),
    path("businesses/", views.businesses, name="operator_businesses"),
    path("alerts/", views.alerts, name="operator_alerts"),
]
