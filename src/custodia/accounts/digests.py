"""Secrets shown once: a public prefix to find the row, and an HMAC digest to check the rest."""

from __future__ import annotations

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


def candidate_digests(purpose: str, secret: str) -> list[str]:
    """The digests a stored one may be of this secret: under SECRET_KEY first, then under each
    of SECRET_KEY_FALLBACKS (a key rotation does not void what was issued before). For a check
    made by the database (an API token, core/dbcontext.py: activate_token), which so compares
    digests and never sees the secret."""
    keys = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return [digest_secret(purpose, secret, key=key) for key in keys]


def is_wellformed_prefix(prefix: str) -> bool:
    """Whether `prefix` could have come from `issue_secret` (checked before any lookup)."""
    return PREFIX_PATTERN.fullmatch(prefix) is not None
