"""Who can read a backup: the age recipients backups are encrypted to, and identities."""

from __future__ import annotations

from pathlib import Path

import pyrage
from django.conf import settings

from custodia.core.config import create_private_file
from custodia.lifecycle.backups.manifest import BackupError


def recipients() -> list[pyrage.x25519.Recipient]:
    """The age public keys backups are encrypted to (CUSTODIA_BACKUP_RECIPIENTS).

    Development without any: a key pair made under var/secrets/ (the caller warns that the
    identity is then on this host). Production without any: an error, never a fallback.
    """
    configured = settings.BACKUP_RECIPIENTS
    if not configured:
        if settings.PRODUCTION:
            raise BackupError(
                "Set CUSTODIA_BACKUP_RECIPIENTS to the age public keys (age1...) to encrypt "
                "backups to; keep their identities off this host."
            )
        return [development_identity().to_public()]
    return _parse(configured, "CUSTODIA_BACKUP_RECIPIENTS")


def vault_recipients() -> list[pyrage.x25519.Recipient]:
    """The age public keys the card vault's backups are encrypted to:
    CUSTODIA_VAULT_BACKUP_RECIPIENTS, else the app's (`recipients()`)."""
    if settings.VAULT_BACKUP_RECIPIENTS:
        return _parse(settings.VAULT_BACKUP_RECIPIENTS, "CUSTODIA_VAULT_BACKUP_RECIPIENTS")
    return recipients()


def _parse(configured: list[str], variable: str) -> list[pyrage.x25519.Recipient]:
    parsed = []
    for text in configured:
        try:
            parsed.append(pyrage.x25519.Recipient.from_str(text))
        except pyrage.RecipientError:
            raise BackupError(
                f"{variable}: {text[:12]!r}... is not an age public key (age1...)."
            ) from None
    return parsed


def development_identity() -> pyrage.x25519.Identity:
    """The development key pair's identity, made (0600) on first use."""
    path = settings.BACKUP_DEV_IDENTITY_FILE
    if not path.exists():
        identity = pyrage.x25519.Identity.generate()
        text = (
            "# Custodia development backup identity: it decrypts every backup of this install.\n"
            f"# public key: {identity.to_public()}\n{identity}\n"
        )
        create_private_file(path, text.encode())
    return load_identity(path)[0]


def uses_development_key() -> bool:
    return not settings.BACKUP_RECIPIENTS and not settings.PRODUCTION


def load_identity(path: Path) -> list[pyrage.x25519.Identity]:
    """The age identities (AGE-SECRET-KEY-1...) in an identity file; errors never quote it."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        problem = exc.__class__.__name__
        raise BackupError(f"Cannot read the identity file {path}: {problem}.") from None
    identities = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(pyrage.x25519.Identity.from_str(line))
        except pyrage.IdentityError:
            raise BackupError(f"{path} holds a line that is not an age identity.") from None
    if not identities:
        raise BackupError(f"{path} holds no age identity (AGE-SECRET-KEY-1...).")
    return identities


def default_identity(path: Path | None) -> list[pyrage.x25519.Identity]:
    """The identity given, else in development the development one; production must give one."""
    if path is not None:
        return load_identity(path)
    if uses_development_key() and settings.BACKUP_DEV_IDENTITY_FILE.exists():
        return load_identity(settings.BACKUP_DEV_IDENTITY_FILE)
    raise BackupError("Give --identity FILE: the age identity that decrypts the backups.")
