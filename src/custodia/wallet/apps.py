from __future__ import annotations

from django.apps import AppConfig


class Config(AppConfig):
    name = "custodia.wallet"
    label = "wallet"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registering the receivers that move a pass's update tag (docs/wallet.md; the imports
        # left inside functions are an app's ready(), docs/architecture.md).
        from custodia.wallet import receivers  # noqa: F401
