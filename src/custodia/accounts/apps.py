from __future__ import annotations

from django.apps import AppConfig


class Config(AppConfig):
    name = "custodia.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from custodia.accounts import recoverycodes
        from custodia.accounts.receivers import connect_receivers

        # Recovery codes stored as one hash each, in place of allauth's seed-derived ones.
        recoverycodes.install()
        # Sessions and the security panel follow logins and credential changes.
        connect_receivers()
