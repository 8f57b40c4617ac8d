"""Services, calendar, visits, staff's day and clients' visit requests (mounted under /app/)."""

from __future__ import annotations

from django.urls import path

from custodia.web.scheduling import views

urlpatterns = [
    path("services/", views.service_list, name="service_list"),
    path("services/new/", views.service_new, name="service_new"),
    path("services/<str:service_id>/edit/", views.service_edit, name="service_edit"),
    path("services/<str:service_id>/retire/", views.service_retire, name="service_retire"),
    path("calendar/", views.calendar, name="calendar"),
    path("visits/new/", views.visit_new, name="visit_new"),
    path("visits/<str:visit_id>/", views.visit_detail, name="visit_detail"),
    path("visits/<str:visit_id>/update/", views.visit_update, name="visit_update"),
    path("visits/<str:visit_id>/edit/", views.visit_edit, name="visit_edit"),
    path("visits/<str:visit_id>/delete/", views.visit_delete, name="visit_delete"),
    path("visits/<str:visit_id>/series/", views.series_change, name="series_change"),
    path("visits/<str:visit_id>/series/end/", views.series_end, name="series_end"),
    path("visits/<str:visit_id>/confirm/", views.visit_confirm, name="visit_confirm"),
    path("visits/<str:visit_id>/check-in/", views.visit_check_in, name="visit_check_in"),
    path("visits/<str:visit_id>/check-out/", views.visit_check_out, name="visit_check_out"),
    path("visits/<str:visit_id>/photos/", views.visit_photo_add, name="visit_photo_add"),
    path(
        "visits/<str:visit_id>/photos/<str:photo_id>/",
        views.visit_photo,
        {"part": "image"},
        name="visit_photo",
    ),
    path(
        "visits/<str:visit_id>/photos/<str:photo_id>/thumbnail/",
        views.visit_photo,
        {"part": "thumbnail"},
        name="visit_photo_thumbnail",
    ),
    path(
        "visits/<str:visit_id>/photos/<str:photo_id>/delete/",
        views.visit_photo_delete,
        name="visit_photo_delete",
    ),
    path("today/", views.today, name="today"),
    path("portal/request/", views.visit_request, name="visit_request"),
    path("notifications/", views.notice_choices, name="notice_choices"),
]
