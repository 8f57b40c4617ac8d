"""Start-up check: the key-encryption key is there and is the one the keystore was wrapped with."""

from __future__ import annotations

from typing import Any

from django.core import checks

from custodia.crypto import keyring, keystore, rows
from custodia.crypto.errors import KekError


def verify_kek() -> str:
    """Load the KEK, check it holds every KEK the keystore names, and unwrap a business's keys
    with it; KekError names what is wrong."""
    kek = keyring.provider()
    businesses = keystore.business_ids()
    if not businesses:
        return f"KEK {kek.primary_id} ({kek.name}); the keystore is empty"
    missing = {kek_id for kek_id in keystore.keks_in_use() if not kek.holds(kek_id)}
    if missing:
        raise KekError(
            f"The configured key-encryption key is not the one that wrapped the keystore: it "
            f"needs {', '.join(sorted(missing))}, which the {kek.name} provider does not "
            "hold. Configure it (the keyring file that wrapped it, or CUSTODIA_KEK_PREVIOUS); "
            "a new key cannot read the keystore."
        )
    keyring.keys_for(businesses[0], refresh=True)
    return f"KEK {kek.primary_id} ({kek.name}); {len(businesses)} businesses in the keystore"


def verify_keystore_covers_database() -> str:
    """After migrating: every business in the database has keys. None at all means a wrong or
    unmounted keystore (KekError: starting would answer every read with "key destroyed");
    some missing is reported, and `custodia keys status` names them."""
    in_database = set(rows.business_ids(rows.USING))
    missing = in_database - set(keystore.business_ids())
    if in_database and missing == in_database:
        raise KekError(
            f"The keystore {keystore.keystore_dir()} holds no keys for any of the "
            f"{len(in_database)} businesses in the database: is CUSTODIA_KEYSTORE_DIR right, "
            "and mounted?"
        )
    if missing:
        return (
            f"WARNING: {len(missing)} of {len(in_database)} businesses have no keys in "
            f"{keystore.keystore_dir()}; their encrypted fields cannot be read "
            "(custodia keys status names them)"
        )
    if not in_database:
        return "no businesses yet"
    return f"keystore holds the keys of all {len(in_database)} businesses"


@checks.register("crypto")
def kek_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        verify_kek()
    except KekError as exc:
        return [checks.Error(str(exc), id="crypto.E001")]
    return []
