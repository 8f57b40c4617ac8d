"""Session data encrypted at rest: what allauth keeps in a session never lies in the database.

Sessions live in PostgreSQL (`django_session`). allauth keeps secrets in them for a while: the
TOTP secret being enrolled, the password-reset key between its pages, the re-authentication
records. Django only signs session data; this serializer also encrypts it, with Fernet
(AES-128-CBC + HMAC-SHA256, a documented, versioned format from `cryptography`) under a key
derived from SECRET_KEY for this purpose alone. Keys in SECRET_KEY_FALLBACKS still decrypt, so the
secret key rotates without logging everyone out. Data that does not decrypt reads as an empty
session (Django's answer to corrupted session data).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.signing import BadSignature

_INFO = b"custodia.accounts.session-data.v1"


def _fernet(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _keys() -> MultiFernet:
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet(secret) for secret in secrets])


class EncryptedJSONSerializer:
    """Django's JSON session serializer, with the JSON encrypted (SESSION_SERIALIZER)."""

    def dumps(self, obj: Any) -> bytes:
        plain = json.dumps(obj, separators=(",", ":")).encode("latin-1")
        return _keys().encrypt(plain)

    def loads(self, data: bytes) -> Any:
        try:
            plain = _keys().decrypt(data)
        except InvalidToken:
            # SessionBase.decode() treats a bad signature as corrupted data: an empty session.
            raise BadSignature("Session data does not decrypt.") from None
        return json.loads(plain.decode("latin-1"))
