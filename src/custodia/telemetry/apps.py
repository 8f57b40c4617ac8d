from __future__ import annotations

from django.apps import AppConfig
from django.conf import settings


class Config(AppConfig):
    name = "custodia.telemetry"
    label = "telemetry"

    def ready(self) -> None:
        # Receivers are connected here, and the Sentry SDK is imported only when it is used.
        from custodia.telemetry import metrics

        metrics.connect_receivers()
        if settings.SENTRY_DSN:
            from custodia.telemetry import sentry

            sentry.start(settings.SENTRY_DSN, environment=settings.SENTRY_ENVIRONMENT)
