from __future__ import annotations

from django.apps import AppConfig
from django.conf import settings


class Config(AppConfig):
    name = "custodia.telemetry"
    label = "telemetry"

    def ready(self) -> None:
        # Registered here, not at import: the app's ready() is where receivers are connected.
        from custodia.telemetry import metrics, sentry

        metrics.connect_receivers()
        if settings.SENTRY_DSN:
            sentry.start(settings.SENTRY_DSN, environment=settings.SENTRY_ENVIRONMENT)
