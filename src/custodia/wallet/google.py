"""A Google Wallet "save" link: a JWT signed RS256 by the issuer's service account, holding a
generic pass object with what the pass or membership shows (docs/wallet.md). Google's page at
the link adds the object to the person's wallet; nothing of the client goes into it."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from joserfc import jwt
from joserfc.jwk import RSAKey

from custodia.wallet.config import GoogleCredentials
from custodia.wallet.content import PassContent

SAVE_URL = "https://pay.google.com/gp/v/save/"
CLASS_SUFFIX = "custodia_pass"
LANGUAGE = "en-US"
STATES = {"active": "ACTIVE", "expired": "EXPIRED"}


def _text(value: str) -> dict[str, Any]:
    return {"defaultValue": {"language": LANGUAGE, "value": value}}


def save_claims(
    content: PassContent, *, serial: str, credentials: GoogleCredentials
) -> dict[str, Any]:
    """The JWT's claims: one generic object (and its class) for this pass or membership."""
    class_id = f"{credentials.issuer_id}.{CLASS_SUFFIX}"
    generic: dict[str, Any] = {
        "id": f"{credentials.issuer_id}.{serial}",
        "classId": class_id,
        "state": STATES.get(content.state, "INACTIVE"),
        "cardTitle": _text(content.business_name),
        "header": _text(content.pass_name),
        "subheader": _text(content.credits_left_label),
        "hexBackgroundColor": "#1f5f8b",
        "textModulesData": [
            {
                "id": "credits",
                "header": content.credits_left_label,
                "body": f"{content.credits_left} of {content.credits_total}",
            },
            {"id": "expires", "header": content.date_label, "body": content.date[:10]},
            {"id": "status", "header": "Status", "body": content.status},
        ],
    }
    if content.expires_at is not None:
        generic["validTimeInterval"] = {"end": {"date": content.expires_at}}
    return {
        "iss": credentials.service_account_email,
        "aud": "google",
        "typ": "savetowallet",
        "iat": int(time.time()),
        "origins": [settings.PUBLIC_URL],
        "payload": {"genericClasses": [{"id": class_id}], "genericObjects": [generic]},
    }


def save_link(content: PassContent, *, serial: str, credentials: GoogleCredentials) -> str:
    """https://pay.google.com/gp/v/save/<JWT>."""
    key = RSAKey.import_key(credentials.private_key_pem)
    claims = save_claims(content, serial=serial, credentials=credentials)
    token = jwt.encode({"alg": "RS256", "typ": "JWT"}, claims, key)
    return SAVE_URL + token
