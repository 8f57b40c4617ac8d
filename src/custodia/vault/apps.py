from __future__ import annotations

from django.apps import AppConfig


class VaultConfig(AppConfig):
    name = "custodia.vault"
    label = "vault"
    verbose_name = "Card vault"
