from __future__ import annotations

from django.apps import AppConfig


class Config(AppConfig):
    name = "custodia.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from custodia.accounts.sessions import connect_receivers

        connect_receivers()
        # Security notifications: receivers of allauth's account and MFA signals.
        from custodia.accounts import notifications  # noqa: F401
