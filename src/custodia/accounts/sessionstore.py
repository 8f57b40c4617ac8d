"""Sessions at rest: stored under a digest of their key, with their data encrypted.

The cookie's value is the session key; the database keeps only its SHA-256 (`stored_key`), in
`django_session` and in allauth's session list (`usersessions_usersession`), so a copy of the
database, or a session of the app's database role, yields no cookie that logs anyone in.

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
import hashlib
import json
from typing import Any

from asgiref.sync import sync_to_async
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.core.signing import BadSignature
from django.utils import timezone
from django.utils.crypto import get_random_string

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


def stored_key(session_key: str) -> str:
    """What the database keeps for a session key: its SHA-256 in hex, cut to the 40 characters
    of the key columns (160 bits of a digest of a 190-bit random key)."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:40]


class SessionStore(db.SessionStore):
    """Django's database sessions, each row under `stored_key(key)` instead of the key itself.

    `session_key` stays the cookie's value; only this class turns it into a row's key. A stored
    key handed back as a cookie is hashed again and finds nothing.
    """

    def _get_session_from_db(self) -> Any:
        if self.session_key is not None:
            found = self.model.objects.filter(
                session_key=stored_key(self.session_key), expire_date__gt=timezone.now()
            ).first()
            if found is not None:
                return found
        self._session_key = None
        return None

    def _get_new_session_key(self) -> str:
        """A fresh random key, without Django's query for whether it exists: the row is
        inserted with must_create, so a (190-bit) collision is a CreateError and another key."""
        return get_random_string(32, VALID_KEY_CHARS)

    def exists(self, session_key: str) -> bool:
        return bool(self.model.objects.filter(session_key=stored_key(session_key)).exists())

    def create_model_instance(self, data: dict[str, Any]) -> Any:
        return self.model(
            session_key=stored_key(self._get_or_create_session_key()),  # type: ignore[attr-defined]
            session_data=self.encode(data),
            expire_date=self.get_expiry_date(),
        )

    def delete(self, session_key: str | None = None) -> None:
        key = session_key if session_key is not None else self.session_key
        if key is not None:
            self.delete_stored(stored_key(key))

    # The async doors do the same as the sync ones (Django's would use the raw key).
    async def _aget_session_from_db(self) -> Any:
        return await sync_to_async(self._get_session_from_db)()

    async def aexists(self, session_key: str) -> bool:
        return await sync_to_async(self.exists)(session_key)

    async def acreate_model_instance(self, data: dict[str, Any]) -> Any:
        return await sync_to_async(self.create_model_instance)(data)

    async def adelete(self, session_key: str | None = None) -> None:
        await sync_to_async(self.delete)(session_key)

    @classmethod
    def delete_stored(cls, stored: str) -> None:
        """Delete the session whose row key is `stored` (from the session list)."""
        cls.get_model_class().objects.filter(session_key=stored).delete()

    @classmethod
    def data_of_stored(cls, stored: str) -> dict[str, Any]:
        """The data of the live session whose row key is `stored` ({} if it has ended)."""
        row = (
            cls.get_model_class()
            .objects.filter(session_key=stored, expire_date__gt=timezone.now())
            .first()
        )
        return cls().decode(row.session_data) if row is not None else {}
