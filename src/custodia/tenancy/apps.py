from __future__ import annotations

from django.apps import AppConfig

from custodia.core import closed


class Config(AppConfig):
    name = "custodia.tenancy"
    label = "tenancy"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the `prefix` lookup on CharField (tenancy/lookups.py).
        from custodia.tenancy import lookups  # noqa: F401

        # A closed business's write refusal, raised as BusinessClosed on every connection.
        closed.install()
