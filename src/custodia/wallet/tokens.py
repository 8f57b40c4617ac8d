"""A wallet pass's serial number and authentication token.

The serial is random (it names the pass to Apple and Google and says nothing of the business,
the client or the pass's id). The token a device presents (`Authorization: ApplePass <token>`)
is derived from the serial under CUSTODIA_SECRET_KEY (an HMAC for this purpose only), so it is
never stored: the database keeps its SHA-256 digest, by which a device's request finds its pass,
and the token is derived again whenever the pass file is made. A plain hash suffices for the
digest: the token is 256 bits of keyed-hash output, not a guessable password.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings

from custodia.accounts.digests import digest_secret

TOKEN_PURPOSE = "wallet.pass_token"  # noqa: S105


def new_serial() -> str:
    """A fresh opaque serial number (32 hex characters)."""
    return secrets.token_hex(16)


def token_digest(token: str) -> str:
    """What is stored of a token, and how a presented one is looked up."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def derive_token(serial: str, *, key: str | None = None) -> str:
    """The token of the pass `serial` under SECRET_KEY (or `key`, one of its fallbacks)."""
    return digest_secret(TOKEN_PURPOSE, serial, key=key)


def token_matching(serial: str, stored_digest: str) -> str | None:
    """The token the pass was issued with: derived under SECRET_KEY or a fallback still
    configured, checked against its stored digest in constant time; None when no configured key
    makes it (the key it was issued under was retired: it is issued anew)."""
    for key in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]:
        token = derive_token(serial, key=key)
        if hmac.compare_digest(token_digest(token), stored_digest):
            return token
    return None
