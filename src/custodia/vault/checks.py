"""Start-up checks of the vault process (run by every `custodia vault` command)."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from custodia.vault.gateways.registry import gateway


def gateway_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """CUSTODIA_VAULT_GATEWAY names a gateway the vault has."""
    try:
        gateway()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="vault.E001")]
    return []
