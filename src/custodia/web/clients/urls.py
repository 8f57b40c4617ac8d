"""Client pages and the client's own portal (mounted under /app/)."""

from __future__ import annotations

from django.urls import path

from custodia.web.clients import erasure, views

urlpatterns = [
    path("clients/", views.client_list, name="client_list"),
    path("clients/new/", views.client_new, name="client_new"),
    path("clients/<str:client_id>/", views.client_detail, name="client_detail"),
    path("clients/<str:client_id>/edit/", views.client_edit, name="client_edit"),
    path("clients/<str:client_id>/history/", views.client_history, name="client_history"),
    path("clients/<str:client_id>/delete/", views.client_delete, name="client_delete"),
    path("clients/<str:client_id>/assign/", views.client_assign, name="client_assign"),
    path(
        "clients/<str:client_id>/unassign/<str:membership_id>/",
        views.client_unassign,
        name="client_unassign",
    ),
    path("clients/<str:client_id>/invite/", views.client_invite, name="client_invite"),
    path("clients/<str:client_id>/erase/", erasure.client_erase, name="client_erase"),
    path("portal/", views.portal, name="portal"),
    path("portal/erasure/", erasure.portal_erasure_request, name="portal_erasure_request"),
]
