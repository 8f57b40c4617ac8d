from __future__ import annotations

from django.apps import AppConfig


class Config(AppConfig):
    name = "custodia.ops"
    label = "ops"
    default_auto_field = "django.db.models.BigAutoField"
