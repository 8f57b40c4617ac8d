"""The owner's audit trail pages (mounted under /app/)."""

from __future__ import annotations

from django.urls import path

from custodia.web.audit import views

urlpatterns = [
    path("audit/", views.audit_list, name="audit_list"),
    path("audit/export.csv", views.audit_export, {"fmt": "csv"}, name="audit_export_csv"),
    path("audit/export.json", views.audit_export, {"fmt": "json"}, name="audit_export_json"),
    path("audit/heads.json", views.audit_heads, name="audit_heads"),
]
