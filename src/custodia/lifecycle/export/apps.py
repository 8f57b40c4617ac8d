from __future__ import annotations

from django.apps import AppConfig


class ExportConfig(AppConfig):
    name = "custodia.lifecycle.export"
    label = "export"
    verbose_name = "Exports"
