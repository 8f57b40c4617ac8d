"""Payment gateways behind one adapter (base.py): the sandbox (default) and Stripe.

`gateway()` returns the one named by settings.VAULT_GATEWAY. A gateway registers itself by
name in GATEWAYS (a factory taking no argument); adding Stripe is one more entry.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from custodia.vault.gateways.base import Gateway
from custodia.vault.gateways.sandbox import SandboxGateway

GATEWAYS: dict[str, Callable[[], Gateway]] = {
    "sandbox": SandboxGateway,
}


def gateway() -> Gateway:
    """The configured gateway (CUSTODIA_VAULT_GATEWAY)."""
    name = settings.VAULT_GATEWAY
    factory = GATEWAYS.get(name)
    if factory is None:
        raise ImproperlyConfigured(
            f"CUSTODIA_VAULT_GATEWAY must be one of {', '.join(sorted(GATEWAYS))}, not {name!r}."
        )
    return factory()
