"""The owner's webhook endpoints (mounted under /app/)."""

from __future__ import annotations

from django.urls import path

from custodia.web.webhooks import views

urlpatterns = [
    path("business/webhooks/", views.webhook_list, name="webhook_list"),
    path("business/webhooks/add/", views.webhook_add, name="webhook_add"),
    path("business/webhooks/<str:endpoint_id>/", views.webhook_detail, name="webhook_detail"),
    path(
        "business/webhooks/<str:endpoint_id>/rotate/", views.webhook_rotate, name="webhook_rotate"
    ),
    path("business/webhooks/<str:endpoint_id>/test/", views.webhook_test, name="webhook_test"),
    path(
        "business/webhooks/<str:endpoint_id>/delete/", views.webhook_delete, name="webhook_delete"
    ),
    path(
        "business/webhooks/<str:endpoint_id>/deliveries/<str:delivery_id>/resend/",
        views.webhook_resend,
        name="webhook_resend",
    ),
]
