from __future__ import annotations

from django.apps import AppConfig


class Config(AppConfig):
    name = "custodia.payments"
    label = "payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registering the receivers of scheduling's signals (docs/architecture.md: the imports
        # left inside functions are an app's ready()).
        from custodia.payments import receivers  # noqa: F401
