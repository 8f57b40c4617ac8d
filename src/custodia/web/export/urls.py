"""The owner's whole-business export and the client's own-data download (mounted under /app/)."""

from __future__ import annotations

from django.urls import path

from custodia.web.export import views

urlpatterns = [
    path("business/export/", views.export_list, name="export_list"),
    path("exports/<str:export_id>/", views.export_detail, name="export_detail"),
    path("exports/<str:export_id>/download/", views.export_download, name="export_download"),
    path("portal/my-data/", views.own_data_download, name="portal_export"),
]
