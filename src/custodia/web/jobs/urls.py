"""A background job's page (mounted under /jobs/, namespace `jobs`)."""

from __future__ import annotations

from django.urls import path

from custodia.web.jobs import views

app_name = "jobs"
urlpatterns = [
    path("<str:job_id>/", views.job_detail, name="detail"),
]
