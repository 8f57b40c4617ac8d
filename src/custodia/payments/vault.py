"""The app's one way to the card vault: a signed client built from settings (docs/payments.md).

Only this module builds a `VaultClient`; actions call `vault()` and never see the secret.
"""

from __future__ import annotations

import functools

from django.conf import settings

from custodia.vault.client import VaultClient


@functools.lru_cache(maxsize=4)
def _client(url: str, secret: str, ca_file: str) -> VaultClient:
    return VaultClient(url, secret, ca_file=ca_file or None)


def vault() -> VaultClient:
    """The client of the vault the settings name (one per URL, secret and CA: tests move them)."""
    return _client(settings.VAULT_URL, settings.VAULT_SIGNING_SECRET, settings.VAULT_CA_FILE)
