"""Secrets and signatures: the Standard Webhooks scheme, through the `standardwebhooks` package.

A secret is `whsec_` + base64 of 32 random bytes. Each delivery carries `webhook-id` (the
event's id), `webhook-timestamp` (seconds) and `webhook-signature`: `v1,<base64 HMAC-SHA256>`
of `id.timestamp.body` under the current secret and, during a rotation's overlap, a second one
under the previous secret, space-separated as the specification allows. A receiver that
verifies with either secret accepts it.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from collections.abc import Iterable

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105  (the format's prefix, not a secret)
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks format."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signed_headers(
    *, message_id: str, timestamp: dt.datetime, body: bytes, secrets_in_use: Iterable[str]
) -> dict[str, str]:
    """The three Standard Webhooks headers for `body`, one signature per secret given."""
    signatures = [
        Webhook(secret).sign(msg_id=message_id, timestamp=timestamp, data=body)
        for secret in secrets_in_use
        if secret
    ]
    if not signatures:
        raise ValueError("A delivery is signed with at least one secret.")
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
