"""Secrets shown once: a public prefix to find the row, and an HMAC digest to check the rest."""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass

from django.utils.crypto import salted_hmac

PREFIX_PATTERN = re.compile(r"[0-9a-f]{12}")


@dataclass(frozen=True)
class IssuedSecret:
    prefix: str
    secret: str
    digest: str


def digest_secret(purpose: str, secret: str) -> str:
    """HMAC-SHA256 of a secret under a key derived for this purpose only.

    Any presented string digests, lone surrogates included ("surrogatepass"): a malformed link is
    an invalid link, never an encoding error.
    """
    presented = secret.encode("utf-8", "surrogatepass")
    return salted_hmac(f"custodia.{purpose}", presented, algorithm="sha256").hexdigest()


def issue_secret(purpose: str) -> IssuedSecret:
    """A new random prefix and secret; store only `prefix` and `digest`."""
    secret = secrets.token_urlsafe(32)
    return IssuedSecret(secrets.token_hex(6), secret, digest_secret(purpose, secret))


def secret_matches(purpose: str, secret: str, digest: str) -> bool:
    """Constant-time comparison of a presented secret with a stored digest."""
    return hmac.compare_digest(digest_secret(purpose, secret), digest)


def is_wellformed_prefix(prefix: str) -> bool:
    """Whether `prefix` could have come from `issue_secret` (checked before any lookup)."""
    return PREFIX_PATTERN.fullmatch(prefix) is not None
