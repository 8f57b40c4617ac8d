from __future__ import annotations

from django.apps import AppConfig


class Config(AppConfig):
    name = "custodia.crypto"
    label = "crypto"

    def ready(self) -> None:
        from custodia.crypto import checks  # noqa: F401  (registers the key-encryption key check)
