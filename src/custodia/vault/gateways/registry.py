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
from custodia.vault.gateways.base import Gateway, GatewayError
from custodia.vault.gateways.sandbox import SandboxGateway
from custodia.vault.gateways.stripe import StripeGateway


def stripe_gateway() -> Gateway:
    """Stripe with the vault's settings (CUSTODIA_STRIPE_API_KEY, CUSTODIA_STRIPE_API_BASE)."""
    return StripeGateway(
        vault_settings.STRIPE_API_KEY, api_base=vault_settings.STRIPE_API_BASE or None
    )


GATEWAYS: dict[str, Callable[[], Gateway]] = {
    "sandbox": SandboxGateway,
    "stripe": stripe_gateway,
}
# One gateway per process, made on first use (Stripe's holds a client and its connections).
_made: dict[str, Gateway] = {}


def gateway() -> Gateway:
    """The configured gateway (CUSTODIA_VAULT_GATEWAY); ImproperlyConfigured if it is unknown
    or cannot be made with the settings given."""
    name = vault_settings.VAULT_GATEWAY
    if name in _made:
        return _made[name]
    factory = GATEWAYS.get(name)
    if factory is None:
        raise ImproperlyConfigured(
            f"CUSTODIA_VAULT_GATEWAY must be one of {', '.join(sorted(GATEWAYS))}, not {name!r}."
        )
    try:
        made = factory()
    except GatewayError as exc:
        raise ImproperlyConfigured(f"The {name} gateway cannot start: {exc}") from None
    _made[name] = made
    return made
