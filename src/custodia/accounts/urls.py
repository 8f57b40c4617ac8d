"""Personal API tokens (mounted under /app/)."""

from __future__ import annotations

from django.urls import path

from custodia.accounts import views

urlpatterns = [
    path("tokens/", views.token_list, name="token_list"),
    path("tokens/new/", views.token_create, name="token_create"),
    path("tokens/<str:token_id>/revoke/", views.token_revoke, name="token_revoke"),
]
