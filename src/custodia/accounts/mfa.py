"""Multi-factor authentication on top of allauth.mfa: secrets encrypted at rest, and the policy.

allauth does the factors themselves (TOTP with single-use codes, recovery codes, WebAuthn
passkeys) and asks for re-authentication before any factor is added or removed. Custodia adds:

- `MFAAdapter`: the TOTP secret and the recovery-code seed are stored AES-256-GCM encrypted
  under a key derived from SECRET_KEY, each ciphertext naming its key; older keys from
  SECRET_KEY_FALLBACKS still decrypt, and `reseal_mfa_secrets` (run by `custodia setup` and
  `serve`) moves everything under the current key. A database dump alone yields neither.
- `MFAPolicyMiddleware`: a member whose role the business requires MFA for, and every platform
  operator, must enrol a factor before they reach anything else; their API tokens answer 403
  until then (`refuse_token_without_factor`).

Removing or adding a factor ends the person's other sessions (accounts/sessions.py); allauth's
re-authentication, plus Custodia's second factor (web.middleware.STEP_UP_VIEWS), guards it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect

from custodia.core.permissions import Role
from custodia.core.requestctx import API_PREFIX, presents_bearer_token
from custodia.platform.access import is_active_operator

# --- Secrets at rest ---------------------------------------------------------------------------

# v2 names the secret key that sealed it (`v2:<key id>:<base64>`), so a rotation can tell which
# rows to re-seal and which no configured key can open; v1 (no key id) is still read.
CIPHERTEXT_PREFIX = "v2:"
LEGACY_PREFIX = "v1:"
_KEY_INFO = b"custodia.accounts.mfa-secrets.v1"
_NONCE_BYTES = 12
UNREADABLE_MESSAGE = (
    "An MFA secret does not decrypt with SECRET_KEY or its fallbacks: put the previous secret key "
    "into CUSTODIA_SECRET_KEY_FALLBACKS."
)


def _key(secret: str) -> bytes:
    """A 256-bit key for MFA secrets alone, derived from one Django secret key."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO)
    return hkdf.derive(secret.encode())


def _key_id(key: bytes) -> str:
    """A public name for a derived key (an HMAC of it: reveals nothing of the key)."""
    return hmac.new(key, b"custodia.accounts.mfa-key-id", hashlib.sha256).hexdigest()[:16]


def _keys() -> dict[str, bytes]:
    """Derived keys by id: the current secret key's first, then the fallbacks'."""
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    keys: dict[str, bytes] = {}
    for secret in secrets:
        key = _key(secret)
        keys.setdefault(_key_id(key), key)
    return keys


def encrypt_secret(text: str) -> str:
    """`v2:<key id>:` + base64(nonce + AES-256-GCM ciphertext) of `text` under the current key."""
    key = _key(settings.SECRET_KEY)
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, text.encode(), _KEY_INFO)
    return f"{CIPHERTEXT_PREFIX}{_key_id(key)}:" + base64.b64encode(nonce + sealed).decode("ascii")


def _open(key: bytes, raw: bytes) -> str | None:
    try:
        return AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _KEY_INFO).decode()
    except InvalidTag:
        return None


def decrypt_secret(stored: str) -> str:
    """The plain text of `encrypt_secret`'s output, under whichever configured key sealed it."""
    keys = _keys()
    candidates: list[bytes]
    try:
        if stored.startswith(CIPHERTEXT_PREFIX):
            key_id, _, body = stored.removeprefix(CIPHERTEXT_PREFIX).partition(":")
            candidates = [keys[key_id]] if key_id in keys else []
        elif stored.startswith(LEGACY_PREFIX):
            body, candidates = stored.removeprefix(LEGACY_PREFIX), list(keys.values())
        else:
            # Fail closed: nothing may be stored in the clear (and nothing ever was).
            raise ImproperlyConfigured("An MFA secret is not in Custodia's encrypted format.")
        raw = base64.b64decode(body, validate=True)
    except binascii.Error:
        raise ImproperlyConfigured("An MFA secret is not in Custodia's encrypted format.") from None
    for key in candidates:
        plain = _open(key, raw)
        if plain is not None:
            return plain
    # The message names no value: the stored text is a secret's ciphertext.
    raise ImproperlyConfigured(UNREADABLE_MESSAGE)


def is_sealed_under_current_key(stored: str) -> bool:
    """Whether `stored` is a v2 ciphertext of the current SECRET_KEY (nothing to re-seal)."""
    return stored.startswith(f"{CIPHERTEXT_PREFIX}{_key_id(_key(settings.SECRET_KEY))}:")


# The places allauth keeps sealed text in `Authenticator.data` (TOTP, recovery codes).
SEALED_FIELDS = ("secret", "seed", "pending")
SEALED_LISTS = ("migrated_codes",)


def _resealed(data: dict[str, Any]) -> dict[str, Any] | None:
    """`data` with every sealed value under the current key, or None if all already were."""
    changed = dict(data)
    for name in SEALED_FIELDS:
        value = data.get(name)
        if isinstance(value, str) and not is_sealed_under_current_key(value):
            changed[name] = encrypt_secret(decrypt_secret(value))
    for name in SEALED_LISTS:
        values = data.get(name)
        if isinstance(values, list) and not all(is_sealed_under_current_key(v) for v in values):
            changed[name] = [encrypt_secret(decrypt_secret(value)) for value in values]
    return changed if changed != data else None


