"""The transparency pages (docs/transparency.md); security.txt and /security/ are in urls.py."""

from __future__ import annotations

from django.urls import path

from custodia.web.trust import views

urlpatterns = [
    path("security/subprocessors/", views.subprocessors_page, name="subprocessors_page"),
    path("security/retention/", views.retention_page, name="retention_page"),
    path("privacy/", views.privacy_page, name="privacy_page"),
    path("b/<str:slug>/security/", views.business_page, name="business_security_page"),
    path("app/business/transparency/", views.publish_page, name="transparency_publish"),
]
