from __future__ import annotations

from django.apps import AppConfig


class DetectionConfig(AppConfig):
    name = "custodia.detection"
    label = "detection"
    verbose_name = "Detection"
