"""Start-up check: the key-encryption key is there and is the one the keystore was wrapped with."""

from __future__ import annotations

from typing import Any

from django.core import checks

from custodia.crypto import keyring, keystore
from custodia.crypto.errors import KekError


def verify_kek() -> str:
    """Load the KEK, check it holds every KEK the keystore names, and unwrap a business's keys
    with it; KekError names what is wrong."""
    kek = keyring.provider()
    businesses = keystore.business_ids()
    if not businesses:
        return f"KEK {kek.primary_id} ({kek.name}); the keystore is empty"
    if kek.name != "aws-kms":  # KMS decrypts under its older keys without naming them here
        missing = keystore.keks_in_use() - kek.known_ids()
        if missing:
            raise KekError(
                f"The configured key-encryption key is not the one that wrapped the keystore: it "
                f"needs {', '.join(sorted(missing))}, which the {kek.name} provider does not "
                "hold. Configure it (the keyring file that wrapped it, or CUSTODIA_KEK_PREVIOUS); "
                "a new key cannot read the keystore."
            )
    keyring.keys_for(businesses[0], refresh=True)
    return f"KEK {kek.primary_id} ({kek.name}); {len(businesses)} businesses in the keystore"


@checks.register("crypto")
def kek_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        verify_kek()
    except KekError as exc:
        return [checks.Error(str(exc), id="crypto.E001")]
    return []