@dataclass(frozen=True)
class ResealReport:
    resealed: int
    unreadable: int


def reseal_mfa_secrets() -> ResealReport:
    """Re-seal every stored MFA secret under the current SECRET_KEY (after a key rotation).

    Rows no configured key opens are counted, not changed: their owners cannot sign in with
    that factor until the old key is put back among the fallbacks.
    """
    resealed = unreadable = 0
    with transaction.atomic():
        # Locked: a code checked meanwhile (allauth locks the row too) must not lose its update.
        for authenticator in Authenticator.objects.select_for_update().filter(
            type__in=(Authenticator.Type.TOTP, Authenticator.Type.RECOVERY_CODES)
        ):
            try:
                data = _resealed(authenticator.data)
            except ImproperlyConfigured:
                unreadable += 1
                continue
            if data is not None:
                authenticator.data = data
                authenticator.save(update_fields=["data"])
                resealed += 1
    return ResealReport(resealed, unreadable)


class MFAAdapter(DefaultMFAAdapter):
    """allauth's MFA adapter with the TOTP secret and recovery-code seed encrypted at rest."""

    def encrypt(self, text: str) -> str:
        """Encrypt before allauth stores a secret in `mfa_authenticator.data`."""
        return encrypt_secret(text)

    def decrypt(self, encrypted_text: str) -> str:
        """Decrypt what `encrypt` stored."""
        return decrypt_secret(encrypted_text)


# --- Policy ------------------------------------------------------------------------------------

# Factors that count as a second factor; recovery codes only exist alongside one of them.
FACTOR_TYPES = (Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN)
# Pages a person who must enrol can still reach: allauth's MFA pages (all named mfa_*), and
# re-authentication, logout, switching to another business, and the public security pages.
ALLOWED_URL_NAMES = frozenset(
    {
        "account_logout",
        "account_reauthenticate",
        "switch_business",
        "security_page",
        "security_txt",
        "security_report",
    }
)
ENROL_API_MESSAGE = (
    "Two-factor authentication is required for your account. Set up an authenticator app or a "
    "passkey in the web app before using the API with this session."
)
NO_FACTOR_BEARER_MESSAGE = (
    "Two-factor authentication is required for this token's owner in this business, and they "
    "have none. The token works again once they set up an authenticator app or a passkey in the "
    "web app."
)


def is_platform_operator(user: Any) -> bool:
    """Platform personnel: an active operator record (platform/models.py), read in the login's
    own context; no flag on the login (is_staff, is_superuser) counts."""
    return is_active_operator(user)


def required_by(user: Any, actor: Any) -> str | None:
    """Why this user must have a second factor now (who the rule covers), or None."""
    if actor is None:
        # Only a login acting for no business can be an operator: an operator holds no
        # membership (platform/0002_guards.py), so a member's request costs no query here.
        return "platform operators" if is_platform_operator(user) else None
    business = actor.business
    rules = {
        Role.OWNER: (business.mfa_required_owners, "owners"),
        Role.MANAGER: (business.mfa_required_managers, "managers"),
        Role.STAFF: (business.mfa_required_staff, "staff"),
    }
    required, who = rules.get(actor.role, (False, ""))
    return f"{who} of {business.name}" if required else None


def has_factor(user: Any) -> bool:
    """The user has an authenticator app or a passkey (recovery codes alone do not count)."""
    return Authenticator.objects.filter(user_id=user.pk, type__in=FACTOR_TYPES).exists()


def refuse_token_without_factor(actor: Any) -> None:
    """Refuse (403) a bearer token whose owner the business's MFA policy covers and who has none.

    A token is a password-equivalent of its owner: while the policy covers them, an account that
    could still act through a token made before the policy would keep the policy's gap open.
    The token is not revoked: it works again once its owner enrols a factor.
    """
    if required_by(actor.user, actor) is not None and not has_factor(actor.user):
        raise PermissionDenied(NO_FACTOR_BEARER_MESSAGE)


class MFAPolicyMiddleware:
    """Members the business policy covers, and operators, enrol a factor before anything else.

    Runs after TenantMiddleware: it reads `request.actor` (the active membership) and queries
    inside the request's transaction. The check is in `process_view`, so it sees the resolved
    URL name. An API request that presents a bearer token is not a session and is left to the
    API's token authentication, which applies the same rule (`refuse_token_without_factor`).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponse],
        view_args: Any,
        view_kwargs: Any,
    ) -> HttpResponse | None:
        user = request.user
        if not user.is_authenticated:
            return None
        is_api = request.path_info.startswith(API_PREFIX)
        # Only the API answers for a token alone (SessionAuth ignores the session then); a web
        # page always acts on the session, so a bearer header there must not skip the check.
        if is_api and presents_bearer_token(request):
            return None
        match = request.resolver_match
        url_name = (match.url_name or "") if match is not None else ""
        reason = required_by(user, getattr(request, "actor", None))
        if reason is None or has_factor(user):
            return None
        request.mfa_enrolment_required = reason  # type: ignore[attr-defined]
        if url_name.startswith("mfa_") or url_name in ALLOWED_URL_NAMES:
            return None
        if is_api:
            return JsonResponse({"detail": ENROL_API_MESSAGE}, status=403)
        return redirect("mfa_index")
