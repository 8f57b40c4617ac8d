"""The wallet credentials, read from the files settings name (docs/wallet.md).

Read when a pass or link is made, not at import: in development `custodia setup` makes the
files after settings are loaded. A file that is missing or does not parse is an
ImproperlyConfigured naming the setting, never a half-signed pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class AppleCredentials:
    """What signs an Apple Wallet pass."""

    pass_type_id: str
    team_id: str
    certificate: x509.Certificate
    key: SigningKey
    wwdr: x509.Certificate


@dataclass(frozen=True)
class GoogleCredentials:
    """What signs a Google Wallet save link: the issuer and its service account."""

    issuer_id: str
    service_account_email: str
    private_key_pem: str


def apple_enabled() -> bool:
    """Whether Apple Wallet passes are configured (always in development)."""
    return bool(settings.WALLET_APPLE)


def google_enabled() -> bool:
    """Whether Google Wallet links are configured (always in development)."""
    return bool(settings.WALLET_GOOGLE)


def _read(setting: str, group: dict[str, str]) -> bytes:
    path = Path(group[setting])
    try:
        return path.read_bytes()
    except OSError:
        raise ImproperlyConfigured(
            f"{setting} names {path}, which cannot be read (run `custodia setup` in development)."
        ) from None


def apple_credentials() -> AppleCredentials:
    """The Apple pass-signing credentials; ImproperlyConfigured when off or unreadable."""
    group = settings.WALLET_APPLE
    if not group:
        raise ImproperlyConfigured("Apple Wallet passes are not configured.")
    try:
        certificate = x509.load_pem_x509_certificate(_read("CUSTODIA_WALLET_PASS_CERT_FILE", group))
        wwdr = x509.load_pem_x509_certificate(_read("CUSTODIA_WALLET_WWDR_CERT_FILE", group))
        key = serialization.load_pem_private_key(
            _read("CUSTODIA_WALLET_PASS_KEY_FILE", group), password=None
        )
    except ValueError:
        raise ImproperlyConfigured(
            "The Apple Wallet certificate, key or WWDR certificate is not valid PEM."
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ImproperlyConfigured("CUSTODIA_WALLET_PASS_KEY_FILE must hold an RSA or EC key.")
    if _spki(key.public_key()) != _spki(certificate.public_key()):
        raise ImproperlyConfigured(
            "CUSTODIA_WALLET_PASS_KEY_FILE is not the key of CUSTODIA_WALLET_PASS_CERT_FILE."
        )
    return AppleCredentials(
        pass_type_id=group["CUSTODIA_WALLET_PASS_TYPE_ID"],
        team_id=group["CUSTODIA_WALLET_TEAM_ID"],
        certificate=certificate,
        key=key,
        wwdr=wwdr,
    )


def _spki(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def pass_type_id() -> str:
    """The configured pass type identifier ('' when Apple Wallet is off)."""
    return settings.WALLET_APPLE.get("CUSTODIA_WALLET_PASS_TYPE_ID", "")  # type: ignore[no-any-return]


def google_credentials() -> GoogleCredentials:
    """The Google Wallet issuer and service account; ImproperlyConfigured when off or bad."""
    group = settings.WALLET_GOOGLE
    if not group:
        raise ImproperlyConfigured("Google Wallet links are not configured.")
    raw = _read("CUSTODIA_WALLET_GOOGLE_SERVICE_ACCOUNT_FILE", group)
    try:
        account = json.loads(raw)
        email, pem = account["client_email"], account["private_key"]
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ImproperlyConfigured(
            "CUSTODIA_WALLET_GOOGLE_SERVICE_ACCOUNT_FILE is not a service account JSON key."
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ImproperlyConfigured("The Google service account key must be an RSA key.")
    return GoogleCredentials(
        issuer_id=group["CUSTODIA_WALLET_GOOGLE_ISSUER_ID"],
        service_account_email=str(email),
        private_key_pem=pem,
    )


def verify_configured() -> str:
    """Read every configured credential once (start-up: `custodia setup` and `serve`); a
    summary, or ImproperlyConfigured naming what is wrong."""
    offered = []
    if apple_enabled():
        offered.append(f"Apple Wallet ({apple_credentials().pass_type_id})")
    if google_enabled():
        offered.append(f"Google Wallet (issuer {google_credentials().issuer_id})")
    return "wallet passes: " + (", ".join(offered) if offered else "off")
