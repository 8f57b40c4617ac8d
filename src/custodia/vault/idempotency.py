"""Idempotency keys: what a request's content is under its key, and the key the gateway sees.

Pure functions (no models): the tests compute the same keys to count the gateway's calls.
"""

from __future__ import annotations

import hashlib
import uuid


def request_digest(path: str, body: bytes) -> str:
    """What identifies a request's content under its idempotency key."""
    return hashlib.sha256(path.encode() + b"\n" + body).hexdigest()


def gateway_key(kind: str, business_id: uuid.UUID, idempotency_key: str) -> str:
    """The key the gateway sees: the same for every retry of one request (a retry after a crash
    included), distinct per business and per kind of operation."""
    digest = hashlib.sha256(f"{business_id}\n{idempotency_key}".encode()).hexdigest()[:40]
    return f"{kind}_{digest}"
