from __future__ import annotations

from django.apps import AppConfig


class Config(AppConfig):
    name = "custodia.transparency"
    label = "transparency"
    default_auto_field = "django.db.models.BigAutoField"
