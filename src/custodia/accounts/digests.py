"""Secrets shown once: a public prefix to find the row, and an HMAC digest to check the rest."""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.utils.crypto import salted_hmac

PREFIX_PATTERN = re.compile(r"[0-9a-f]{12}")


@dataclass(frozen=True)
class IssuedSecret:
    prefix: str
    secret: str
    digest: str


def digest_secret(purpose: str, secret: str, *, key: str | None = None) -> str:
    """HMAC-SHA256 of a secret under a key derived for this purpose only (from SECRET_KEY, or
    from `key`, one of its fallbacks).

    Any presented string digests, lone surrogates included ("surrogatepass"): a malformed link is
    an invalid link, never an encoding error.
    """
    presented = secret.encode("utf-8", "surrogatepass")
    return salted_hmac(f"custodia.{purpose}", presented, secret=key, algorithm="sha256").hexdigest()


def issue_secret(purpose: str) -> IssuedSecret:
    """A new random prefix and secret; store only `prefix` and `digest`."""
    secret = secrets.token_urlsafe(32)
    return IssuedSecret(secrets.token_hex(6), secret, digest_secret(purpose, secret))


def secret_matches(purpose: str, secret: str, digest: str) -> bool:
    """Constant-time comparison of a presented secret with a stored digest made under SECRET_KEY
    or one of SECRET_KEY_FALLBACKS (so a key rotation does not void what was issued before)."""
    keys = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    # Every key is tried, matched or not: the time taken does not say which one matched.
    matches = [hmac.compare_digest(digest_secret(purpose, secret, key=key), digest) for key in keys]
    return any(matches)


def current_digest_if_stale(purpose: str, secret: str, digest: str) -> str | None:
    """For a secret that matched `digest`: its digest under SECRET_KEY when `digest` was made
    under a fallback key (store it, so the fallback can be retired), else None."""
    current = digest_secret(purpose, secret)
    return None if hmac.compare_digest(current, digest) else current


def is_wellformed_prefix(prefix: str) -> bool:
    """Whether `prefix` could have come from `issue_secret` (checked before any lookup)."""
    return PREFIX_PATTERN.fullmatch(prefix) is not None
