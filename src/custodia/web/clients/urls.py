"""Client pages and the client's own portal (mounted under /app/)."""

from __future__ import annotations

from django.urls import path

from custodia.web.clients import erasure, imports, profiles, views

urlpatterns = [
    path("clients/", views.client_list, name="client_list"),
    path("clients/new/", views.client_new, name="client_new"),
    # Before the record's own address, which would take "import" for an id.
    path("clients/import/", imports.client_import, name="client_import"),
    path("clients/import/confirm/", imports.client_import_confirm, name="client_import_confirm"),
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
    path("clients/<str:client_id>/pets/new/", profiles.pet_new, name="pet_new"),
    path("clients/<str:client_id>/household/", profiles.household_edit, name="household_edit"),
    path("pets/<str:pet_id>/edit/", profiles.pet_edit, name="pet_edit"),
    path("pets/<str:pet_id>/delete/", profiles.pet_delete, name="pet_delete"),
    path("pets/<str:pet_id>/photo/", profiles.pet_photo, {"part": "photo"}, name="pet_photo"),
    path(
        "pets/<str:pet_id>/photo/thumbnail/",
        profiles.pet_photo,
        {"part": "photo_thumbnail"},
        name="pet_photo_thumbnail",
    ),
    path("pets/<str:pet_id>/photo/upload/", profiles.pet_photo_upload, name="pet_photo_upload"),
    path("pets/<str:pet_id>/photo/remove/", profiles.pet_photo_remove, name="pet_photo_remove"),
    path("portal/", views.portal, name="portal"),
    path("portal/erasure/", erasure.portal_erasure_request, name="portal_erasure_request"),
]
