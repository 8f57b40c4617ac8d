from __future__ import annotations

from django.apps import AppConfig


class Config(AppConfig):
    name = "custodia.cache"
    label = "cache"
    verbose_name = "Cache"
