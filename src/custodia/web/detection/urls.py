"""The owners' security alerts (mounted under /app/)."""

from __future__ import annotations

from django.urls import path

from custodia.web.detection import views

urlpatterns = [
    path("security/alerts/", views.alert_list, name="detection_alerts"),
    path("security/alerts/<str:alert_id>/", views.alert_detail, name="detection_alert"),
    path(
        "security/alerts/<str:alert_id>/acknowledge/",
        views.alert_acknowledge,
        name="detection_alert_acknowledge",
    ),
]
