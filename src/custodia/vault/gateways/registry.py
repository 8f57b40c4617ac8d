"""Which gateway the vault uses: `gateway()` returns the one CUSTODIA_VAULT_GATEWAY names.

A gateway registers itself by name in GATEWAYS (a factory taking no argument); adding Stripe is
one more entry.

Not in the package's __init__: the app may import gateways.base (the interface) without
loading the vault's gateways and models.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured

from custodia.vault import settings as vault_settings
from custodia.vault.gateways.base import Gateway
from custodia.vault.gateways.sandbox import SandboxGateway

GATEWAYS: dict[str, Callable[[], Gateway]] = {
    "sandbox": SandboxGateway,
}


def gateway() -> Gateway:
    """The configured gateway (CUSTODIA_VAULT_GATEWAY)."""
    name = vault_settings.VAULT_GATEWAY
    factory = GATEWAYS.get(name)
    if factory is None:
        raise ImproperlyConfigured(
            f"CUSTODIA_VAULT_GATEWAY must be one of {', '.join(sorted(GATEWAYS))}, not {name!r}."
        )
    return factory()
