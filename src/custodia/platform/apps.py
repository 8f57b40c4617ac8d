from __future__ import annotations

from django.apps import AppConfig


class Config(AppConfig):
    name = "custodia.platform"
    label = "platform"
    verbose_name = "Platform operators and vulnerability reports"
    default_auto_field = "django.db.models.BigAutoField"
