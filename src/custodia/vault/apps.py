from __future__ import annotations

from django.apps import AppConfig


class VaultConfig(AppConfig):
    name = "custodia.vault"
    label = "vault"
    verbose_name = "Card vault"

    def ready(self) -> None:
        """Register the vault's start-up checks."""
        from django.core import checks

        from custodia.vault.checks import gateway_check

        checks.register(gateway_check, "vault")
