"""Recovery codes stored as one hash each, not derived from a stored seed.

allauth derives its recovery codes from one seed (HMAC), so whoever reads the seed (a database
dump plus the key that seals it) holds every code. Here each code is 80 random bits, shown as
`xxxx-xxxx-xxxx-xxxx` in lower-case base32, and stored only as its SHA-256: no key opens them, and
80 bits cannot be searched. (A fast unkeyed hash suffices for a secret this long; allauth's
8-digit codes would need a slow one.) A code is spent by setting its bit in `used_mask`, under
allauth's row lock, so it works once.

The codes are shown once: between their making and that one showing (the page allauth opens right
after) they wait sealed like the TOTP secret (`pending`, mfa.encrypt_secret); showing them removes
them. `install()` puts this class where allauth's `Authenticator.wrap()` and flows look for it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from allauth.core.internal.cryptokit import normalize_user_code
from allauth.mfa import app_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal import auth as allauth_codes
from allauth.mfa.recovery_codes.internal import flows as allauth_flows
from django.db import transaction

from custodia.accounts.mfa import decrypt_secret, encrypt_secret

CODE_BYTES = 10  # 80 bits: 16 base32 characters
HIDDEN = "****"
# allauth's own class, for rows made before hashed codes (until `hash_seeded_codes` turns them).
SeededRecoveryCodes = allauth_codes.RecoveryCodes


def new_code() -> str:
    """A random recovery code, `xxxx-xxxx-xxxx-xxxx` (lower-case base32, no padding)."""
    text = base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode("ascii").lower()
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def code_hash(code: str) -> str:
    """SHA-256 of the code as typed, less the dashes, spaces and case allauth ignores."""
    return hashlib.sha256(normalize_user_code(code).encode("utf-8", "surrogatepass")).hexdigest()


class HashedRecoveryCodes(allauth_codes.RecoveryCodes):
    """allauth's recovery-code authenticator with each code stored as its own hash."""

    instance: Authenticator

    def __init__(self, instance: Authenticator) -> None:
        super().__init__(instance)
        self._shown: list[str] | None = None

    @classmethod
    def activate(cls, user: Any) -> HashedRecoveryCodes:
        """The user's recovery codes, made (and kept sealed until shown) if they have none."""
        instance = Authenticator.objects.filter(
            user_id=user.pk, type=Authenticator.Type.RECOVERY_CODES
        ).first()
        if instance:
            return cls(instance)
        codes = [new_code() for _ in range(app_settings.RECOVERY_CODE_COUNT)]
        instance = Authenticator(
            user=user,
            type=Authenticator.Type.RECOVERY_CODES,
            data={
                "hashes": [code_hash(code) for code in codes],
                "used_mask": 0,
                "pending": encrypt_secret(json.dumps(codes)),
            },
        )
        instance.save()
        made = cls(instance)
        made._shown = codes
        return made

    def _plain_codes(self) -> list[str] | None:
        """The codes themselves, while they have not been shown yet; None afterwards."""
        if self._shown is not None:
            return self._shown
        pending = self.instance.data.get("pending")
        return json.loads(decrypt_secret(pending)) if isinstance(pending, str) else None

    def _seeded(self) -> bool:
        return "seed" in self.instance.data

    def generate_codes(self) -> list[str]:
        """The codes, if not shown yet (nothing can make them again: only hashes are kept)."""
        if self._seeded():
            return list(SeededRecoveryCodes.generate_codes(self))
        return list(self._plain_codes() or [])

    def get_unused_codes(self) -> list[str]:
        """The unused codes; once shown, placeholders (their number is what remains to say)."""
        if self._seeded():
            return list(SeededRecoveryCodes.get_unused_codes(self))
        hashes = self.instance.data.get("hashes", [])
        plain = self._plain_codes()
        return [
            plain[i] if plain is not None else HIDDEN
            for i in range(len(hashes))
            if not self._is_code_used(i)
        ]

    def mark_as_viewed(self) -> None:
        """Record the one showing and drop the sealed codes (this wrapper still shows them)."""
        if self.did_view:
            return
        self._shown = self._plain_codes()
        self.instance.data.pop("pending", None)
        self.instance.data["viewed_at"] = time.time()
        self.instance.save(update_fields=["data"])

    @transaction.atomic
    def validate_code(self, code: str) -> bool:
        """Spend the unused code `code` is; False if it is none of them."""
        if self.instance.pk is not None:
            self.instance = Authenticator.objects.select_for_update().get(pk=self.instance.pk)
        if self._seeded():
            return bool(SeededRecoveryCodes.validate_code(self, code))
        presented = code_hash(code)
        if not normalize_user_code(code):
            return False
        hashes = self.instance.data.get("hashes", [])
        found = None
        for i, stored in enumerate(hashes):
            # Every slot compared, in constant time: the time taken says nothing of which.
            if hmac.compare_digest(presented, stored) and not self._is_code_used(i):
                found = i
        if found is None:
            return False
        self._mark_code_used(found)
        return True


def hash_seeded_codes() -> int:
    """Turn recovery codes still derived from a seed into one hash per unused code (run by
    `custodia setup`); returns how many sets were turned. The codes themselves do not change."""
    turned = 0
    with transaction.atomic():
        rows = Authenticator.objects.select_for_update().filter(
            type=Authenticator.Type.RECOVERY_CODES, data__has_key="seed"
        )
        for instance in rows:
            seeded = SeededRecoveryCodes(instance)
            codes = seeded.generate_codes()
            data = {
                "hashes": [code_hash(code) for code in codes],
                "used_mask": instance.data.get("used_mask", 0),
                # Never shown again: the seed's codes were shown when they were made.
                "viewed_at": instance.data.get("viewed_at") or time.time(),
            }
            instance.data = data
            instance.save(update_fields=["data"])
            turned += 1
    return turned


def install() -> None:
    """Make allauth use HashedRecoveryCodes (Authenticator.wrap() and its flows look it up here)."""
    allauth_codes.RecoveryCodes = HashedRecoveryCodes  # type: ignore[misc]
    allauth_flows.RecoveryCodes = HashedRecoveryCodes  # type: ignore[misc]
